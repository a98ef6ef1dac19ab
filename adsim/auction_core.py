"""The batched core behind AdAuction: every request is an auction for L ad slots.

:class:`AuctionCore` *is* a :class:`adsim.selection.SelectionCore` — the same request blocks from the
counter-based streams (users, contexts, campaigns, pool or personalised candidates), the same β0,
logits, click and conversion uniforms and CTR estimate — with only what an auction adds:

* **competition**: M − 1 competitors per request whose per-click bids are lognormal with median
  ``competitor_bid_ratio × our conversion value × category factor × hour factor`` (the campaign's
  product category, the request's 6-hour bucket) and spread ``competitor_bid_sigma``, and whose
  pCTRs are lognormal around ``target_ctr`` (``competitor_quality_sigma``). Both come from the
  request's streams (:class:`adsim.requests.AuctionStreams`: bid ``BID + j``, pCTR ``QUALITY + j``
  of competitor j), so in one seed every policy meets the same competition whatever it bids; only
  the top-L competing scores are kept (``adsim.auction``);
* **our advertiser**: the action is (creative, bid); the auction (:class:`adsim.auction.Auction`)
  decides the slot and the price; the creative at slot l is clicked with its true CTR
  ``a_k · e_l`` (``a_k`` its attraction, ``e_l`` the slot's exposure ``EnvConfig.slate_examination``)
  by the request's click uniform (CreativeSelection's), and converts by its conversion uniform;
* **the day's budget**: an episode is a day of ``horizon`` requests with a daily ``budget`` per
  campaign-day (each slot runs its own campaign-day). **Budget rule**: a bid above the budget left
  is capped at the budget left before the auction (``info["bid_used"]``, ``info["bid_capped"]``
  say so, row by row); so a payment never exceeds the budget left, and once the budget is spent
  every bid is 0, below every threshold: our ad cannot win. The CPA cap is reported, not enforced;
* **truth and regret**: per request the thresholds of every (creative, slot), the hindsight best bid
  of every creative and the oracle under the budget left, and after a step the exact regret of the
  action and its decomposition (``adsim.auction``).

The request's own ad slot has no meaning in an auction of L slots: as on a slate page, the
context's ``ad_slot`` one-hot marks slot 0. Auctions run without fatigue. The reward is the
realised surplus: the value of a conversion (if any) minus the payment.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import ndtri

from adsim import rng as crng
from adsim.auction import Auction, AuctionTruth, top_scores
from adsim.config import EnvConfig
from adsim.creative.sampler import CandidateSource
from adsim.observation import CONTEXT_LAYOUT
from adsim.requests import AuctionStreams
from adsim.response import attraction_prob
from adsim.running_ctr import CTREstimator, Request
from adsim.selection import SelectionCore
from adsim.slate import top_slot_context
from adsim.world import PRICE_BY_TIER, World

COMPETITOR_CATEGORY_FACTORS = (1.3, 1.1, 1.2, 0.9, 1.0, 0.7, 0.9, 0.6)
"""Default multiplier of the median competing bid per product category (``adsim.creative.lexicon.
CATEGORIES``: electronics, fashion, beauty, home, sports, groceries, toys, books)."""
TOTALS = ("spend", "wins", "clicks", "conversions", "value", "surplus")
"""Per-episode running totals of each slot (``info[name + "_total"]``)."""


class AuctionOutcome(NamedTuple):
    """What one auction did, per slot (every field (N,))."""

    reward: np.ndarray  # float64 realised surplus: value − spend
    won: np.ndarray  # bool
    slot: np.ndarray  # int64 slot won, −1 when lost
    price: np.ndarray  # price per unit (click or impression), 0 when lost
    spend: np.ndarray  # the payment: price on a click (cpc) or on a win (cpm)
    clicked: np.ndarray  # bool
    converted: np.ndarray  # bool
    value: np.ndarray  # conversion value realised
    expected_reward: np.ndarray  # expected surplus of the action on the realised competition
    bid_used: np.ndarray  # min(bid, budget left)
    bid_capped: np.ndarray  # bool: the bid exceeded the budget left
    regret: np.ndarray  # oracle's expected surplus − the action's
    regret_allocation: np.ndarray
    regret_estimation: np.ndarray
    regret_overbid: np.ndarray
    regret_underbid: np.ndarray
    terminated: np.ndarray  # bool, always False
    truncated: np.ndarray  # bool, the horizon is reached (all slots at once)


OUTCOME_KEYS = ("won", "slot", "price", "spend", "clicked", "converted", "value", "bid_used", "bid_capped",
                "regret", "regret_allocation", "regret_estimation", "regret_overbid", "regret_underbid")


def check_auction_config(config: EnvConfig) -> None:
    """Raise ``ValueError`` for an env config an auction cannot run (naming the field)."""
    if not isinstance(config, EnvConfig):
        raise TypeError(f"config must be an EnvConfig, got {type(config).__name__}")
    if config.reward != "click":
        raise ValueError(f"reward == {config.reward!r}: an auction's reward is its surplus (conversion value − "
                         f"payment); leave reward at its default 'click'")
    if config.fatigue_strength > 0:
        raise ValueError(f"fatigue_strength == {config.fatigue_strength}: auctions run without fatigue, "
                         f"fatigue_strength must be 0")
    if config.click_model != "pbm":
        raise ValueError(f"click_model == {config.click_model!r}: an auction's slots are exposed "
                         f"position-based (slate_examination), click_model must be 'pbm'")
    if config.reserve_price == 0 and config.n_advertisers - 1 < config.slate_size:
        raise ValueError(f"n_advertisers == {config.n_advertisers} with slate_size == {config.slate_size} slots and "
                         f"reserve_price == 0 leaves a slot free of charge; raise n_advertisers to >= "
                         f"{config.slate_size + 1} or set a reserve_price > 0")
    Auction.from_config(config)  # exposure non-increasing


class AuctionCore(SelectionCore):
    """N auctions on one world: a :class:`SelectionCore` whose action is (creative, bid).

    Public per-step state besides SelectionCore's: ``attraction`` (N, K), ``competition`` (N, L),
    ``truth`` (:class:`adsim.auction.AuctionTruth`), ``hindsight`` (:class:`adsim.auction.Hindsight`),
    ``budget_left`` (N,); ``auction`` (:class:`adsim.auction.Auction`), ``action_space``.
    """

    OUTCOME_INFO = OUTCOME_KEYS + ("reward_expected", "surplus")

    def __init__(self, config: EnvConfig, num_envs: int = 1, *, world: World | None = None,
                 estimator: CTREstimator | None = None, candidate_source: CandidateSource | None = None):
        check_auction_config(config)
        from adsim.envs.spaces import auction_action_space

        self.auction = Auction.from_config(config)
        self.n_slots = config.slate_size
        self.n_competitors = config.n_advertisers - 1
        self.action_space = auction_action_space(config.n_candidates, config.max_bid)
        self._category_factor = np.array(config.competitor_category_factors or COMPETITOR_CATEGORY_FACTORS)
        self._hour_factor = np.array(config.competitor_hour_factors)
        self._needs_quality = self.auction.mechanism == "gsp" or self.auction.pricing == "cpm"
        super().__init__(config, num_envs, world=world, estimator=estimator, candidate_source=candidate_source)
        self.max_value = float(config.conversion_value or PRICE_BY_TIER.max())
        n_c = self.world.config.n_campaigns
        self._cvr = np.zeros((2, n_c))  # clicks, conversions per campaign
        self.totals = np.zeros((len(TOTALS), self.num_envs))
        self.budget_left = np.full(self.num_envs, np.inf)

    def estimate_prior(self) -> float:
        """The platform's pCTR starts at the world's mean CTR (``target_ctr``), the level of the
        competitors' pCTRs, not at ``PRIOR_CTR``: under gsp a campaign whose pCTR starts a third of
        theirs is outranked by every competitor, never wins an impression and so never learns."""
        return self.config.world.target_ctr

    def check_actions(self, actions, num_envs: int | None) -> np.ndarray:
        """Structured (N,) actions ``creative`` int64, ``bid`` float64 from a dict (see
        :func:`adsim.envs.spaces.check_auction_actions`); raises on a bad one."""
        from adsim.envs.spaces import check_auction_actions

        return check_auction_actions(actions, self.config.n_candidates, self.config.max_bid, num_envs)

    # ----------------------------------------------------------------- episode control
    def set_keys(self, keys: np.ndarray) -> None:
        super().set_keys(keys)
        self._cvr[:] = 0.0

    def start_episode(self) -> None:
        """Begin a day in every slot: the full budget, zero totals; then SelectionCore's episode start."""
        budget = self.config.budget
        self.budget_left = np.full(self.num_envs, np.inf if budget is None else float(budget))
        self.totals[:] = 0.0
        super().start_episode()

    # ----------------------------------------------------------------- exogenous requests
    def _fill_block(self, t0: int) -> None:
        super()._fill_block(t0)  # requests; attractions through _block_truth_of
        b, cfg = self.block, self.config
        self.conversion_value = (np.full(self.num_envs, float(cfg.conversion_value)) if cfg.conversion_value
                                 else self.value)
        T, C = b.length, self.n_competitors
        steps = np.broadcast_to(t0 + np.arange(T), (self.num_envs, T))
        ep = np.full(self.num_envs, self.episode)
        if C:
            hour = CONTEXT_LAYOUT.argmax(b.context, "hour_bucket")  # (N, T) 6-hour bucket
            category = self.world.campaign_category[self.campaign]
            median = (cfg.competitor_bid_ratio * self.conversion_value * self._category_factor[category])[:, None] \
                * self._hour_factor[hour]
            bids = median[..., None] * self._lognormal(
                crng.uniforms(self.keys, ep, steps, C, offset=AuctionStreams.BID), cfg.competitor_bid_sigma)
            quality = None
            if self._needs_quality:
                quality = self.world.config.target_ctr * self._lognormal(
                    crng.uniforms(self.keys, ep, steps, C, offset=AuctionStreams.QUALITY), cfg.competitor_quality_sigma)
            comp = top_scores(self.auction.competitor_scores(bids, quality), self.n_slots)  # (N, T, L)
        else:
            comp = np.zeros((self.num_envs, T, self.n_slots))
        self._competition = np.ascontiguousarray(comp.transpose(1, 0, 2))  # (T, N, L), step-major
        self.block = b._replace(context=top_slot_context(b.context))

    @staticmethod
    def _lognormal(u: np.ndarray, sigma: float) -> np.ndarray:
        """exp(σ z) of standard normals z = Φ⁻¹(u) (1 where σ = 0)."""
        if sigma == 0.0:
            return np.ones_like(u)
        z = ndtri(u)
        z *= sigma
        return np.exp(z, out=z)

    def _block_truth_of(self, logits: np.ndarray, position: np.ndarray, p_conv: np.ndarray) -> tuple[np.ndarray, ...]:
        """Attractions (T, N, K) of a block, step-major, from its logits laid out (K, N, T)."""
        return (np.ascontiguousarray(attraction_prob(logits, self.beta0).transpose(2, 1, 0)),)

    def _take_truth(self, j: int) -> None:
        self.attraction = self._block_truth[0][j]
        self.click_probs = self.attraction  # SelectionCore's name for the per-candidate truth
        self.competition = self._competition[j]

    def _serve(self) -> None:
        super()._serve()
        a = self.auction
        pctr = self.ctr_estimate.astype(np.float64)
        ctr = self.attraction[:, :, None] * a.exposure
        self.p_conv = self.block.p_conv[:, self.j]
        self.truth = AuctionTruth(a.thresholds(self.competition, pctr), ctr, pctr,
                                  self.conversion_value * self.p_conv, self.budget_left)
        self.hindsight = a.hindsight(self.truth)

    # ----------------------------------------------------------------- one auction
    def cvr_estimate(self) -> np.ndarray:
        """(N,) float32 the running conversion rate of each slot's campaign (conversions per click,
        shrunk towards ``EnvConfig.cvr_prior`` with ``estimate_prior_strength`` pseudo-clicks)."""
        s, prior = self.config.estimate_prior_strength, self.config.cvr_prior
        clicks, conv = self._cvr[0].take(self.campaign), self._cvr[1].take(self.campaign)
        return ((conv + s * prior) / (clicks + s)).astype(np.float32)

    def observation(self) -> dict[str, np.ndarray]:
        """CreativeSelection's observation plus ``value``, ``cvr_estimate``, ``budget_left`` and
        ``day_left`` (N, 1) each; new arrays on every call."""
        obs = super().observation()
        budget = self.config.budget
        left = np.ones(self.num_envs) if budget is None else self.budget_left / budget
        obs["value"] = self.conversion_value.astype(np.float32)[:, None]
        obs["cvr_estimate"] = self.cvr_estimate()[:, None]
        obs["budget_left"] = np.clip(left, 0.0, 1.0).astype(np.float32)[:, None]
        obs["day_left"] = np.full((self.num_envs, 1), (self.config.horizon - self.t) / self.config.horizon,
                                  dtype=np.float32)
        return obs

    def info(self, outcome: AuctionOutcome | None = None) -> dict[str, np.ndarray]:
        """Ground truth of the current auctions (and the outcome of the step that led to them)."""
        tr, h = self.truth, self.hindsight
        info = {"attraction": self.attraction, "ctr": tr.ctr, "ctr_estimate": tr.pctr,
                "competition": self.competition, "thresholds": tr.thresholds, "value_per_click": tr.value_per_click,
                "conversion_value": self.conversion_value.copy(), "budget_remaining": self.budget_left.copy(),
                "best_bid": h.best_bid, "best_surplus": h.best_surplus, "believed_bid": h.believed_bid,
                "oracle_creative": h.oracle_creative, "oracle_bid": h.oracle_bid, "oracle_surplus": h.oracle_surplus}
        for name, row in zip(TOTALS, self.totals):
            info[name + "_total"] = row.copy()
        cap = self.config.cpa_cap
        info["cpa_excess"] = (np.zeros(self.num_envs) if cap is None
                              else np.maximum(0.0, self.totals[0] - cap * self.totals[3]))
        if outcome is None:
            info["regret"] = np.zeros(self.num_envs)
        else:
            info.update({k: getattr(outcome, k) for k in OUTCOME_KEYS})
            info["surplus"] = outcome.reward
            info["reward_expected"] = outcome.expected_reward
        return info

    def step(self, actions: np.ndarray) -> AuctionOutcome:
        """Run the auctions with ``actions`` (N,) structured (``creative``, ``bid``; validated); draw
        clicks and conversions; pay; serve the next requests."""
        if self.t >= self.config.horizon:
            raise RuntimeError("episode is over (truncated): reset before stepping again")
        k, bid = actions["creative"], actions["bid"]
        a, b, j = self.auction, self.block, self.j
        out = a.outcome(self.truth, k, bid)
        reg = a.regret(self.truth, k, bid, self.hindsight, out)
        clicked = out.won & (b.u_click[:, j] < out.ctr)
        converted = clicked & (b.u_conv[:, j] < self.p_conv)
        spend = out.price * (clicked if a.pricing == "cpc" else out.won)
        value = self.conversion_value * converted
        surplus = value - spend
        capped = bid > self.budget_left
        self.budget_left = self.budget_left - spend  # spend <= bid used <= budget left: never below 0
        for row, x in zip(self.totals, (spend, out.won, clicked, converted, value, surplus)):
            row += x
        if out.won.any():  # the platform learns from the impressions it served
            if out.won.all():
                self.estimator.observe(self.request, k, clicked)
            else:
                rows = np.flatnonzero(out.won)
                self.estimator.observe(Request(*(f[rows] for f in self.request)), k[rows], clicked[rows])
        n_c = self._cvr.shape[1]
        self._cvr[0] += np.bincount(self.campaign, weights=clicked, minlength=n_c)
        self._cvr[1] += np.bincount(self.campaign, weights=converted, minlength=n_c)
        self.t += 1
        self._serve()
        over = np.ones if self.t >= self.config.horizon else np.zeros
        return AuctionOutcome(surplus, out.won, out.slot, out.price, spend, clicked, converted, value, out.surplus,
                              out.bid, capped, reg.total, reg.allocation, reg.estimation, reg.overbid, reg.underbid,
                              np.zeros(self.num_envs, dtype=bool), over(self.num_envs, dtype=bool))

    def render(self, row: int = 0) -> str:
        """ANSI text of slot ``row``'s current auction: candidates, competition, budget and the oracle."""
        from adsim.envs.spaces import render_candidates

        h = self.hindsight
        text = render_candidates(self.config.language, f"t={self.t} campaign={int(self.campaign[row])} "
                                 f"user={int(self.user[row])} auction {self.auction!r} M={self.config.n_advertisers}",
                                 self.candidates[row], self.attraction[row], "est", self.ctr_estimate[row])
        return text + (f"\n  competing scores {np.round(self.competition[row], 4).tolist()} budget left "
                       f"{float(self.budget_left[row]):.2f} value/click {float(self.truth.value_per_click[row]):.3f}"
                       f"\n  oracle creative {int(h.oracle_creative[row])} bid {float(h.oracle_bid[row]):.4f} "
                       f"expected surplus {float(h.oracle_surplus[row]):.4f}")


__all__ = ["AuctionCore", "AuctionOutcome", "COMPETITOR_CATEGORY_FACTORS", "check_auction_config"]
