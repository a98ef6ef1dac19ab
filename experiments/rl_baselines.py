"""Bandit baselines the RL study falls back on when ``agents.registry`` does not provide them.

The study resolves every policy name through ``agents.registry`` first; these two are used only
for names the registry lacks (``greedy``, ``ucb1``), so once the bandit library is merged the
registry's implementations take over without a change to the study.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adsim.config import check_float
from agents.base import Policy


@dataclass(eq=False)
class CTRGreedy(Policy):
    """Shows the candidate with the highest CTR estimate in the observation (the platform's model)."""

    name = "greedy"

    def probabilities(self, obs, info=None):
        est = np.asarray(obs["ctr_estimate"])
        p = np.zeros(est.shape)
        p[np.arange(est.shape[0]), np.argmax(est, axis=1)] = 1.0
        return p


@dataclass(eq=False)
class ArmUCB1(Policy):
    """UCB1 over the K action indices (context-free): mean reward + ``c·sqrt(ln n / n_k)``."""

    c: float = 1.0
    name = "ucb1"

    def __post_init__(self):
        check_float("c", self.c, 0.0, 100.0)

    def reset(self, n_actions, seed=None):
        super().reset(n_actions, seed)
        self.counts = np.zeros(self.n_actions)
        self.sums = np.zeros(self.n_actions)

    def probabilities(self, obs, info=None):
        n = self.batch_size(obs)
        total = max(self.counts.sum(), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            index = self.sums / self.counts + self.c * np.sqrt(np.log(total) / self.counts)
        index = np.where(self.counts == 0, np.inf, index)
        best = index == index.max()  # ties share the probability
        return np.broadcast_to(best / best.sum(), (n, self.n_actions)).copy()

    def update(self, obs, actions, rewards):
        self.counts += np.bincount(actions, minlength=self.n_actions)
        self.sums += np.bincount(actions, weights=np.asarray(rewards, dtype=np.float64), minlength=self.n_actions)


@dataclass(eq=False)
class ObsLinUCB(Policy):
    """Disjoint LinUCB (Li et al., 2010) with features = the concatenated observation ``keys`` + 1.

    Per arm k: ``A_k = λI + Σ x xᵀ``, ``b_k = Σ r x``; index ``xᵀA_k⁻¹b_k + alpha·sqrt(xᵀA_k⁻¹x)``.
    It is myopic: it predicts this impression's reward, but from a state that may include the
    session's exposure counts, so it can learn that a tired creative clicks less.
    """

    alpha: float = 0.5
    ridge: float = 1.0
    keys: tuple[str, ...] = ("user", "context")
    name = "linucb_obs"

    def __post_init__(self):
        check_float("alpha", self.alpha, 0.0, 100.0)
        check_float("ridge", self.ridge, 0.0, 1e6, open_low=True)
        if isinstance(self.keys, str) or not self.keys:
            raise ValueError(f"keys == {self.keys!r}, must be a non-empty sequence of observation keys")
        self.keys = tuple(self.keys)

    def reset(self, n_actions, seed=None):
        super().reset(n_actions, seed)
        self.A_inv: np.ndarray | None = None  # (K, d, d), lazily sized on the first observation
        self.b: np.ndarray | None = None

    def _features(self, obs) -> np.ndarray:
        missing = [k for k in self.keys if k not in obs]
        if missing:
            raise ValueError(f"linucb_obs: observation has no key {missing[0]!r}; has {sorted(obs)}")
        x = np.concatenate([np.asarray(obs[k], dtype=np.float64).reshape(self.batch_size(obs), -1)
                            for k in self.keys], axis=1)
        x = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
        if self.A_inv is None:
            d = x.shape[1]
            self.A_inv = np.broadcast_to(np.eye(d) / self.ridge, (self.n_actions, d, d)).copy()
            self.b = np.zeros((self.n_actions, d))
        return x

    def probabilities(self, obs, info=None):
        x = self._features(obs)  # (N, d)
        theta = np.einsum("kde,ke->kd", self.A_inv, self.b)  # (K, d)
        mean = x @ theta.T  # (N, K)
        width = np.sqrt(np.maximum(np.einsum("nd,kde,ne->nk", x, self.A_inv, x), 0.0))
        index = mean + self.alpha * width
        p = np.zeros(index.shape)
        p[np.arange(index.shape[0]), np.argmax(index, axis=1)] = 1.0
        return p

    def update(self, obs, actions, rewards):
        x = self._features(obs)
        rewards = np.asarray(rewards, dtype=np.float64)
        for k in np.unique(actions):  # one rank-m Woodbury update per arm shown in the batch
            xs = x[actions == k]  # (m, d)
            a_inv = self.A_inv[k]
            u = a_inv @ xs.T  # (d, m)
            inner = np.linalg.inv(np.eye(xs.shape[0]) + xs @ u)
            self.A_inv[k] = a_inv - u @ inner @ u.T
            self.b[k] += rewards[actions == k] @ xs


FALLBACKS: dict[str, type[Policy]] = {"greedy": CTRGreedy, "ucb1": ArmUCB1, "linucb_obs": ObsLinUCB}
