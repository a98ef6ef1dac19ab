"""The one logging path: run any policy on the batched core and record logged bandit feedback.

:func:`collect_log` is the only collection loop in the project. CTR training data
(:func:`adsim.ctr.log_impressions`), the generator's reward-model logs
(:func:`adsim.generator.reward.log_impressions`) and off-policy evaluation logs
(``experiments.ope.collect.collect_log``) all come from it, as one record, a
:class:`~adsim.ope.log.BanditLog`; the CTR training table and the generator's shown-creative
requests are views of that record.

A policy is anything with the methods of ``agents.base.Policy`` (duck-typed: ``adsim`` never
imports ``agents``): ``reset(n_actions, seed=…)``, ``probabilities(obs, info) -> (N, K)``,
``select`` and ``update(obs, actions, rewards)``. The loop draws the logged action from the
probabilities the policy reports, with its own generator, so every logged propensity is exactly the
probability the action was drawn with. The two logging policies of the CTR data, uniform and
ε-greedy on the observed CTR estimate, are here (:class:`UniformLogging`,
:class:`EstimateEpsilonGreedy`).

The loop drives a :class:`~adsim.selection.SelectionCore` directly (seed, serve, step, same-step
autoreset at the horizon, exactly as the vector env does), so logging never builds an env — the
env may use a CTR model trained on logs without an import cycle.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Protocol

import numpy as np

from adsim.running_ctr import Request
from adsim.observation import ad_slot
from adsim.ope.log import BanditLog
from adsim.validation import check_float, check_int

OBS_LOGGED = ("user", "context", "campaign", "candidates", "ctr_estimate")
"""Observation keys a log keeps (enough to rebuild every observation a target policy reads)."""
_PROB_TOL = 1e-6


class LoggingPolicy(Protocol):
    """What the loop needs of a policy (``agents.base.Policy`` has it)."""

    def reset(self, n_actions: int, seed: Any = None) -> None: ...

    def probabilities(self, obs: dict, info: dict | None = None) -> np.ndarray: ...

    def update(self, obs: dict, actions: np.ndarray, rewards: np.ndarray) -> None: ...


class LogStreams(NamedTuple):
    """The independent random streams of one logged run.

    Attributes:
        core: the core's request-stream seed (``SelectionCore.seed``: an int, or one per slot).
        policy: the logging policy's seed (``policy.reset(K, seed=…)``).
        draw: the seed of the loop's own action draws.
    """

    core: Any
    policy: Any
    draw: Any

    @classmethod
    def from_seed(cls, seed: int) -> LogStreams:
        """Three ``SeedSequence(seed)`` children. The core's seed is a 62-bit hash of the first, so logs
        of different seeds are independent (each slot then reads a child stream of that hash)."""
        check_int("seed", seed, 0)
        core_ss, policy_ss, draw_ss = np.random.SeedSequence(seed).spawn(3)
        return cls(int(core_ss.generate_state(1, np.uint64)[0] >> np.uint64(2)), policy_ss, draw_ss)


def draw_actions(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(N,) actions drawn from probabilities (N, K) by inverse CDF with uniforms ``u`` (N, 1) in [0, 1).

    The uniform is scaled by each row's total, so rounding can never pick a trailing zero-probability
    action, and ``>=`` skips leading zero-probability actions even when ``u == 0``."""
    cdf = np.cumsum(p, axis=1)
    return np.minimum((u * cdf[:, -1:] >= cdf).sum(axis=1), p.shape[1] - 1)


def checked_probabilities(policy, obs: dict, info: dict | None, n_actions: int) -> np.ndarray:
    """A policy's (N, K) probabilities as float64, checked to be probability distributions."""
    p = np.asarray(policy.probabilities(obs, info), dtype=np.float64)
    n = obs["ctr_estimate"].shape[0]
    name = getattr(policy, "name", type(policy).__name__)
    if p.shape != (n, n_actions):
        raise ValueError(f"policy {name!r} returned probabilities of shape {p.shape}, expected {(n, n_actions)}")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=_PROB_TOL):
        raise ValueError(f"policy {name!r} returned rows that are not probability distributions")
    return p


def collect_log(policy: LoggingPolicy, core, n_rounds: int, streams: LogStreams, *, learn: bool = True,
                progress: bool = False, meta: dict | None = None) -> BanditLog:
    """Run ``policy`` on ``core`` for ``n_rounds`` requests and log them.

    Args:
        policy: the logging policy (see the module docstring); reset here with ``streams.policy``.
        core: a :class:`~adsim.selection.SelectionCore` of N slots; seeded here with ``streams.core``.
            At the horizon every slot starts its next episode (the vector env's autoreset).
        n_rounds: logged rounds; the loop takes ``ceil(n_rounds / N)`` steps and keeps the first
            ``n_rounds`` (step-major: step 0's N slots, then step 1's …).
        streams: the core, policy and action-draw seeds (:meth:`LogStreams.from_seed`).
        learn: call ``policy.update`` after every step (each round's propensity stays the one it
            was drawn with).
        progress: show a tqdm bar.
        meta: JSON-able description stored with the log.

    Returns:
        A :class:`~adsim.ope.log.BanditLog` with every optional column: the truth
        (``expected_reward``, ``click_probs``), the logging distribution ``pi_b``, ``click``,
        ``campaign_id``, ``step`` (loop step) and ``slot`` (core slot) of each round.
    """
    check_int("n_rounds", n_rounds, 1)
    if not isinstance(streams, LogStreams):
        raise TypeError(f"streams must be a LogStreams, got {type(streams).__name__}")
    missing = [m for m in ("reset", "probabilities", "update") if not callable(getattr(policy, m, None))]
    if missing:
        raise TypeError(f"policy {type(policy).__name__} lacks {missing} (see agents.base.Policy)")
    N, K = core.num_envs, core.config.n_candidates
    rows = np.arange(N)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (*OBS_LOGGED, "action", "pi_b", "reward", "click",
                                                           "expected_reward", "click_probs", "campaign_id")}
    for obs, info, rng in _steps(core, lambda: policy.reset(K, seed=streams.policy), n_rounds, streams, progress):
        p = checked_probabilities(policy, obs, info, K)
        a = draw_actions(p, rng.random((N, 1)))
        for k in OBS_LOGGED:
            parts[k].append(obs[k])
        for k, v in (("action", a), ("pi_b", p), ("expected_reward", info["expected_reward"]),
                     ("click_probs", info["click_probs"]), ("campaign_id", core.request.campaign)):
            parts[k].append(v)
        out = core.step(a)
        if not np.array_equal(out.expected_reward, info["expected_reward"][rows, a]):
            raise RuntimeError("the core's expected reward of the actions taken differs from the logged truth")
        parts["reward"].append(np.asarray(out.reward, dtype=np.float64))
        parts["click"].append(out.clicked)
        if learn:
            policy.update(obs, a, out.reward)
    return _assemble(parts, n_rounds, N, K, meta or {})


def _steps(core, reset_policy, n_rounds: int, streams: LogStreams, progress: bool = False):
    """The loop every log is collected with: seed the core (``streams.core``), start its episode,
    reset the policy, then for each of ``ceil(n_rounds / N)`` steps yield ``(obs, info, rng)`` — the
    caller draws actions with ``rng`` (seeded ``streams.draw``) and steps the core — and start the
    next episode at the horizon (the vector env's same-step autoreset)."""
    from tqdm import tqdm

    core.seed(streams.core)
    core.start_episode()
    reset_policy()
    rng = np.random.default_rng(streams.draw)
    for _ in tqdm(range(math.ceil(n_rounds / core.num_envs)), desc="logging", disable=not progress, leave=False):
        yield core.observation(), core.info(), rng
        if core.truncated:
            core.start_episode()


def collect_slate_log(policy, core, n_pages: int, streams: LogStreams, *, learn: bool = False,
                      meta: dict | None = None, targets: tuple = (), target_seed: Any = None):
    """Run a slate ``policy`` on a slate core (``adsim.slate.SlateCore``) for ``n_pages`` pages and
    log them, on the same loop as :func:`collect_log` (:func:`_steps`): the slate shown is drawn
    from the policy's probabilities of **every** ordered slate, so each logged propensity — joint,
    cumulative, marginal — is exact (small K: :func:`adsim.ope.slate.all_slates`).

    Args:
        policy: duck-typed: ``reset(n_actions, slate_size, seed=…)``, ``slate_probabilities(obs, info)
            -> (N, S)`` over ``all_slates(K, L)``, and ``update_slate(obs, slates, clicks)`` if ``learn``.
        core: a slate core of N pages (its ``slate_size`` L, its ``click_model``).
        n_pages: logged pages, step-major as in :func:`collect_log`.
        streams: the core, policy and draw seeds (:meth:`LogStreams.from_seed`).
        learn: call ``policy.update_slate`` after every step.
        targets: fixed slate policies (as ``policy``) whose probabilities of every slate on the same
            pages — the same observation and ``info`` the logger saw — are recorded too
            (``pi_targets``): what off-policy estimates of them read, and their true values.
        target_seed: each target's ``reset`` seed (fixed targets draw nothing, so they may share it).

    Returns:
        A :class:`adsim.ope.slate.SlateLogRecord`: the shown slates, their clicks, the observation's
        CTR estimate, the logging probabilities of every slate and — the truth, for evaluation only —
        every slate's expected clicks on each page and the candidates' attractions.
    """
    from adsim.ope.slate import SlateLogRecord, all_slates

    check_int("n_pages", n_pages, 1)
    if not isinstance(streams, LogStreams):
        raise TypeError(f"streams must be a LogStreams, got {type(streams).__name__}")
    if not hasattr(core, "slate_size") or not hasattr(core, "click_model"):
        raise TypeError(f"core must be a slate core (adsim.slate.SlateCore), got {type(core).__name__}")
    N, K, L = core.num_envs, core.config.n_candidates, core.slate_size
    slates = all_slates(K, L)
    name = getattr(policy, "name", type(policy).__name__)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("action", "pi_b", "clicks", "ctr_estimate", "attraction",
                                                           "slate_value", "campaign_id")}
    targets = tuple(targets)
    pi_targets: list[list[np.ndarray]] = [[] for _ in targets]

    def reset():
        policy.reset(K, slate_size=L, seed=streams.policy)
        for t in targets:
            t.reset(K, slate_size=L, seed=target_seed)

    def distribution(pol, obs, info) -> np.ndarray:
        p = np.asarray(pol.slate_probabilities(obs, info), dtype=np.float64)
        if p.shape != (N, len(slates)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=_PROB_TOL):
            raise ValueError(f"policy {getattr(pol, 'name', type(pol).__name__)!r} returned slate probabilities "
                             f"of shape {p.shape} that are not distributions over the {len(slates)} ordered "
                             f"slates (expected ({N}, {len(slates)}))")
        return p

    for obs, info, rng in _steps(core, reset, n_pages, streams):
        p = distribution(policy, obs, info)
        for store, t in zip(pi_targets, targets):
            store.append(distribution(t, obs, info))
        index = draw_actions(p, rng.random((N, 1)))
        shown = slates[index]
        attraction = np.asarray(info["attraction"], dtype=np.float64)
        value = core.click_model.expected_clicks(attraction[:, slates])  # (N, S) every slate's expected clicks
        for k, v in (("action", shown), ("pi_b", p), ("ctr_estimate", obs["ctr_estimate"]), ("attraction", attraction),
                     ("slate_value", value), ("campaign_id", core.request.campaign)):
            parts[k].append(np.asarray(v))
        out = core.step(shown)
        if not np.allclose(out.expected_reward, value[np.arange(N), index], rtol=1e-12, atol=1e-15):
            raise RuntimeError("the core's expected clicks of the slates shown differ from the logged truth")
        parts["clicks"].append(np.asarray(out.clicks, dtype=np.float64))
        if learn:
            policy.update_slate(obs, shown, out.clicks)
    cat = {k: np.concatenate(v)[:n_pages] for k, v in parts.items()}
    return SlateLogRecord(action=cat["action"].astype(np.int64), clicks=cat["clicks"], pi_b=cat["pi_b"],
                          ctr_estimate=cat["ctr_estimate"].astype(np.float64), attraction=cat["attraction"],
                          slate_value=cat["slate_value"], campaign_id=cat["campaign_id"].astype(np.int64),
                          meta=meta or {}, pi_targets=tuple(np.concatenate(t)[:n_pages] for t in pi_targets))


def _assemble(parts: dict[str, list[np.ndarray]], n: int, N: int, K: int, meta: dict) -> BanditLog:
    cat = {k: np.concatenate(v)[:n] for k, v in parts.items()}
    dims = (cat["user"].shape[1], cat["context"].shape[1], cat["campaign"].shape[1])
    context = np.concatenate([cat["user"], cat["context"], cat["campaign"]], axis=1).astype(np.float32)
    rows, action = np.arange(n), cat["action"].astype(np.int64)
    return BanditLog(
        context=context, action_context=cat["candidates"].astype(np.int64).reshape(n, K, -1),
        ctr_estimate=cat["ctr_estimate"].astype(np.float32), action=action, reward=cat["reward"],
        pscore=cat["pi_b"][rows, action], position=ad_slot(cat["context"]),
        expected_reward=cat["expected_reward"].astype(np.float64), pi_b=cat["pi_b"],
        click_probs=cat["click_probs"].astype(np.float64), click=cat["click"].astype(np.int8),
        campaign_id=cat["campaign_id"].astype(np.int64), step=rows // N, slot=rows % N,
        obs_dims=dims, meta=meta)


def shown_request(log: BanditLog) -> Request:
    """The logged rounds as a batch of requests with one candidate each, the creative shown
    (``candidates`` (n, 1, S)): the input of a CTR model fitted on the log."""
    if log.obs_dims is None or log.campaign_id is None:
        raise ValueError("this log has no obs_dims or campaign_id, so its requests cannot be rebuilt")
    obs = log.observations()
    shown = log.action_context[np.arange(log.n_rounds), log.action][:, None]
    return Request(log.campaign_id, obs["user"], obs["context"], obs["campaign"], shown)


class UniformLogging:
    """Uniformly random logging policy (the CTR data's default)."""

    name = "uniform"

    def reset(self, n_actions: int, seed: Any = None) -> None:
        check_int("n_actions", n_actions, 1)
        self.n_actions, self.rng = n_actions, np.random.default_rng(seed)

    def probabilities(self, obs: dict, info: dict | None = None) -> np.ndarray:
        return np.full((obs["ctr_estimate"].shape[0], self.n_actions), 1.0 / self.n_actions)

    def select(self, obs: dict, info: dict | None = None) -> np.ndarray:
        p = self.probabilities(obs, info)
        return draw_actions(p, self.rng.random((p.shape[0], 1)))

    def update(self, obs: dict, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Does not learn."""


class EstimateEpsilonGreedy(UniformLogging):
    """ε-greedy on the observation's ``ctr_estimate``: ``ε/K`` everywhere plus ``1 − ε`` split evenly
    among the candidates of the highest estimate."""

    name = "egreedy"

    def __init__(self, epsilon: float = 0.1):
        check_float("epsilon", epsilon, 0.0, 1.0)
        self.epsilon = float(epsilon)

    def probabilities(self, obs: dict, info: dict | None = None) -> np.ndarray:
        est = obs["ctr_estimate"]
        best = est == est.max(axis=1, keepdims=True)
        return self.epsilon / est.shape[1] + (1.0 - self.epsilon) * best / best.sum(axis=1, keepdims=True)


__all__ = ["LogStreams", "collect_log", "collect_slate_log", "draw_actions", "checked_probabilities", "shown_request",
           "UniformLogging", "EstimateEpsilonGreedy", "OBS_LOGGED"]
