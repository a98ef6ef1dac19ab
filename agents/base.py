"""The one interface every policy implements, and the two reference policies.

A policy acts on a *batch* of requests at once::

    policy.reset(n_actions=K, seed=s)          # fresh state, its own random stream
    probs = policy.probabilities(obs, info)    # (N, K) action probabilities (propensities)
    actions = policy.select(obs, info)         # (N,) ints in [0, K)
    policy.update(obs, actions, rewards)       # learn from a batch of feedback

``obs`` is the batched observation dict of ``adsim/CreativeSelection-v0``'s vector env (keys
``user``, ``context``, ``campaign``, ``candidates``, ``ctr_estimate``, each with a leading batch
axis). ``info`` is the env's info dict; only reference policies (the oracle) may read it.
Context-free policies accept the context and ignore it, so callers never branch on a policy's
type. ``select`` draws from ``probabilities`` with the policy's own ``np.random.Generator``;
deterministic policies report probability 1 for the chosen action.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

Obs = dict[str, np.ndarray]


class Policy(ABC):
    """Base class: subclasses implement ``probabilities`` (and ``update`` if they learn)."""

    name: str = "policy"

    def reset(self, n_actions: int, seed: int | np.random.SeedSequence | None = None) -> None:
        """Forget everything learned; (re)seed the policy's random stream."""
        if isinstance(n_actions, bool) or not isinstance(n_actions, (int, np.integer)) or n_actions < 1:
            raise ValueError(f"n_actions == {n_actions!r}, must be an int >= 1")
        self.n_actions = int(n_actions)
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N, K) probability of each action for each request."""

    def select(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N,) actions drawn from ``probabilities`` with the policy's own generator."""
        p = self.probabilities(obs, info)
        u = self.rng.random((p.shape[0], 1))
        return np.minimum((u > np.cumsum(p, axis=1)).sum(axis=1), p.shape[1] - 1)

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from a batch of feedback (no-op for non-learning policies)."""

    @staticmethod
    def batch_size(obs: Obs) -> int:
        return int(obs["ctr_estimate"].shape[0])


class RandomPolicy(Policy):
    """Uniformly random choice among the K candidates."""

    name = "random"

    def probabilities(self, obs, info=None):
        n = self.batch_size(obs)
        return np.full((n, self.n_actions), 1.0 / self.n_actions)


class OraclePolicy(Policy):
    """Shows the candidate with the highest *true* expected reward (reads ``info``; reference only)."""

    name = "oracle"

    def probabilities(self, obs, info=None):
        if info is None or "expected_reward" not in info:
            raise ValueError("the oracle needs the env's info with 'expected_reward' (ground truth)")
        best = np.argmax(np.asarray(info["expected_reward"]), axis=1)
        p = np.zeros((best.shape[0], self.n_actions))
        p[np.arange(best.shape[0]), best] = 1.0
        return p
