"""The batched simulation core behind CreativeSelection (single and vector envs alike).

``SelectionCore`` simulates N request slots ("sub-environments") that share one hidden world. Each
slot has its own stream key; every exogenous draw of a slot — user, context, ad slot, personalised
candidates, click and conversion uniforms — is a pure function of (key, episode, step), see
``adsim.rng``. So draws do not depend on actions, on N, or on other slots: common random numbers
hold exactly, and the single env is literally the batch of one.

Exogenous requests are computed ahead in blocks of ``BLOCK_IMPRESSIONS`` impressions (one NumPy
computation for all slots and several steps); a step then only gathers, compares and updates.
All slots advance in lock-step: CreativeSelection has no early termination, so every slot
truncates at the same step.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from adsim import rng as crng
from adsim.config import EnvConfig, WorldConfig
from adsim.creative.sampler import (
    CREATIVE_SLOTS,
    DRAWS_PER_CREATIVE,
    MAX_PHRASES,
    N_ATTRS,
    CandidateSource,
    TemplateSampler,
    creative_parts,
)
from adsim.estimate import CTREstimator, GroupedEstimator, Request, RunningCTR
from adsim.observation import user_layout
from adsim.response import (
    calibrate_intercept,
    click_logits,
    context_log_multiplier,
    conversion_prob,
    creative_affinity,
    creative_phi,
    creative_static_logit,
    has_discount,
    interests_in_context,
    item_interest,
    sigmoid,
)
from adsim.world import (
    CONTEXT_DIM,
    DEVICES,
    LOCATIONS,
    POSITION_FACTOR,
    WEATHERS,
    World,
    build_world,
    context_features,
)

# Sizes of the context fields, in the order they are combined into one table index.
_CTX_SIZES = (24, 2, len(LOCATIONS), len(WEATHERS), len(DEVICES), len(POSITION_FACTOR))

BLOCK_IMPRESSIONS = 1 << 15
CALIBRATION_REQUESTS = 20000
FATIGUE_MEMORY_LIMIT = 1 << 31  # bytes

# stream indices of the per-request draws
_USER, _HOUR, _WEEKEND, _LOC, _WEATHER, _DEVICE, _POS, _CLICK, _CONV = range(9)
_N_FIXED = 9
_CAND = 16
_EPISODE = 4000  # episode-level draws (campaign), taken at step 0


# (WorldConfig, K, mode) -> (pools, β0): both are deterministic in the key, and take ~0.5 s to build.
_SCENARIO_CACHE: dict[tuple, tuple[np.ndarray, float]] = {}


@functools.lru_cache(maxsize=16)
def cached_world(config: WorldConfig) -> World:
    """Build (once per process) the world of a config; worlds are immutable."""
    return build_world(config)


class Block(NamedTuple):
    """Exogenous requests for steps ``t0 .. t0+T-1`` of all slots (read-only arrays)."""

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


class StepOutcome(NamedTuple):
    reward: np.ndarray  # (N,) float64
    clicked: np.ndarray  # (N,) bool
    converted: np.ndarray  # (N,) bool
    regret: np.ndarray  # (N,) pseudo-regret of the action (expected-reward units)
    expected_reward: np.ndarray  # (N,) expected reward of the action taken


class SelectionCore:
    """N request slots on one world. See the module docstring."""

    def __init__(self, config: EnvConfig, num_envs: int = 1, *, world: World | None = None,
                 estimator: CTREstimator | None = None, candidate_source: CandidateSource | None = None):
        if not isinstance(config, EnvConfig):
            raise TypeError(f"config must be an EnvConfig, got {type(config).__name__}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs == {num_envs!r}, must be an int >= 1")
        self.config, self.num_envs = config, int(num_envs)
        self.world = world if world is not None else cached_world(config.world)
        w, K = self.world, config.n_candidates
        self.sampler = candidate_source if candidate_source is not None else TemplateSampler(
            w.lexicon, w.audience_by_category,
            category_slice=user_layout(config.world.n_interest_tags)["category_shares"])
        # pools and β0 depend on the candidate source: only the built-in one is cached per scenario
        cache_key = (config.world, K, config.mode) if world is None and candidate_source is None else None
        cached = _SCENARIO_CACHE.get(cache_key)
        self.pools = cached[0] if cached else self._build_pools()
        self.campaign_category = w.campaign_category
        self.pool_static = creative_static_logit(w, self.pools, w.campaign_goal, self.campaign_category)
        self.pool_phi = creative_phi(w, self.pools)  # (n_campaigns, K, d)
        self.pool_discount = has_discount(w, self.pools)  # (n_campaigns, K)
        self._tables()
        self.beta0 = cached[1] if cached else self._calibrate()
        if cache_key is not None and not cached:
            if len(_SCENARIO_CACHE) >= 32:
                _SCENARIO_CACHE.pop(next(iter(_SCENARIO_CACHE)))
            _SCENARIO_CACHE[cache_key] = (self.pools, self.beta0)
        self.estimator = estimator if estimator is not None else RunningCTR(
            config.mode, config.world.n_campaigns, K, w.n_parts, config.estimate_prior_strength)
        # per-step lookups of world tables by slot-local ids (a stacked core offsets them per group)
        self._user_features, self._user_fatigue = w.user_features, w.user_fatigue_sens
        self._campaign_features, self._campaign_value = w.campaign_features, w.campaign_value
        self._user_offset = self._campaign_offset = 0
        self._beta0 = self.beta0
        self._fatigue = config.fatigue_strength > 0
        if self._fatigue:
            need = self.num_envs * config.world.n_users * w.lexicon.n_attr_values * 4
            if need > FATIGUE_MEMORY_LIMIT:
                raise ValueError(
                    f"fatigue memory for num_envs == {self.num_envs} and n_users == {config.world.n_users} "
                    f"needs {need / 2**30:.1f} GiB (> 2 GiB); use fewer envs or users, or fatigue_strength=0")
        self._block_len = max(1, BLOCK_IMPRESSIONS // (self.num_envs * K))
        self.keys: np.ndarray | None = None

    # ----------------------------------------------------------------- construction
    def _build_pools(self) -> np.ndarray:
        """(n_campaigns, K, CREATIVE_SLOTS): each campaign's persistent creatives (distinct)."""
        w, K = self.world, self.config.n_candidates
        rng = np.random.default_rng(np.random.SeedSequence([w.config.seed, 1, K]))
        pools = []
        for c in range(w.config.n_campaigns):
            u = rng.random((8 * K, DRAWS_PER_CREATIVE))
            cand = self.sampler.candidates(u, w.campaign_goal[c], w.campaign_category[c])
            _, first = np.unique(cand, axis=0, return_index=True)
            first = np.sort(first)
            if first.size < K:  # lexicon too small for K distinct creatives: allow repeats
                first = np.concatenate([first, np.setdiff1d(np.arange(8 * K), first)])
            pools.append(cand[first[:K]])
        pools = np.stack(pools)
        pools.flags.writeable = False  # shared by every core of this scenario (see _SCENARIO_CACHE)
        return pools

    def _calibrate(self) -> float:
        """β0 such that a uniformly random policy's mean CTR is the target (on a reference sample)."""
        w = self.world
        rng = np.random.default_rng(np.random.SeedSequence([w.config.seed, 2, self.config.n_candidates,
                                                            int(self.config.mode == "pool")]))
        n = CALIBRATION_REQUESTS
        u = rng.random((n, 1, self._n_draws))
        campaign = rng.integers(0, w.config.n_campaigns, size=n)
        time = rng.integers(0, max(w.config.drift_period, 1), size=(n, 1))
        blk = self._requests(u, campaign, time, t0=0)
        return calibrate_intercept(blk.logits[:, 0], blk.position[:, 0], w.config.target_ctr)

    def _tables(self) -> None:
        """Lookup tables over all context combinations: observable features and topic multipliers."""
        grids = np.meshgrid(*[np.arange(n) for n in _CTX_SIZES], indexing="ij")
        hour, weekend, loc, weather, device, pos = (g.reshape(-1) for g in grids)
        self._ctx_features = context_features(hour, weekend, loc, weather, device, pos)
        mg = np.meshgrid(np.arange(24), np.arange(2), np.arange(len(LOCATIONS)), np.arange(len(WEATHERS)),
                         indexing="ij")
        self._ctx_multiplier = np.exp(context_log_multiplier(self.world, *(g.reshape(-1) for g in mg)))

    @property
    def _n_draws(self) -> int:
        if self.config.mode == "pool":
            return _N_FIXED
        return _CAND + self.config.n_candidates * DRAWS_PER_CREATIVE

    # ----------------------------------------------------------------- exogenous requests
    def _requests(self, u: np.ndarray, campaign: np.ndarray, time: np.ndarray, t0: int) -> Block:
        """Requests from uniforms ``u`` (N, T, n_draws) for slots running ``campaign`` (N,)."""
        w, cm, K = self.world, self.world.context, self.config.n_candidates
        n_users = w.config.n_users
        user = np.minimum((u[..., _USER] * n_users).astype(np.int64), n_users - 1)
        hour = crng.categorical(u[..., _HOUR], cm.hour_cdf)
        weekend = (u[..., _WEEKEND] < 2 / 7).astype(np.int64)
        loc = crng.categorical(u[..., _LOC], cm.location_cdf)
        weather = crng.categorical(u[..., _WEATHER], cm.weather_cdf)
        device = crng.categorical(u[..., _DEVICE], cm.device_cdf)
        position = crng.categorical(u[..., _POS], cm.position_cdf)
        camp = np.broadcast_to(campaign[:, None], user.shape)
        goal, category = w.campaign_goal[camp], self.campaign_category[camp]
        mult_idx = ((hour * 2 + weekend) * len(LOCATIONS) + loc) * len(WEATHERS) + weather
        theta = interests_in_context(w, user, hour, weekend, loc, weather, time,
                                     multiplier=self._ctx_multiplier[mult_idx])
        if self.config.mode == "pool":
            shape = user.shape + (K,)
            cands = np.broadcast_to(self.pools[campaign][:, None], shape + self.pools.shape[2:])
            static = np.broadcast_to(self.pool_static[campaign][:, None], shape)
            discount = np.broadcast_to(self.pool_discount[campaign][:, None], shape)
            affinity = np.einsum("ntd,nkd->ntk", theta, self.pool_phi[campaign])
        else:
            draws = u[..., _CAND:].reshape(user.shape + (K, DRAWS_PER_CREATIVE))
            cands = self.sampler.candidates(draws, goal, category, w.user_features[user])
            static = creative_static_logit(w, cands, goal, category)
            parts = creative_parts(cands, w.lexicon)
            affinity = creative_affinity(w, theta, parts)
            discount = w.part_is_discount[parts].any(-1)
        product = w.campaign_product[camp]
        item = item_interest(w, theta, product)
        logits = click_logits(w, theta, user, device, item, affinity, discount, static)
        ctx_idx = ((((hour * 2 + weekend) * len(LOCATIONS) + loc) * len(WEATHERS) + weather) * len(DEVICES)
                   + device) * len(POSITION_FACTOR) + position
        blk = Block(t0, user, device, position, self._ctx_features[ctx_idx],
                    u[..., _CLICK], u[..., _CONV], cands, logits, conversion_prob(w, item, user, product))
        for a in blk[1:]:
            a.flags.writeable = False
        return blk

    def _fill_block(self, t0: int) -> None:
        T = min(self._block_len, self.config.horizon + 1 - t0)
        steps = t0 + np.arange(T)
        ep = np.full(self.num_envs, self.episode)
        u = crng.uniforms(self.keys, ep, np.broadcast_to(steps, (self.num_envs, T)), self._n_draws)
        time = self.episode * self.config.horizon + steps
        self.block = self._requests(u, self.campaign, np.broadcast_to(time, (self.num_envs, T)), t0)

    # ----------------------------------------------------------------- episode control
    def seed(self, seed) -> None:
        """Seed every slot's stream; forget the CTR estimate and the episode count.

        An int ``seed`` gives slot ``i`` the ``i``-th child stream of ``SeedSequence(seed)``: slot 0
        is the stream a single env gets from the same seed, and different seeds never share a
        stream (so scenario seeds 0, 1, 2 … are independent however many slots run side by side).
        A sequence of N ints gives slot ``i`` the single-env stream of ``seed[i]``.
        """
        self.keys = crng.stream_keys(seed, self.num_envs)
        self.episode = -1
        self.estimator.reset()

    def start_episode(self) -> None:
        """Begin the next episode in every slot: draw campaigns, clear fatigue, serve request 0."""
        if self.keys is None:
            raise RuntimeError("call seed() (env.reset) before starting an episode")
        self.episode += 1
        if self.config.campaign is not None:
            self.campaign = np.full(self.num_envs, self.config.campaign, dtype=np.int64)
        else:
            u = crng.uniforms(self.keys, np.full(self.num_envs, self.episode), np.zeros(self.num_envs),
                              1, offset=_EPISODE)[:, 0]
            self.campaign = np.minimum((u * self.world.config.n_campaigns).astype(np.int64),
                                       self.world.config.n_campaigns - 1)
        self.campaign_features = self._campaign_features[self.campaign + self._campaign_offset]
        self.campaign_features.flags.writeable = False
        self.value = self._campaign_value[self.campaign + self._campaign_offset]
        if self._fatigue:
            n_users, n_attr = self.world.config.n_users, self.world.lexicon.n_attr_values
            self.memory = np.zeros((self.num_envs, n_users, n_attr), dtype=np.float32)
            self.last_seen = np.zeros((self.num_envs, n_users), dtype=np.float64)
        self.t = 0
        self._fill_block(0)
        self._serve()

    def _serve(self) -> None:
        """Make request ``t`` current: its candidates, true probabilities and observation."""
        j = self.t - self.block.t0
        if j >= self.block.length:
            self._fill_block(self.t)
            j = 0
        b, rows = self.block, np.arange(self.num_envs)
        self.j = j
        self.user = b.user[:, j]
        self.candidates = b.candidates[:, j]
        logits = b.logits[:, j]
        if self._fatigue:
            logits = logits - self._fatigue_term()
        self.click_probs = sigmoid(logits + self._beta0) * POSITION_FACTOR[b.position[:, j]][:, None]
        if self.config.reward == "click":
            self.expected = self.click_probs
        else:
            self.expected = self.click_probs * b.p_conv[:, j, None]
            if self.config.reward == "revenue":
                self.expected = self.expected * self.value[:, None]
        self.request = Request(self.campaign + self._campaign_offset,
                               self._user_features[self.user + self._user_offset], b.context[:, j],
                               self.campaign_features, self.candidates)
        self.ctr_estimate = self.estimator.estimate(self.request)
        del rows

    def _attr_index(self, cands: np.ndarray) -> np.ndarray:
        return cands[..., MAX_PHRASES : MAX_PHRASES + N_ATTRS] + self.world.lexicon.attr_offsets

    def _fatigue_term(self) -> np.ndarray:
        rows = np.arange(self.num_envs)
        now = float(self.t)
        halflife = self.config.fatigue_halflife
        decay = 0.5 ** ((now - self.last_seen[rows, self.user]) / halflife)
        mem = self.memory[rows, self.user] * decay[:, None].astype(np.float32)  # (N, A)
        self.memory[rows, self.user] = mem
        self.last_seen[rows, self.user] = now
        exposure = np.take_along_axis(mem, self._attr_index(self.candidates).reshape(self.num_envs, -1), 1)
        exposure = exposure.reshape(self.num_envs, -1, N_ATTRS).sum(-1)
        sens = self._user_fatigue[self.user + self._user_offset]
        return self.config.fatigue_strength * sens[:, None] * exposure

    def observation(self) -> dict[str, np.ndarray]:
        """The current request of every slot, batched; new arrays on every call."""
        return {
            "user": self.request.user_features,  # a fresh gather
            "context": self.request.context_features.copy(),
            "campaign": self.campaign_features.copy(),
            "candidates": self.candidates.reshape(self.num_envs, -1).copy(),
            "ctr_estimate": self.ctr_estimate,  # fresh from the estimator
        }

    def step(self, actions: np.ndarray) -> StepOutcome:
        """Show ``actions`` (N,) for the current requests; draw outcomes; serve the next requests."""
        if self.t >= self.config.horizon:
            raise RuntimeError("episode is over (truncated): reset before stepping again")
        b, j, rows = self.block, self.j, np.arange(self.num_envs)
        p = self.click_probs[rows, actions]
        clicked = b.u_click[:, j] < p
        converted = clicked & (b.u_conv[:, j] < b.p_conv[:, j])
        if self.config.reward == "click":
            reward = clicked.astype(np.float64)
        elif self.config.reward == "conversion":
            reward = converted.astype(np.float64)
        else:
            reward = converted * self.value
        exp_taken = self.expected[rows, actions]
        regret = self.expected.max(axis=1) - exp_taken
        self.estimator.observe(self.request, actions, clicked)
        if self._fatigue:
            attrs = self._attr_index(self.candidates[rows, actions])  # (N, N_ATTRS)
            self.memory[rows[:, None], self.user[:, None], attrs] += 1.0
        self.t += 1
        self._serve()
        return StepOutcome(reward, clicked, converted, regret, exp_taken)

    @property
    def truncated(self) -> bool:
        return self.t >= self.config.horizon


def check_world_seeds(world_seeds, num_envs: int) -> tuple[int, ...]:
    """Validate the world seeds of a stacked env: a non-empty sequence of ints >= 0 dividing num_envs."""
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ValueError(f"num_envs == {num_envs!r}, must be an int >= 1")
    if isinstance(world_seeds, (str, bytes)) or not hasattr(world_seeds, "__len__"):
        raise TypeError(f"world_seeds must be a sequence of ints >= 0, got {type(world_seeds).__name__} "
                        f"{world_seeds!r}")
    seeds = tuple(world_seeds)
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0]
    if not seeds or bad:
        raise ValueError(f"world_seeds == {list(seeds)!r}: must be a non-empty sequence of ints >= 0"
                         + (f" ({bad[0]!r} is not)" if bad else ""))
    if num_envs % len(seeds):
        raise ValueError(f"num_envs == {num_envs} is not a multiple of len(world_seeds) == {len(seeds)}: "
                         f"every stacked scenario gets num_envs / len(world_seeds) slots")
    return tuple(int(s) for s in seeds)


class StackedSelectionCore(SelectionCore):
    """G scenarios side by side in one core: independent scenario seeds stepped as one batch.

    Group g holds slots ``[g·B, (g+1)·B)`` (``B = num_envs / G``) of the world of
    ``config`` with ``seed = world_seeds[g]``: its own hidden world, creative pools, β0 and CTR
    estimate, nothing shared with other groups. Each group's requests are computed by a
    :class:`SelectionCore` of B slots on that world (one NumPy computation per group and block of
    steps); everything per step — outcomes, regret, the estimate, fatigue — is one computation
    over all G·B slots. Seeded with :func:`adsim.rng.group_stream_keys` (``seed`` = G ints), group
    g sees exactly what an unstacked core of B slots on world ``world_seeds[g]`` seeded
    ``seed[g]`` sees, bit for bit (tested).

    Args:
        config: the shared env config (its world seed is replaced per group).
        num_envs: G·B slots.
        world_seeds: the G world seeds.
        estimators: None (a :class:`RunningCTR` per group, batched) or G CTR estimators, one per
            world (served by :class:`adsim.estimate.GroupedEstimator`, one call per group).
    """

    def __init__(self, config: EnvConfig, num_envs: int, world_seeds, *, estimators=None):
        if not isinstance(config, EnvConfig):
            raise TypeError(f"config must be an EnvConfig, got {type(config).__name__}")
        self.world_seeds = check_world_seeds(world_seeds, num_envs)
        G = len(self.world_seeds)
        self.num_envs, self.group_size = int(num_envs), int(num_envs) // G
        self.groups = [SelectionCore(config.replace(seed=s), self.group_size) for s in self.world_seeds]
        first = self.groups[0]
        self.config, self.world, self.sampler = first.config, first.world, first.sampler
        K, wc = config.n_candidates, config.world
        if estimators is None:
            self.estimator = RunningCTR(config.mode, wc.n_campaigns, K, self.world.n_parts,
                                        config.estimate_prior_strength, groups=G)
        else:
            estimators = list(estimators)
            if len(estimators) != G:
                raise ValueError(f"got {len(estimators)} estimators for {G} world_seeds; pass one per world")
            self.estimator = GroupedEstimator(estimators, self.group_size, wc.n_campaigns)
        B = self.group_size

        def stack(name: str) -> np.ndarray:  # a world table of every group, rows offset per group
            return np.concatenate([getattr(g.world, name) for g in self.groups])

        self._user_features, self._user_fatigue = stack("user_features"), stack("user_fatigue_sens")
        self._campaign_features, self._campaign_value = stack("campaign_features"), stack("campaign_value")
        self._user_offset = np.repeat(np.arange(G) * wc.n_users, B)
        self._campaign_offset = np.repeat(np.arange(G) * wc.n_campaigns, B)
        self.beta0s = np.array([g.beta0 for g in self.groups])
        self.beta0 = self.beta0s[0]
        self._beta0 = np.repeat(self.beta0s, B)[:, None]
        self.campaign_category = self.world.campaign_category
        self._fatigue = config.fatigue_strength > 0
        if self._fatigue:
            need = self.num_envs * wc.n_users * self.world.lexicon.n_attr_values * 4
            if need > FATIGUE_MEMORY_LIMIT:
                raise ValueError(f"fatigue memory for num_envs == {self.num_envs} and n_users == {wc.n_users} "
                                 f"needs {need / 2**30:.1f} GiB (> 2 GiB); use fewer envs or users, or "
                                 f"fatigue_strength=0")
        self._block_len = first._block_len
        self.keys = None

    def seed(self, seed) -> None:
        """As :meth:`SelectionCore.seed`; a sequence of G ints seeds the groups (group g's slot i
        reads the i-th child stream of ``SeedSequence(seed[g])``)."""
        G = len(self.groups)
        if not isinstance(seed, (int, np.integer)) and hasattr(seed, "__len__"):
            if len(seed) not in (G, self.num_envs):
                raise ValueError(f"got {len(seed)} seeds; pass one per stacked world ({G}), one per sub-env "
                                 f"({self.num_envs}) or a single int")
            if len(seed) == G:
                self.keys = crng.group_stream_keys(seed, self.group_size)
                self.episode = -1
                self.estimator.reset()
                return
        super().seed(seed)

    def _fill_block(self, t0: int) -> None:
        B, blocks = self.group_size, []
        for g, sub in enumerate(self.groups):  # one NumPy computation per world and block of steps
            rows = slice(g * B, (g + 1) * B)
            sub.keys, sub.episode, sub.campaign = self.keys[rows], self.episode, self.campaign[rows]
            sub._fill_block(t0)
            blocks.append(sub.block)
        fields = [np.concatenate(arrays) for arrays in list(zip(*blocks))[1:]]
        for a in fields:
            a.flags.writeable = False
        self.block = Block(t0, *fields)


OBS_KEYS = ("user", "context", "campaign", "candidates", "ctr_estimate")
__all__ = ["CONTEXT_DIM", "CREATIVE_SLOTS", "OBS_KEYS", "Block", "SelectionCore", "StackedSelectionCore", "StepOutcome",
           "cached_world", "check_world_seeds"]
