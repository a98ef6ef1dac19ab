"""Request generation: who arrives, in which context, in which ad slot, for which campaign.

Every exogenous draw of every environment is a uniform of the counter-based streams of
:mod:`adsim.rng` at ``(slot key, episode, step, stream index)``; this module is where the stream
indices live (:class:`SelectionStreams`, :class:`SessionStreams`) and where uniforms become
requests:

* :func:`arrivals` — user and real-time context (hour, weekend, location, weather, device);
* :func:`ad_slots` and :func:`campaigns` — the ad slot of an impression, the campaign of an episode;
* :class:`ContextTables` — observable context features and hidden topic multipliers of every
  context combination, computed once per world;
* :class:`RequestGenerator` — CreativeSelection's blocks of requests (candidates from the pools or
  the personalised source, fatigue-free click logits, conversion probabilities), and the β0 that
  calibrates a world's mean CTR (:func:`scenario_intercept`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from adsim import compiled
from adsim import rng as crng
from adsim.config import WorldConfig
from adsim.creative.sampler import DRAWS_PER_CREATIVE, CandidateSource, creative_parts
from adsim.pools import CampaignPools, campaign_pools, template_sampler
from adsim.response import (
    ITEM_WEIGHT,
    calibrate_intercept,
    click_logits,
    context_log_multiplier,
    conversion_prob,
    creative_affinity,
    creative_static_logit,
    discount_gain,
    has_discount,
    interests_in_context,
    item_interest,
)
from adsim.world import DEVICES, LOCATIONS, POSITION_FACTOR, WEATHERS, World, cached_world, context_features

CALIBRATION_REQUESTS = 20000


class SelectionStreams:
    """Stream indices of a CreativeSelection slot: every request ``(episode, step)`` draws
    ``USER .. CONVERSION`` and, in personalised mode, ``K · DRAWS_PER_CREATIVE`` candidate draws from
    ``CANDIDATES`` on; an episode's campaign is stream ``CAMPAIGN`` at step 0."""

    USER, HOUR, WEEKEND, LOCATION, WEATHER, DEVICE, SLOT, CLICK, CONVERSION = range(9)
    N_FIXED = 9
    CANDIDATES = 16
    CAMPAIGN = 4000


class SlateStreams:
    """Stream indices a SlateSelection request ``(episode, step)`` draws besides its
    :class:`SelectionStreams`: position l's click uniform ``CLICK + l`` and, for the dependent click
    model, its continuation uniform ``CONTINUE + l`` (l < 10, after ``SelectionStreams.CAMPAIGN``)."""

    CLICK = 4001
    CONTINUE = 4011


class AuctionStreams:
    """Stream indices an AdAuction request ``(episode, step)`` draws besides its
    :class:`SelectionStreams`: competitor j's bid uniform ``BID + j`` and pCTR uniform ``QUALITY + j``
    (j < 31, after :class:`SlateStreams`, below the 4096 streams of a position)."""

    BID = 4021
    QUALITY = 4052


class SessionStreams:
    """Stream indices of an AdSession slot: a session (episode) draws its user, context and campaign
    at step 0 from ``USER .. CAMPAIGN``; impression ``t`` draws ``SLOT``, ``CLICK`` and ``LEAVE`` at step t."""

    USER, HOUR, WEEKEND, LOCATION, WEATHER, DEVICE, CAMPAIGN = range(16, 23)
    N_SESSION = 7
    SLOT, CLICK, LEAVE = range(3)
    N_IMPRESSION = 3


class Arrivals(NamedTuple):
    """Users and their real-time contexts (int arrays of one shape)."""

    user: np.ndarray
    hour: np.ndarray
    weekend: np.ndarray
    location: np.ndarray
    weather: np.ndarray
    device: np.ndarray


def arrivals(world: World, u: np.ndarray) -> Arrivals:
    """Users and contexts from uniforms ``u`` (..., 6) in the order user, hour, weekend, location,
    weather, device (both stream layouts keep this order)."""
    cm, n_users = world.context, world.config.n_users
    return Arrivals(np.minimum((u[..., 0] * n_users).astype(np.int64), n_users - 1),
                    crng.categorical(u[..., 1], cm.hour_cdf),
                    (u[..., 2] < 2 / 7).astype(np.int64),
                    crng.categorical(u[..., 3], cm.location_cdf),
                    crng.categorical(u[..., 4], cm.weather_cdf),
                    crng.categorical(u[..., 5], cm.device_cdf))


def ad_slots(world: World, u: np.ndarray) -> np.ndarray:
    """Ad slots (0 = top) from uniforms."""
    return crng.categorical(u, world.context.position_cdf)


def campaigns(n_campaigns: int, u: np.ndarray) -> np.ndarray:
    """Campaign ids, uniform over ``n_campaigns``, from uniforms."""
    return np.minimum((u * n_campaigns).astype(np.int64), n_campaigns - 1)


# Sizes of the context fields, in the order they are combined into one table index.
_CTX_SIZES = (24, 2, len(LOCATIONS), len(WEATHERS), len(DEVICES), len(POSITION_FACTOR))


class ContextTables:
    """Lookups over all context combinations of a world: observable features and topic multipliers."""

    def __init__(self, world: World):
        grids = np.meshgrid(*[np.arange(n) for n in _CTX_SIZES], indexing="ij")
        self.features = context_features(*(g.reshape(-1) for g in grids))  # (Π sizes, CONTEXT_DIM)
        mg = np.meshgrid(*[np.arange(n) for n in _CTX_SIZES[:4]], indexing="ij")
        self.multiplier = np.exp(context_log_multiplier(world, *(g.reshape(-1) for g in mg)))  # (24·2·5·4, d)

    @staticmethod
    def multiplier_index(a: Arrivals) -> np.ndarray:
        return ((a.hour * 2 + a.weekend) * len(LOCATIONS) + a.location) * len(WEATHERS) + a.weather

    @staticmethod
    def feature_index(a: Arrivals, position: np.ndarray) -> np.ndarray:
        return (ContextTables.multiplier_index(a) * len(DEVICES) + a.device) * len(POSITION_FACTOR) + position


class Block(NamedTuple):
    """Exogenous CreativeSelection requests for steps ``t0 .. t0+T-1`` of all slots (read-only arrays)."""

    t0: int
    user: np.ndarray  # (N, T)
    device: np.ndarray  # (N, T)
    position: np.ndarray  # (N, T)
    context: np.ndarray  # (N, T, CONTEXT_DIM) float32
    u_click: np.ndarray  # (N, T)
    u_conv: np.ndarray  # (N, T)
    candidates: np.ndarray  # (N, T, K, CREATIVE_SLOTS)
    logits: np.ndarray  # (N, T, K) without β0 and fatigue
    p_conv: np.ndarray  # (N, T)

    @property
    def length(self) -> int:
        return self.user.shape[1]


class RequestGenerator:
    """CreativeSelection's requests on one world: candidates and fatigue-free truth from uniforms.

    Args:
        world: the hidden world.
        n_candidates: K.
        mode: ``"pool"`` (the campaign's pool creatives) or ``"personalized"`` (fresh from ``sampler``).
        pools: the world's :class:`CampaignPools`.
        sampler: the personalised candidate source.

    ``kernels`` is :mod:`adsim._compiled_numba` where a pool-mode block can be computed compiled
    (:meth:`compiled_block`, the same numbers; ``adsim.compiled``), None otherwise: without numba,
    with ``ADSIM_NUMBA=0``, in personalised mode, with drift, or for more than 128 topics.
    """

    def __init__(self, world: World, n_candidates: int, mode: str, pools: CampaignPools, sampler: CandidateSource):
        self.world, self.K, self.mode, self.pools, self.sampler = world, n_candidates, mode, pools, sampler
        self.tables = ContextTables(world)
        S = SelectionStreams
        self.n_draws = S.N_FIXED if mode == "pool" else S.CANDIDATES + n_candidates * DRAWS_PER_CREATIVE
        self._by_campaign: tuple[np.ndarray, dict[str, np.ndarray]] | None = None
        # the compiled pool-mode block (adsim.compiled), where it gives this NumPy's numbers: not with
        # the drift's time-dependent multipliers (exp and sin of the time), which only NumPy computes
        stationary = not world.config.drift_amplitude > 0
        self.kernels = compiled.kernels() if mode == "pool" and stationary and compiled.orders_match(world.d) else None
        if self.kernels is not None:  # the pools' φ with the candidates last: the K dot products advance together
            self._phi_dk = np.ascontiguousarray(pools.phi.transpose(0, 2, 1))
            self._lane_order = self.kernels.lane_order(world.d)
        self._scratch_arrays: tuple[np.ndarray, ...] | None = None

    def __getstate__(self) -> dict:
        """Pickled (and deep-copied) with whether it computes compiled, not the kernels' module."""
        state = self.__dict__.copy()
        state["kernels"] = self.kernels is not None
        return state

    def __setstate__(self, state: dict) -> None:
        compiled_block = state.pop("kernels")
        self.__dict__.update(state)  # the kernels of this process, if it has them: the same numbers either way
        self.kernels = compiled.kernels() if compiled_block and compiled.orders_match(self.world.d) else None

    def _campaign_terms(self, campaign: np.ndarray) -> dict[str, np.ndarray]:
        """Everything the requests of slots running ``campaign`` (N,) read from their campaign: gathered
        once per episode (the campaigns change only when an episode starts), not at every block."""
        cached = self._by_campaign
        if cached is not None and cached[0].shape == campaign.shape and np.array_equal(cached[0], campaign):
            return cached[1]
        w, pools = self.world, self.pools
        product = w.campaign_product[campaign]
        terms = {"goal": w.campaign_goal[campaign], "category": w.campaign_category[campaign], "product": product,
                 "product_topic": w.product_topic[product], "product_tier": w.product_tier[product] / 2.0,
                 "product_discount": w.product_discount[product]}
        if self.mode == "pool":
            # one campaign in every slot (a fixed campaign): a broadcast view, not an (N, K, d) gather
            phi = (np.broadcast_to(pools.phi[campaign[0]], (campaign.shape[0],) + pools.phi.shape[1:])
                   if (campaign == campaign[0]).all() else pools.phi[campaign])
            terms.update(creatives=pools.creatives[campaign], static=pools.static[campaign],
                         discount=pools.discount[campaign], phi=phi)
            # candidate-first (K, N, ...) copies for the logits, computed with the candidates as rows
            terms.update(phi_k=np.ascontiguousarray(phi.transpose(1, 0, 2)) if phi.strides[0] else
                         np.broadcast_to(pools.phi[campaign[0]][:, None], (self.K,) + phi.shape[:1] + phi.shape[2:]),
                         static_k=np.ascontiguousarray(terms["static"].T)[..., None],
                         # 0.0 / 1.0: gain · discount is the same product as with the bool cast, without the cast
                         discount_k=np.ascontiguousarray(terms["discount"].T, dtype=np.float64)[..., None])
        for a in terms.values():
            if a.flags.writeable:
                a.flags.writeable = False
        self._by_campaign = (campaign.copy(), terms)
        return terms

    def requests(self, u: np.ndarray, campaign: np.ndarray, time: np.ndarray, t0: int) -> Block:
        """Requests from uniforms ``u`` (N, T, n_draws) of slots running ``campaign`` (N,) at ``time`` (N, T)."""
        w, K, S = self.world, self.K, SelectionStreams
        arr = arrivals(w, u[..., S.USER : S.DEVICE + 1])
        user, device = arr.user, arr.device
        position = ad_slots(w, u[..., S.SLOT])
        terms = self._campaign_terms(campaign)

        def per_request(name: str) -> np.ndarray:  # (N, T, ...) view of a campaign term (N, ...)
            v = terms[name][:, None]
            return v if user.shape[1] == 1 else np.broadcast_to(v, user.shape + v.shape[2:])

        mult_idx = self.tables.multiplier_index(arr)
        theta = interests_in_context(w, user, arr.hour, arr.weekend, arr.location, arr.weather, time,
                                     multiplier=np.take(self.tables.multiplier, mult_idx, axis=0))
        if self.mode == "pool":
            cands = per_request("creatives")
            # (K, N, T): each candidate's scores a contiguous row; the same dot products (θ·φ over d,
            # the einsum's inner loop) as "ntd,nkd->ntk", so the same numbers
            affinity = np.empty((K,) + user.shape)
            np.einsum("ntd,knd->knt", theta, terms["phi_k"], out=affinity)
            static, discount = terms["static_k"], terms["discount_k"]
        else:
            goal, category = per_request("goal"), per_request("category")
            draws = u[..., S.CANDIDATES:].reshape(user.shape + (K, DRAWS_PER_CREATIVE))
            cands = self.sampler.candidates(draws, goal, category, w.user_features[user])
            parts = creative_parts(cands, w.lexicon)  # once, for the static logit, affinity and discount
            static = creative_static_logit(w, cands, goal, category, parts=parts)
            affinity = creative_affinity(w, theta, parts)
            discount = has_discount(w, cands, parts=parts)
        product = per_request("product")
        item = item_interest(w, theta, product, topic=per_request("product_topic"))
        if self.mode == "pool":  # (K, N, T) computed, (N, T, K) a view of it
            logits = click_logits(w, theta, user, device, item, affinity, discount, static, candidate_axis=0)
            logits = logits.transpose(1, 2, 0)
        else:
            logits = click_logits(w, theta, user, device, item, affinity, discount, static)
        ctx_idx = (mult_idx * len(DEVICES) + device) * len(POSITION_FACTOR) + position
        blk = Block(t0, user, device, position, np.take(self.tables.features, ctx_idx, axis=0), u[..., S.CLICK],
                    u[..., S.CONVERSION], cands, logits, conversion_prob(w, item, user, product, per_request("product_tier"),
                                                  per_request("product_discount")))
        for a in blk[1:]:
            if a.flags.writeable:
                a.flags.writeable = False
        return blk

    def _scratch(self, N: int, T: int) -> tuple[np.ndarray, ...]:
        """:meth:`compiled_block`'s scratch arrays for N slots and T steps (nothing returned holds them):
        the σ's arguments (N, T, K + 1), θ (N·T, d) and the table rows (2, N·T), allocated once per shape."""
        if self._scratch_arrays is None or self._scratch_arrays[1].shape[0] != N * T:
            self._scratch_arrays = (np.empty((N, T, self.K + 1)), np.empty((N * T, self.world.d)),
                                    np.empty((2, N * T), dtype=np.int64))
        return self._scratch_arrays

    def compiled_block(self, keys: np.ndarray, episode: int, t0: int, T: int, campaign: np.ndarray,
                       beta0: float) -> tuple[Block, np.ndarray]:
        """Pool-mode requests of steps ``t0 .. t0+T-1`` of slots with stream ``keys`` (N,) in ``episode``
        running ``campaign`` (N,), by the compiled kernels (:attr:`kernels`, not None): the
        :class:`Block` that ``requests`` computes from the streams' uniforms, bit for bit (its logits
        C-contiguous (N, T, K), not a view of (K, N, T)), and exp(−β0 − logits) (N, T, K + 1), the
        click σ's exponentials for the block's truth (``adsim._compiled_numba.pool_truth``)."""
        w, K, kern, pools = self.world, self.K, self.kernels, self.pools
        cm, N = w.context, keys.shape[0]
        beta = w.config.interest_strength
        user, device, position = (np.empty((N, T), dtype=np.int64) for _ in range(3))
        context = np.empty((N, T, self.tables.features.shape[1]), dtype=self.tables.features.dtype)
        u = np.empty((2, N, T))  # click and conversion uniforms, stream-major as requests() reads them
        logits = np.empty((N, T, K))
        neg_z, theta, rows = self._scratch(N, T)
        kern.pool_requests(keys, int(episode), int(t0), int(T), int(w.config.n_users), 2 / 7, cm.hour_cdf,
                           cm.location_cdf, cm.weather_cdf, cm.device_cdf, cm.position_cdf, 2, len(LOCATIONS),
                           len(WEATHERS), len(DEVICES), len(POSITION_FACTOR), w.user_theta, self.tables.multiplier,
                           self.tables.features, campaign, self._phi_dk, pools.static, pools.discount,
                           w.campaign_product, w.product_topic, w.product_tier, w.product_discount, w.user_bias,
                           cm.device_bias, w.user_price_sens, float(beta), float(beta * ITEM_WEIGHT),
                           float(discount_gain(w)), float(w.d), float(-beta0), self._lane_order, user, device,
                           position, context, u[0], u[1], logits, neg_z, theta, rows)
        with np.errstate(over="ignore"):  # exp(710+) = inf gives σ = 0 exactly, as meant
            np.exp(neg_z, out=neg_z)
        p_conv = neg_z[..., K] + 1.0  # σ = 1 / (1 + exp(−x)), as adsim.response.sigmoid
        np.divide(1.0, p_conv, out=p_conv)
        creatives = self._campaign_terms(campaign)["creatives"][:, None]  # gathered once per episode
        if T > 1:
            creatives = np.broadcast_to(creatives, (N, T) + creatives.shape[2:])
        blk = Block(t0, user, device, position, context, u[0], u[1], creatives, logits, p_conv)
        for a in blk[1:]:
            if a.flags.writeable:
                a.flags.writeable = False
        return blk, neg_z

    def calibrate(self) -> float:
        """β0 such that a uniformly random policy's mean CTR is the target (on a reference sample)."""
        w = self.world
        rng = np.random.default_rng(np.random.SeedSequence([w.config.seed, 2, self.K, int(self.mode == "pool")]))
        n = CALIBRATION_REQUESTS
        u = rng.random((n, 1, self.n_draws))
        campaign = rng.integers(0, w.config.n_campaigns, size=n)
        time = rng.integers(0, max(w.config.drift_period, 1), size=(n, 1))
        blk = self.requests(u, campaign, time, t0=0)
        self._by_campaign = None  # the reference sample's campaign terms are not kept
        return calibrate_intercept(np.ascontiguousarray(blk.logits[:, 0]), blk.position[:, 0], w.config.target_ctr, world_config=w.config)


@functools.lru_cache(maxsize=32)
def scenario_intercept(world: WorldConfig, n_candidates: int, mode: str) -> float:
    """The calibrated β0 of a world config with the built-in pools and sampler (computed once per process)."""
    w = cached_world(world)
    return RequestGenerator(w, n_candidates, mode, campaign_pools(world, n_candidates), template_sampler(w)).calibrate()




def clear_scenario_caches() -> None:
    """Forget the per-process caches of worlds, pools and β0 (for timing their construction)."""
    cached_world.cache_clear()
    campaign_pools.cache_clear()
    scenario_intercept.cache_clear()


__all__ = ["Arrivals", "AuctionStreams", "Block", "CALIBRATION_REQUESTS", "ContextTables", "RequestGenerator", "SelectionStreams",
           "SessionStreams", "SlateStreams", "ad_slots", "arrivals", "campaigns", "clear_scenario_caches", "scenario_intercept"]
