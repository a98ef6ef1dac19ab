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

The core is a composition of the shared parts: request generation (``adsim.requests``), creative
pools and personalised candidates (``adsim.pools``), the response model (``adsim.response``),
fatigue (``adsim.fatigue``) and the CTR estimate (``adsim.running_ctr``); stacking several worlds is
``adsim.stacking``, the Gymnasium envs are ``adsim.envs.base``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from adsim import rng as crng
from adsim.config import EnvConfig
from adsim.creative.sampler import CREATIVE_SLOTS, CandidateSource
from adsim.fatigue import Fatigue
from adsim.memory import check_memory, env_bytes
from adsim.pools import CampaignPools, attribute_index, campaign_pools, template_sampler
from adsim.requests import Block, RequestGenerator, SelectionStreams, campaigns, scenario_intercept
from adsim.response import click_prob, truth_info
from adsim.running_ctr import PRIOR_CTR, CTREstimator, Request, RunningCTR
from adsim.validation import check_float
from adsim.world import CONTEXT_DIM, World, cached_world

BLOCK_IMPRESSIONS = 1 << 15


class StepOutcome(NamedTuple):
    reward: np.ndarray  # (N,) float64
    clicked: np.ndarray  # (N,) bool
    converted: np.ndarray  # (N,) bool
    regret: np.ndarray  # (N,) pseudo-regret of the action (expected-reward units)
    expected_reward: np.ndarray  # (N,) expected reward of the action taken
    terminated: np.ndarray  # (N,) bool, always False (no early termination)
    truncated: np.ndarray  # (N,) bool, the horizon is reached (all slots at once)


class SelectionCore:
    """N request slots on one world. See the module docstring.

    Composed of the shared parts: :class:`adsim.pools.CampaignPools` and a candidate source,
    :class:`adsim.requests.RequestGenerator` (requests and β0), :func:`adsim.response.click_prob`,
    :class:`adsim.fatigue.Fatigue` and a CTR estimate (:class:`adsim.running_ctr.RunningCTR` by default).
    """

    OUTCOME_INFO = ("regret", "clicked", "converted", "reward_expected")

    def __init__(self, config: EnvConfig, num_envs: int = 1, *, world: World | None = None,
                 estimator: CTREstimator | None = None, candidate_source: CandidateSource | None = None,
                 beta0: float | None = None):
        """``beta0``: the response model's intercept β0; ``None`` calibrates it so that a uniformly
        random choice among this core's candidates has the world's target CTR. A core whose
        candidates come from another source (a generator) passes the template sampler's
        (:func:`adsim.requests.scenario_intercept`) to keep the template scenario's world exactly."""
        if not isinstance(config, EnvConfig):
            raise TypeError(f"config must be an EnvConfig, got {type(config).__name__}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs == {num_envs!r}, must be an int >= 1")
        self.config, self.num_envs = config, int(num_envs)
        check_memory(env_bytes(config, self.num_envs), f"an env with num_envs == {self.num_envs}, n_candidates == "
                     f"{config.n_candidates}" + (f", fatigue on, n_users == {config.world.n_users}"
                                                 if config.fatigue_strength > 0 else ""), "num_envs")
        self.world = w = world if world is not None else cached_world(config.world)
        K = config.n_candidates
        builtin = world is None and candidate_source is None  # pools and β0 are cached per scenario
        self.sampler = candidate_source if candidate_source is not None else template_sampler(w)
        self.pool = campaign_pools(config.world, K) if builtin else CampaignPools.build(w, K, self.sampler)
        prepare = getattr(self.sampler, "prepare", None)  # the source's optional hook (CandidateSource)
        if config.mode == "personalized" and prepare is not None:
            prepare(w, K)
        self.pools = self.pool.creatives
        self.generator = RequestGenerator(w, K, config.mode, self.pool, self.sampler)
        if beta0 is not None:
            check_float("beta0", beta0, -50.0, 50.0)
            self.beta0 = float(beta0)
        else:
            self.beta0 = scenario_intercept(config.world, K, config.mode) if builtin else self.generator.calibrate()
        self.estimator = estimator if estimator is not None else RunningCTR(
            config.mode, config.world.n_campaigns, K, w.n_parts, config.estimate_prior_strength,
            self.estimate_prior())
        self.fatigue = None
        if config.fatigue_strength > 0:
            self.fatigue = Fatigue(self.num_envs, config.world.n_users, w.lexicon.n_attr_values,
                                   config.fatigue_strength, config.fatigue_halflife)
        self.rows = np.arange(self.num_envs)
        self._block_len = max(1, BLOCK_IMPRESSIONS // (self.num_envs * K))
        self.keys: np.ndarray | None = None

    def estimate_prior(self) -> float:
        """The prior mean of the default CTR estimate (``RunningCTR``): ``PRIOR_CTR`` (1 %); an env
        whose platform must rank our ads against others' (the auction) overrides it."""
        return PRIOR_CTR

    # ----------------------------------------------------------------- exogenous requests
    def _fill_block(self, t0: int) -> None:
        T = min(self._block_len, self.config.horizon + 1 - t0)
        if self.generator.kernels is not None:  # the compiled pool-mode block: the same numbers
            self._fill_compiled(t0, T)
            return
        steps = t0 + np.arange(T)
        ep = np.full(self.num_envs, self.episode)
        pool = self.config.mode == "pool"  # pool requests read each stream whole: drawn stream-major, viewed (N, T, S)
        u = crng.uniforms(self.keys, ep, np.broadcast_to(steps, (self.num_envs, T)), self.generator.n_draws,
                          streams_first=pool)
        if pool:
            u = np.moveaxis(u, 0, -1)
        time = self.episode * self.config.horizon + steps
        self.block = b = self.generator.requests(u, self.campaign, np.broadcast_to(time, (self.num_envs, T)), t0)
        # without fatigue the truth of every request of the block is known now: one computation, not T,
        # step-major (T, N, ...) so that each step's rows are contiguous arrays, as if computed alone
        # candidate-first (K, N, T): a view of the pool logits, which are computed so (a copy in personalised mode)
        self._block_truth = None if self.fatigue is not None else self._block_truth_of(
            np.ascontiguousarray(np.moveaxis(b.logits, -1, 0)), b.position, b.p_conv)

    def _fill_compiled(self, t0: int, T: int) -> None:
        """:meth:`_fill_block` by the compiled kernels (``adsim.compiled``): the block's requests and,
        without fatigue, their truth (``_block_truth_of``'s; a subclass's own from the logits), bit
        for bit."""
        b, e = self.generator.compiled_block(self.keys, self.episode, t0, T, self.campaign, self.beta0)
        self.block = b
        if self.fatigue is not None:
            self._block_truth = None
        elif type(self)._block_truth_of is not SelectionCore._block_truth_of:
            self._block_truth = self._block_truth_of(np.ascontiguousarray(np.moveaxis(b.logits, -1, 0)), b.position,
                                                     b.p_conv)
        else:
            N, K = self.num_envs, self.config.n_candidates
            probs = np.empty((T, N, K))
            expected = probs if self.config.reward == "click" else np.empty((T, N, K))
            optimal, best = np.empty((T, N), dtype=np.intp), np.empty((T, N))
            reward = ("click", "conversion", "revenue").index(self.config.reward)
            self.generator.kernels.pool_truth(e, b.p_conv, b.position, self.world.context.position_factor, reward,
                                              self.value, probs, expected, optimal, best)
            self._block_truth = probs, expected, optimal, best

    def _block_truth_of(self, logits: np.ndarray, position: np.ndarray, p_conv: np.ndarray) -> tuple[np.ndarray, ...]:
        """:meth:`_truth` of a block, step-major — click probabilities and expected rewards (T, N, K),
        optimal actions and their expected rewards (T, N), each step's rows contiguous — from its
        logits laid out candidate-first (K, N, T), ad slots and conversion probabilities (N, T).

        The same numbers as ``_truth`` of the (T, N, K) logits: σ and the reward are elementwise,
        the maximum over K is exact, and the optimal action is the first candidate reaching it."""
        probs = click_prob(logits, self.beta0, position, self.world.context.position_factor, candidate_axis=0)
        if self.config.reward == "click":
            expected = probs
        else:
            expected = probs * p_conv
            if self.config.reward == "revenue":
                expected = expected * self.value[:, None]
        best = np.maximum.reduce(expected, axis=0)  # (N, T)
        optimal = np.zeros(best.shape, dtype=np.intp)
        at_best = expected == best
        for k in range(expected.shape[0] - 1, -1, -1):  # the first k reaching the maximum (argmax's tie rule)
            np.copyto(optimal, k, where=at_best[k])
        step_major = probs.transpose(2, 1, 0)
        probs_t = np.ascontiguousarray(step_major)
        expected_t = probs_t if expected is probs else np.ascontiguousarray(expected.transpose(2, 1, 0))
        return probs_t, expected_t, np.ascontiguousarray(optimal.T), np.ascontiguousarray(best.T)

    def _truth(self, logits: np.ndarray, position: np.ndarray, p_conv: np.ndarray) -> tuple[np.ndarray, ...]:
        """Click probabilities, expected rewards (..., N, K), optimal actions and their expected rewards
        (..., N) of requests from their logits (..., N, K) without β0, ad slots and conversion
        probabilities (..., N)."""
        probs = click_prob(logits, self.beta0, position, self.world.context.position_factor)
        if self.config.reward == "click":
            expected = probs
        else:
            expected = probs * p_conv[..., None]
            if self.config.reward == "revenue":
                expected = expected * self.value[:, None]
        optimal = expected.argmax(axis=-1)
        return probs, expected, optimal, np.take_along_axis(expected, optimal[..., None], axis=-1)[..., 0]

    # ----------------------------------------------------------------- episode control
    def seed(self, seed) -> None:
        """Seed every slot's stream; forget the CTR estimate and the episode count.

        An int ``seed`` gives slot ``i`` the ``i``-th child stream of ``SeedSequence(seed)``: slot 0
        is the stream a single env gets from the same seed, and different seeds never share a
        stream (so scenario seeds 0, 1, 2 … are independent however many slots run side by side).
        A sequence of N ints gives slot ``i`` the single-env stream of ``seed[i]``.
        """
        self.set_keys(crng.stream_keys(seed, self.num_envs))

    def set_keys(self, keys: np.ndarray) -> None:
        """Seed the slots with explicit stream keys (N,) uint64 (see :meth:`seed`)."""
        self.keys = np.asarray(keys, dtype=np.uint64)
        self.episode = -1
        self.estimator.reset()

    def start_episode(self) -> None:
        """Begin the next episode in every slot: draw campaigns, clear fatigue, serve request 0."""
        if self.keys is None:
            raise RuntimeError("call seed() (env.reset) before starting an episode")
        self.episode += 1
        n_c = self.world.config.n_campaigns
        if self.config.campaign is not None:
            self.campaign = np.full(self.num_envs, self.config.campaign, dtype=np.int64)
        else:
            u = crng.uniforms(self.keys, np.full(self.num_envs, self.episode), np.zeros(self.num_envs),
                              1, offset=SelectionStreams.CAMPAIGN)[:, 0]
            self.campaign = campaigns(n_c, u)
        self.campaign_features = self.world.campaign_features[self.campaign]
        self.campaign_features.flags.writeable = False
        self.value = self.world.campaign_value[self.campaign]
        if self.fatigue is not None:
            self.fatigue.clear()
        self.t = 0
        self._fill_block(0)
        self._serve()

    def restart(self, rows: np.ndarray) -> None:
        """Begin the next episode of ``rows``: all slots together (CreativeSelection runs in lock-step)."""
        if rows.shape[0] != self.num_envs:
            raise ValueError("CreativeSelection slots restart together (no early termination)")
        self.start_episode()

    def serve(self) -> None:
        """The current requests are served by :meth:`step` and :meth:`start_episode` already."""

    def _serve(self) -> None:
        """Make request ``t`` current: its candidates, true probabilities and observation."""
        j = self.t - self.block.t0
        if j >= self.block.length:
            self._fill_block(self.t)
            j = 0
        b = self.block
        self.j = j
        self.user = b.user[:, j]
        self.candidates = b.candidates[:, j]
        if self._block_truth is None:  # fatigue: the penalty depends on what was shown before
            logits = b.logits[:, j] - self.fatigue.penalty(self.user, float(self.t),
                                                           attribute_index(self.world, self.candidates),
                                                           self.world.user_fatigue_sens[self.user])
            self.click_probs, self.expected, self.optimal, self.best = self._truth(logits, b.position[:, j],
                                                                                    b.p_conv[:, j])
        else:
            self._take_truth(j)
        self.request = Request(self.campaign, self.world.user_features.take(self.user, axis=0), b.context[:, j],
                               self.campaign_features, self.candidates)
        self.ctr_estimate = self.estimator.estimate(self.request)

    def _take_truth(self, j: int) -> None:
        """Make step ``j`` of the block's truth (:meth:`_block_truth_of`) current."""
        probs, expected, optimal, best = self._block_truth
        self.click_probs, self.expected, self.optimal, self.best = probs[j], expected[j], optimal[j], best[j]

    def observation(self) -> dict[str, np.ndarray]:
        """The current request of every slot, batched; new arrays on every call."""
        if self.config.mode == "pool":  # the campaigns' pools: a fresh gather from the small pool table
            cands = self.pool.creatives.take(self.campaign, axis=0).reshape(self.num_envs, -1)
        else:
            cands = self.candidates.reshape(self.num_envs, -1)  # a copy already when the block is strided
            if np.may_share_memory(cands, self.candidates):
                cands = cands.copy()
        return {
            "user": self.request.user_features,  # a fresh gather
            "context": self.request.context_features.copy(),
            "campaign": self.world.campaign_features.take(self.campaign, axis=0),  # a fresh gather
            "candidates": cands,
            "ctr_estimate": self.ctr_estimate,  # fresh from the estimator
        }

    def info(self, outcome: StepOutcome | None = None) -> dict[str, np.ndarray]:
        """Ground truth of the current requests (and the outcome of the step that led to them)."""
        return truth_info(self.click_probs, self.expected, outcome, ("converted",), optimal=self.optimal)

    def final(self, rows: np.ndarray, outcome: StepOutcome) -> tuple[dict, dict]:
        """Observation and info of the slots ``rows`` whose episode the last step ended (all of them)."""
        return self.observation(), self.info(outcome)

    def step(self, actions: np.ndarray) -> StepOutcome:
        """Show ``actions`` (N,) for the current requests; draw outcomes; serve the next requests."""
        if self.t >= self.config.horizon:
            raise RuntimeError("episode is over (truncated): reset before stepping again")
        b, j, rows = self.block, self.j, self.rows
        flat = rows * self.config.n_candidates + actions  # (N,) into the (N, K) arrays: one flat take each
        p = self.click_probs.take(flat)
        clicked = b.u_click[:, j] < p
        converted = clicked & (b.u_conv[:, j] < b.p_conv[:, j])
        if self.config.reward == "click":
            reward = clicked.astype(np.float64)
        elif self.config.reward == "conversion":
            reward = converted.astype(np.float64)
        else:
            reward = converted * self.value
        exp_taken = self.expected.take(flat)
        regret = self.best - exp_taken  # the expected reward of the best candidate − that of the shown one
        self.estimator.observe(self.request, actions, clicked)
        if self.fatigue is not None:
            self.fatigue.record(self.user, float(self.t), attribute_index(self.world, self.candidates[rows, actions]))
        self.t += 1
        self._serve()
        over = np.ones if self.t >= self.config.horizon else np.zeros
        return StepOutcome(reward, clicked, converted, regret, exp_taken, np.zeros(self.num_envs, dtype=bool),
                           over(self.num_envs, dtype=bool))

    @property
    def truncated(self) -> bool:
        return self.t >= self.config.horizon

    def render(self, row: int = 0) -> str:
        """ANSI text of slot ``row``'s current request."""
        from adsim.envs.spaces import render_candidates

        return render_candidates(self.config.language, f"t={self.t} campaign={int(self.campaign[row])} "
                                 f"user={int(self.user[row])}", self.candidates[row], self.click_probs[row],
                                 "est", self.ctr_estimate[row])


OBS_KEYS = ("user", "context", "campaign", "candidates", "ctr_estimate")
__all__ = ["CONTEXT_DIM", "CREATIVE_SLOTS", "OBS_KEYS", "Block", "SelectionCore", "StepOutcome", "cached_world"]
