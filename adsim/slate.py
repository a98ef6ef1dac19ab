"""The batched core behind SlateSelection: a page of L ad positions filled from K candidates.

:class:`SlateCore` *is* a :class:`adsim.selection.SelectionCore` — the same request blocks from the
counter-based streams (users, contexts, campaigns, pool or personalised candidates), the same β0,
logits and CTR estimate — with only what a slate adds:

* **attraction** instead of a slot-factored click probability: candidate k's
  ``a_k = σ(logit_k + β0)`` (:func:`adsim.response.attraction_prob`), computed for the whole block;
* the **click model** over positions (:class:`adsim.click_models.ClickModel`: PBM, cascade or DCM)
  and its exact **oracle slate** per request, also for the whole block;
* per-position **click uniforms** (and DCM continuation uniforms) from the request's streams
  (:class:`adsim.requests.SlateStreams`), so common random numbers hold as in CreativeSelection:
  in one seed every policy meets the same users, candidates and click uniforms;
* the **slate outcome**: clicks per position, their number as the reward, and the exact
  pseudo-regret ``oracle's expected clicks − the shown slate's expected clicks``.

The request's own ad slot (drawn by the stream ``SelectionStreams.SLOT``) has no meaning on a page
of L positions: the context's ``ad_slot`` one-hot marks slot 0 (the page's top), and the page's
positions are the observation's ``page`` (each position's slot one-hot; positions below the third
use the third's). Slates run without fatigue, and their reward is the number of clicks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from adsim import rng as crng
from adsim.click_models import ClickModel
from adsim.config import N_SLOTS, EnvConfig
from adsim.creative.sampler import CandidateSource
from adsim.requests import SlateStreams
from adsim.response import attraction_prob
from adsim.running_ctr import CTREstimator
from adsim.selection import SelectionCore
from adsim.world import CONTEXT_DIM, World


class SlateOutcome(NamedTuple):
    """What one page did, per slot."""

    reward: np.ndarray  # (N,) float64 number of clicks on the page
    clicks: np.ndarray  # (N, L) bool click at each position
    clicked: np.ndarray  # (N,) bool at least one click
    regret: np.ndarray  # (N,) oracle's expected clicks − the shown slate's
    expected_reward: np.ndarray  # (N,) the shown slate's expected clicks
    slate_click_probs: np.ndarray  # (N, L) the shown slate's probability of a click at each position
    terminated: np.ndarray  # (N,) bool, always False
    truncated: np.ndarray  # (N,) bool, the horizon is reached (all slots at once)


def check_slate_config(config: EnvConfig) -> None:
    """Raise ``ValueError`` for an env config a slate page cannot run (naming the field)."""
    if not isinstance(config, EnvConfig):
        raise TypeError(f"config must be an EnvConfig, got {type(config).__name__}")
    if config.slate_size > config.n_candidates:
        raise ValueError(f"slate_size == {config.slate_size}, must be <= n_candidates == {config.n_candidates} "
                         f"(a slate shows distinct candidates); lower slate_size or raise n_candidates")
    if config.reward != "click":
        raise ValueError(f"reward == {config.reward!r}: a slate's reward is its number of clicks, reward must be 'click'")
    if config.fatigue_strength > 0:
        raise ValueError(f"fatigue_strength == {config.fatigue_strength}: slates run without fatigue, "
                         f"fatigue_strength must be 0")


def page_features(slate_size: int) -> np.ndarray:
    """(L · N_SLOTS,) float32: each position's ad-slot one-hot (position l is slot min(l, 2))."""
    page = np.zeros((slate_size, N_SLOTS), dtype=np.float32)
    page[np.arange(slate_size), np.minimum(np.arange(slate_size), N_SLOTS - 1)] = 1.0
    return page.reshape(-1)


def top_slot_context(context: np.ndarray) -> np.ndarray:
    """A read-only copy of context features (…, CONTEXT_DIM) whose ad-slot one-hot marks slot 0: the
    context of a page (or an auction) of several slots, where the request's own slot has no meaning."""
    context = np.array(context)
    context[..., CONTEXT_DIM - N_SLOTS:] = 0.0
    context[..., CONTEXT_DIM - N_SLOTS] = 1.0
    context.flags.writeable = False
    return context


class SlateCore(SelectionCore):
    """N slate pages on one world: a :class:`SelectionCore` whose action is an ordered slate.

    Public per-step state besides SelectionCore's: ``attraction`` (N, K), ``oracle_slate`` (N, L),
    ``best`` (N,) the oracle's expected clicks; ``click_model`` (:class:`ClickModel`),
    ``action_space`` (:class:`adsim.envs.spaces.Slate`).
    """

    OUTCOME_INFO = ("regret", "clicks", "clicked", "reward_expected", "slate_click_probs")

    def __init__(self, config: EnvConfig, num_envs: int = 1, *, world: World | None = None,
                 estimator: CTREstimator | None = None, candidate_source: CandidateSource | None = None):
        check_slate_config(config)
        from adsim.envs.spaces import Slate

        self.slate_size = L = config.slate_size
        self.click_model = ClickModel.from_config(config)
        self.action_space = Slate(config.n_candidates, L)
        self._page = page_features(L)
        super().__init__(config, num_envs, world=world, estimator=estimator, candidate_source=candidate_source)

    def check_actions(self, actions, num_envs: int | None) -> np.ndarray:
        """Slates (N, L) int64 from ``actions`` (L,) (single env) or (N, L); raises on a bad one."""
        from adsim.envs.spaces import check_slates

        return check_slates(actions, self.config.n_candidates, self.slate_size, num_envs)

    # ----------------------------------------------------------------- exogenous requests
    def _fill_block(self, t0: int) -> None:
        super()._fill_block(t0)  # requests; attraction and oracle through _block_truth_of
        b = self.block
        T = b.length
        steps = np.broadcast_to(t0 + np.arange(T), (self.num_envs, T))
        ep = np.full(self.num_envs, self.episode)
        u = crng.uniforms(self.keys, ep, steps, self.slate_size, offset=SlateStreams.CLICK)  # (N, T, L)
        if self.config.click_model == "dcm":  # continuation uniforms: streams CONTINUE + l
            u = np.concatenate([u, crng.uniforms(self.keys, ep, steps, self.slate_size, offset=SlateStreams.CONTINUE)],
                               axis=-1)
        self._page_uniforms = np.ascontiguousarray(u.transpose(1, 0, 2))  # (T, N, L or 2L), step-major
        self.block = b._replace(context=top_slot_context(b.context))

    def _block_truth_of(self, logits: np.ndarray, position: np.ndarray, p_conv: np.ndarray) -> tuple[np.ndarray, ...]:
        """Attractions (T, N, K), oracle slates (T, N, L) and their expected clicks (T, N) of a block,
        step-major, from its logits laid out candidate-first (K, N, T) (the ad slot is not used)."""
        attraction = np.ascontiguousarray(attraction_prob(logits, self.beta0).transpose(2, 1, 0))
        slate, best = self.click_model.oracle(attraction)
        return attraction, slate, best

    def _take_truth(self, j: int) -> None:
        attraction, slate, best = self._block_truth
        self.attraction, self.oracle_slate, self.best = attraction[j], slate[j], best[j]
        self.click_probs = self.attraction  # SelectionCore's name for the per-candidate truth

    # ----------------------------------------------------------------- one page
    def observation(self) -> dict[str, np.ndarray]:
        """CreativeSelection's observation plus ``page`` (N, L·3); new arrays on every call."""
        obs = super().observation()
        obs["page"] = np.repeat(self._page[None], self.num_envs, axis=0)
        return obs

    def info(self, outcome: SlateOutcome | None = None) -> dict[str, np.ndarray]:
        """Ground truth of the current pages (and the outcome of the step that led to them)."""
        info = {"attraction": self.attraction, "click_probs": self.click_model.click_table(self.attraction),
                "oracle_slate": self.oracle_slate.copy(), "oracle_reward": self.best}
        if outcome is None:
            info["regret"] = np.zeros(self.num_envs)
        else:
            info.update(regret=outcome.regret, clicks=outcome.clicks, clicked=outcome.clicked,
                        reward_expected=outcome.expected_reward, slate_click_probs=outcome.slate_click_probs)
        return info

    def step(self, actions: np.ndarray) -> SlateOutcome:
        """Show the slates ``actions`` (N, L) (validated) on the current pages; draw clicks; serve the next."""
        if self.t >= self.config.horizon:
            raise RuntimeError("episode is over (truncated): reset before stepping again")
        L, cm = self.slate_size, self.click_model
        a = np.take_along_axis(self.attraction, actions, axis=1)  # (N, L) attractions of the shown creatives
        probs = cm.position_probs(a)
        expected = probs.sum(axis=-1)
        u = self._page_uniforms[self.j]
        clicks = cm.simulate(a, u[:, :L], u[:, L:] if u.shape[1] > L else None)
        reward = clicks.sum(axis=1).astype(np.float64)
        regret = self.best - expected
        for l in range(L):  # the platform's estimate learns every shown (creative, click), all positions alike
            self.estimator.observe(self.request, actions[:, l], clicks[:, l])
        self.t += 1
        self._serve()
        over = np.ones if self.t >= self.config.horizon else np.zeros
        return SlateOutcome(reward, clicks, clicks.any(axis=1), regret, expected, probs,
                            np.zeros(self.num_envs, dtype=bool), over(self.num_envs, dtype=bool))

    def render(self, row: int = 0) -> str:
        """ANSI text of slot ``row``'s current page: candidates with attraction and CTR estimate, the oracle."""
        from adsim.envs.spaces import render_candidates

        cm = self.click_model
        text = render_candidates(self.config.language, f"t={self.t} campaign={int(self.campaign[row])} "
                                 f"user={int(self.user[row])} page of {self.slate_size} ({cm!r})",
                                 self.candidates[row], self.attraction[row], "est", self.ctr_estimate[row])
        return text + (f"\n  oracle slate {self.oracle_slate[row].tolist()} expected clicks "
                       f"{float(self.best[row]):.4f}")


__all__ = ["SlateCore", "SlateOutcome", "check_slate_config", "page_features", "top_slot_context"]
