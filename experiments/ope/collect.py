"""Run policies on the CreativeSelection vector env: log bandit feedback, evaluate targets, and
compute a target policy's true value.

* :func:`collect_log` — a policy's run as a :class:`~adsim.ope.log.BanditLog` (propensities from the
  policy's own ``probabilities``; the truth ``info["expected_reward"]`` of the same request kept apart).
* :func:`target_probabilities` — a (fixed) target policy's probabilities on the logged observations.
* :func:`train_on_log` — replay a log's feedback into a learning target before evaluating it.
* :func:`true_value` — the target's expected reward on the logged requests under the simulator's truth.
* :func:`on_policy_value` — the same quantity from an independent on-policy run of the target.
"""

from __future__ import annotations

import functools
import math

import gymnasium as gym
import numpy as np

import adsim  # noqa: F401  (registers the envs)
from adsim.config import EnvConfig
from adsim.validation import check_int
from adsim.ope.log import BanditLog
from adsim.world import POSITION_FACTOR
from agents.base import Policy

ENV_ID = "adsim/CreativeSelection-v0"
_N_SLOTS = len(POSITION_FACTOR)
_OBS_LOGGED = ("user", "context", "campaign", "candidates", "ctr_estimate")


def _draw(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N,) actions from (N, K) probabilities by inverse CDF (as ``Policy.select``), the uniform scaled
    by each row's total so rounding can never pick a trailing zero-probability action."""
    cdf = np.cumsum(p, axis=1)
    u = rng.random((p.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((u >= cdf).sum(axis=1), p.shape[1] - 1)


def _checked_probs(policy: Policy, obs: dict, info: dict, K: int) -> np.ndarray:
    p = np.asarray(policy.probabilities(obs, info), dtype=np.float64)
    n = obs["ctr_estimate"].shape[0]
    if p.shape != (n, K):
        raise ValueError(f"policy {policy.name!r} returned probabilities of shape {p.shape}, expected {(n, K)}")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError(f"policy {policy.name!r} returned rows that are not probability distributions")
    return p


def _make_env(config: EnvConfig, num_envs: int):
    if not isinstance(config, EnvConfig):
        raise TypeError(f"config must be an EnvConfig, got {type(config).__name__}")
    return _cached_env(config, num_envs)


@functools.lru_cache(maxsize=4)
def _cached_env(config: EnvConfig, num_envs: int):
    """One env per (config, num_envs) per process: ``reset(seed=…)`` re-seeds all of its state."""
    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", config=config)


def _seeds(seed: int) -> tuple[int, np.random.SeedSequence, np.random.SeedSequence]:
    """The env's scenario seed and independent policy / draw streams, all derived from ``seed``.

    The env seed is a 62-bit hash of ``seed``, so logs of different seeds are independent even for
    a vector env that follows Gymnasium's ``seed + i`` convention (adsim's own envs derive per-slot
    child streams, which never overlap across seeds anyway).
    """
    check_int("seed", seed, 0)
    env_ss, policy_ss, draw_ss = np.random.SeedSequence(seed).spawn(3)
    return int(env_ss.generate_state(1, np.uint64)[0] >> np.uint64(2)), policy_ss, draw_ss


def collect_log(policy: Policy, config: EnvConfig, n_rounds: int, *, num_envs: int = 1024, seed: int = 0,
                learn: bool = True) -> BanditLog:
    """Run ``policy`` for ``n_rounds`` requests and log them as bandit feedback.

    Args:
        policy: the logging policy (stochastic, or wrapped in ``agents.mixture.EpsilonMixture``).
        config: the scenario.
        n_rounds: logged rounds (the last vector step may be cut short).
        num_envs: request slots per vector step.
        seed: scenario seed (env ``reset(seed=seed)``); the policy's stream derives from it.
        learn: call ``policy.update`` after every step (propensities stay those used at the time).

    Returns:
        The log, with ``expected_reward`` and ``pi_b`` filled in.
    """
    check_int("n_rounds", n_rounds, 1)
    check_int("num_envs", num_envs, 1)
    num_envs = min(num_envs, n_rounds)
    env = _make_env(config, num_envs)
    env_seed, policy_ss, draw_ss = _seeds(seed)
    K = int(env.single_action_space.n)
    obs, info = env.reset(seed=env_seed)
    policy.reset(K, seed=policy_ss)
    draw_rng = np.random.default_rng(draw_ss)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (*_OBS_LOGGED, "action", "reward", "expected", "pi_b")}
    for _ in range(math.ceil(n_rounds / num_envs)):
        p = _checked_probs(policy, obs, info, K)
        a = _draw(p, draw_rng)
        _record(parts, obs, info, p, a)
        next_obs, r, _, _, info = env.step(a)
        if not np.array_equal(info["reward_expected"], parts["expected"][-1][np.arange(a.shape[0]), a]):
            raise RuntimeError("the env's expected reward of the actions taken differs from the logged truth "
                               "(info must describe the observation acted on)")
        parts["reward"].append(np.asarray(r, dtype=np.float64))
        if learn:
            policy.update(obs, a, r)
        obs = next_obs
    return _assemble(parts, n_rounds, K, {"policy": policy.name, "seed": seed, "config": repr(config)})


def _record(parts: dict[str, list[np.ndarray]], obs: dict, info: dict, p: np.ndarray, a: np.ndarray) -> None:
    """Append one vector step's observation, truth, logging distribution and actions."""
    for k in _OBS_LOGGED:
        parts[k].append(obs[k])
    parts["expected"].append(np.asarray(info["expected_reward"], dtype=np.float64))
    parts["pi_b"].append(p)
    parts["action"].append(a)


def _assemble(parts: dict[str, list[np.ndarray]], n: int, K: int, meta: dict) -> BanditLog:
    cat = {k: np.concatenate(v)[:n] for k, v in parts.items()}
    dims = (cat["user"].shape[1], cat["context"].shape[1], cat["campaign"].shape[1])
    context = np.concatenate([cat["user"], cat["context"], cat["campaign"]], axis=1).astype(np.float32)
    rows, action = np.arange(n), cat["action"].astype(np.int64)
    return BanditLog(
        context=context, action_context=cat["candidates"].astype(np.int64).reshape(n, K, -1),
        ctr_estimate=cat["ctr_estimate"].astype(np.float32), action=action, reward=cat["reward"],
        pscore=cat["pi_b"][rows, action], position=cat["context"][:, -_N_SLOTS:].argmax(axis=1).astype(np.int64),
        expected_reward=cat["expected"], pi_b=cat["pi_b"], obs_dims=dims, meta=meta)


def target_probabilities(policy: Policy, log: BanditLog, *, seed: int = 0, chunk: int = 65536,
                         reset: bool = True) -> np.ndarray:
    """(n, K) probabilities of a fixed target policy on the logged observations.

    Reference policies that read ``info`` (the oracle) get the log's ``expected_reward`` as info.
    The policy is not updated. ``reset=False`` keeps a policy's learned state.
    """
    check_int("chunk", chunk, 1)
    if reset:
        policy.reset(log.n_actions, seed=np.random.SeedSequence(seed))
    out = np.empty((log.n_rounds, log.n_actions))
    for start in range(0, log.n_rounds, chunk):
        rows = slice(start, min(start + chunk, log.n_rounds))
        info = None if log.expected_reward is None else {"expected_reward": log.expected_reward[rows]}
        out[rows] = _checked_probs(policy, log.observations(rows), info, log.n_actions)
    return out


def train_on_log(policy: Policy, log: BanditLog, *, seed: int = 0, chunk: int = 1024) -> Policy:
    """Reset ``policy`` and feed it a log's feedback (``update`` on the logged actions and rewards),
    ``chunk`` rounds at a time in log order, so a learning policy can then be evaluated frozen on
    another log. Returns the policy."""
    check_int("chunk", chunk, 1)
    policy.reset(log.n_actions, seed=np.random.SeedSequence(seed))
    for start in range(0, log.n_rounds, chunk):
        rows = slice(start, min(start + chunk, log.n_rounds))
        policy.update(log.observations(rows), log.action[rows], log.reward[rows])
    return policy


def true_value(log: BanditLog, target: np.ndarray) -> float:
    """The target's true value on the logged requests: mean_i Σ_a π(a|x_i) E[r | x_i, a]."""
    if log.expected_reward is None:
        raise ValueError("this log has no expected_reward (ground truth); the true value is unknown")
    if target.shape != log.expected_reward.shape:
        raise ValueError(f"target has shape {target.shape}, expected {log.expected_reward.shape}")
    return float(np.einsum("nk,nk->", target, log.expected_reward) / log.n_rounds)


def on_policy_value(policy: Policy, config: EnvConfig, n_rounds: int, *, num_envs: int = 1024,
                    seed: int = 0) -> float:
    """Mean true expected reward of ``policy``'s action distribution over an on-policy run (no learning)."""
    log = collect_log(policy, config, n_rounds, num_envs=num_envs, seed=seed, learn=False)
    return true_value(log, log.pi_b)
