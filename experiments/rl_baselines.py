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


FALLBACKS: dict[str, type[Policy]] = {"greedy": CTRGreedy, "ucb1": ArmUCB1}
