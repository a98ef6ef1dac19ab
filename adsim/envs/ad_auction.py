"""AdAuction: choose a creative and a bid for each ad request, which is an auction for L slots."""

from __future__ import annotations

from typing import Any

from adsim.auction import Auction
from adsim.auction_core import AuctionCore, check_auction_config
from adsim.config import EnvConfig, make_config
from adsim.envs.base import BatchedVectorEnv, SingleEnvView, resolve_config
from adsim.envs.creative_selection import _resolve_estimator, vector_core
from adsim.envs.spaces import auction_observation_space


class AdAuctionEnv(SingleEnvView):
    """
    ## Description
    A day of ad requests on an e-commerce platform, each an auction. One user arrives per step in a
    real-time context for our campaign; K candidate creatives are proposed (a persistent pool or
    fresh personalised ones, as in ``adsim/CreativeSelection-v0``); we choose a creative and a bid.
    The request is an auction among M advertisers (``n_advertisers``: ours and M − 1 competitors
    whose bids are drawn from lognormal distributions depending on the campaign's product category
    and the request's hour) for L slots (``slate_size``) exposed position-based
    (``slate_examination``). The mechanism (``second_price``, ``gsp`` with quality score = the
    platform's pCTR, ``first_price``), the charging (``cpc``/``cpm``) and the reserve price decide
    whether we win, which slot and what we pay (``adsim.auction``). The shown creative is clicked with
    its true CTR at the slot (attraction × exposure, the hidden response model of ``adsim.response``)
    and may convert; we pay from a daily ``budget``. The core is CreativeSelection's
    (``adsim.auction_core.AuctionCore``).

    ## Action Space
    ``Dict(creative=Discrete(K), bid=Box(0, max_bid, shape=()))``. The bid is per click (``cpc``) or
    per impression (``cpm``). A dict ``{"creative": k, "bid": b}`` or a pair ``(k, b)``; a creative
    outside [0, K), a bid outside [0, max_bid] or NaN raises ``ValueError`` naming the value and the
    range. **Budget rule**: a bid above the budget left is capped at the budget left before the
    auction (``info["bid_capped"]``, ``info["bid_used"]``): a payment never exceeds the budget left,
    and a spent budget bids 0, which cannot win.

    ## Observation Space
    CreativeSelection's ``Dict`` plus:

    | key | shape | min | max | content |
    |-----|-------|-----|-----|---------|
    | user, context, campaign, candidates | | | | as CreativeSelection (the context's ad-slot one-hot marks slot 0) |
    | ctr_estimate | (K,) | 0 | 1 | the platform's pCTR per candidate: the quality score of ``gsp``; learns from won impressions |
    | value | (1,) | 0 | max value | our value of one conversion (``conversion_value``, default the item's price × (1 − discount)) |
    | cvr_estimate | (1,) | 0 | 1 | the running conversion rate per click of the campaign |
    | budget_left | (1,) | 0 | 1 | the fraction of the day's budget left (1 without a budget) |
    | day_left | (1,) | 0 | 1 | the fraction of the day's requests left |

    ## Rewards
    The realised surplus: the conversion value if the shown ad converted, minus the payment.

    ## Starting State
    ``reset(seed=s)`` gives the env the request stream of seed ``s`` (users, contexts, campaigns,
    candidates, competitors' bids and pCTRs, click and conversion uniforms) and forgets the CTR and
    CVR estimates; each episode (a day) starts with the full budget.

    ## Episode End
    No termination; truncation after ``horizon`` requests (the end of the day).

    ## Info (ground truth, for evaluation only)
    Of the *returned* request: ``competition`` (L,) the top-L competing scores (bid, or bid × pCTR
    under gsp and cpm); ``thresholds`` (K, L) the minimum bid of creative k for slot l (reserve
    included); ``ctr`` (K, L) true CTR of creative k at slot l; ``attraction`` (K,); ``ctr_estimate``
    (K,); ``value_per_click`` (true: conversion value × P(conversion | click)); ``conversion_value``;
    ``budget_remaining``; ``best_bid``, ``best_surplus`` (K,) each creative's hindsight best bid under
    the budget left and its expected surplus; ``believed_bid`` (K,) the best bid with the pCTR in
    place of the true CTR; ``oracle_creative``, ``oracle_bid``, ``oracle_surplus``; the day's running
    ``spend_total``, ``wins_total``, ``clicks_total``, ``conversions_total``, ``value_total``,
    ``surplus_total`` and ``cpa_excess`` (``max(0, spend − cpa_cap · conversions)``, 0 without a cap).
    After a step, of the auction just run: ``won``, ``slot`` (−1 lost), ``price``, ``spend``,
    ``clicked``, ``converted``, ``value``, ``surplus`` (the reward), ``reward_expected`` (its expected
    surplus), ``bid_used``, ``bid_capped``, ``regret`` (``oracle_surplus − reward_expected``) and its
    exact decomposition ``regret_allocation + regret_estimation + regret_overbid + regret_underbid``
    (``adsim.auction``; 0 at reset).

    The env's ``auction`` (``adsim.auction.Auction``) scores any (creative, bid) offline on a
    (batched) info: ``env.auction.outcome(info, creative, bid)`` and ``env.auction.regret(info, …)``.

    ## Arguments
    | argument | default | meaning |
    |----------|---------|---------|
    | config | None | an ``EnvConfig``; default ``make_config(preset)`` |
    | preset | "default" | any of ``adsim.config.PRESETS``, e.g. ``auction`` (M = 10, L = 3) |
    | estimator, ctr_model | None | the CTR estimate, as for CreativeSelection |
    | **overrides | | any ``EnvConfig`` / ``WorldConfig`` field: ``mechanism``, ``pricing``, ``reserve_price``, ``n_advertisers``, ``slate_size`` (L), ``budget``, ``cpa_cap``, ``max_bid``, ``conversion_value``, ``competitor_*`` … |

    ## Vectorized environment
    ``gymnasium.make_vec("adsim/AdAuction-v0", num_envs=N, vectorization_mode="vector_entry_point")``
    returns :class:`AdAuctionVectorEnv`: actions ``{"creative": (N,) int, "bid": (N,) float}``,
    CreativeSelection's seeding, same-step autoreset at the horizon (the end of the day).

    ## Stacked scenarios
    ``make_vec(..., num_envs=G·B, world_seeds=[w_0, …])``: group g is, bit for bit, the unstacked
    vector env of B sub-envs on world seed ``w_g`` (``adsim.stacking.StackedCore``).

    ## Version History
    * v0: initial version.
    """

    def __init__(self, config: EnvConfig | None = None, preset: str = "default", render_mode: str | None = None,
                 estimator=None, ctr_model: str | None = None, **overrides: Any):
        config = resolve_config(config, EnvConfig, make_config, preset, overrides)
        check_auction_config(config)
        core = AuctionCore(config, 1, estimator=_resolve_estimator(config, estimator, ctr_model))
        self.auction = core.auction
        self._init_view(core, auction_observation_space(core.world, config.n_candidates, core.max_value), render_mode)


class AdAuctionVectorEnv(BatchedVectorEnv):
    """Native batched AdAuction: N auctions stepped by one NumPy computation.

    See :class:`AdAuctionEnv` for spaces and semantics. Actions: a dict ``{"creative": (N,) int,
    "bid": (N,) float}``. ``info`` holds batched arrays ((N,), (N, K), (N, L) or (N, K, L));
    ``auction`` is the env's :class:`adsim.auction.Auction`.
    """

    auctions = True
    """An auction env: actions are (creative, bid) dicts (what runners check)."""

    def __init__(self, num_envs: int = 1, config: EnvConfig | None = None, preset: str = "default",
                 render_mode: str | None = None, estimator=None, ctr_model: str | None = None,
                 world_seeds=None, **overrides: Any):
        config = resolve_config(config, EnvConfig, make_config, preset, overrides)
        check_auction_config(config)
        core, world = vector_core(AuctionCore, config, num_envs, estimator, ctr_model, world_seeds)
        first = core if world_seeds is None else core.cores[0]
        self.auction = Auction.from_config(config)  # every stacked world's: they share the config
        self._init_vector(core, auction_observation_space(world, config.n_candidates, first.max_value),
                          render_mode)
