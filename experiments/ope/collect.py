"""Run policies on CreativeSelection: log bandit feedback, evaluate targets, and compute a target
policy's true value.

* :func:`collect_log` — a policy's run as a :class:`~adsim.ope.log.BanditLog` (propensities from the
  policy's own ``probabilities``; the truth ``info["expected_reward"]`` of the same request kept apart).
* :func:`target_probabilities` — a (fixed) target policy's probabilities on the logged observations.
* :func:`train_on_log` — replay a log's feedback into a learning target before evaluating it.
* :func:`true_value` — the target's expected reward on the logged requests under the simulator's truth.
* :func:`on_policy_value` — the same quantity from an independent on-policy run of the target.
* :func:`collect_slate_log`, :func:`slate_target_probabilities` — the same for slate pages
  (``adsim/SlateSelection-v0``'s core), through the one logging path's slate branch.
"""

from __future__ import annotations

import functools

import numpy as np

from adsim import collect as logging_path
from adsim.collect import LogStreams, checked_probabilities
from adsim.config import EnvConfig
from adsim.selection import SelectionCore
from adsim.ope.log import BanditLog
from adsim.validation import check_int
from agents.base import Policy


@functools.lru_cache(maxsize=4)
def _cached_core(config: EnvConfig, num_envs: int) -> SelectionCore:
    """One core per (config, num_envs) per process: ``collect_log`` re-seeds all of its state."""
    return SelectionCore(config, num_envs)


def collect_log(policy: Policy, config: EnvConfig, n_rounds: int, *, num_envs: int = 1024, seed: int = 0,
                learn: bool = True) -> BanditLog:
    """Run ``policy`` for ``n_rounds`` requests of ``config`` and log them as bandit feedback, with the
    one logging path (:func:`adsim.collect.collect_log`).

    Args:
        policy: the logging policy (stochastic, or wrapped in ``agents.mixture.EpsilonMixture``).
        config: the scenario.
        n_rounds: logged rounds (the last vector step may be cut short).
        num_envs: request slots per vector step.
        seed: the log's seed: the request streams, the policy's stream and the action draws are
            independent children of ``SeedSequence(seed)`` (:meth:`adsim.collect.LogStreams.from_seed`).
        learn: call ``policy.update`` after every step (propensities stay those used at the time).

    Returns:
        The log, with ``expected_reward`` and ``pi_b`` filled in.
    """
    if not isinstance(config, EnvConfig):
        raise TypeError(f"config must be an EnvConfig, got {type(config).__name__}")
    check_int("n_rounds", n_rounds, 1)
    check_int("num_envs", num_envs, 1)
    from adsim.world import world_fingerprint

    streams = LogStreams.from_seed(seed)
    core = _cached_core(config, min(num_envs, n_rounds))
    return logging_path.collect_log(policy, core, n_rounds, streams, learn=learn,
                                    meta={"policy": policy.name, "seed": seed, "config": repr(config),
                                          "world": world_fingerprint(config.world)})


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
        out[rows] = checked_probabilities(policy, log.observations(rows), info, log.n_actions)
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


def collect_slate_log(policy, config: EnvConfig, n_pages: int, *, num_envs: int = 1024, seed: int = 0,
                      targets: tuple = ()):
    """Run a slate ``policy`` (probabilities of every ordered slate, e.g.
    :class:`agents.plackett_luce.PlackettLuceSlates`) for ``n_pages`` pages of ``config``'s slate
    core and log them (:func:`adsim.collect.collect_slate_log`; seeds as :func:`collect_log`), with
    the fixed ``targets``' probabilities of every slate on the same pages (``record.pi_targets``;
    each target reset with ``SeedSequence(seed)``, as :func:`slate_target_probabilities` does)."""
    from adsim.slate import SlateCore
    from adsim.world import world_fingerprint

    if not isinstance(config, EnvConfig):
        raise TypeError(f"config must be an EnvConfig, got {type(config).__name__}")
    check_int("n_pages", n_pages, 1)
    check_int("num_envs", num_envs, 1)
    core = SlateCore(config, min(num_envs, n_pages))
    return logging_path.collect_slate_log(policy, core, n_pages, LogStreams.from_seed(seed),
                                          targets=targets, target_seed=np.random.SeedSequence(seed),
                                          meta={"policy": policy.name, "seed": seed, "config": repr(config),
                                                "world": world_fingerprint(core.world)})


def slate_target_probabilities(policy, record, *, seed: int = 0) -> np.ndarray:
    """(n, S) a fixed slate target's probability of every ordered slate on the logged pages (a
    target reading the truth gets the pages' attractions as ``info``)."""
    K, L = record.ctr_estimate.shape[1], record.action.shape[1]
    policy.reset(K, slate_size=L, seed=np.random.SeedSequence(seed))
    return np.asarray(policy.slate_probabilities({"ctr_estimate": record.ctr_estimate},
                                                 {"attraction": record.attraction}), dtype=np.float64)
