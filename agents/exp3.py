"""EXP3: exponential weights for adversarial bandits, per campaign (rewards in [0, 1])."""

from __future__ import annotations

import numpy as np

from adsim.validation import check_float
from agents.arm_tables import ArmPolicy, check_feedback, check_obs, check_unit_rewards
from agents.base import Obs


class EXP3(ArmPolicy):
    """EXP3 (Auer et al., 2002): ``p = (1 − γ) · softmax(log w) + γ / K``.

    An impression of arm a with reward r adds ``η · r / p_a`` to ``log w_a`` (importance-weighted
    estimate), ``η = γ / K``. A batch of feedback uses the probabilities *before* the batch — the
    ones its actions were drawn from when ``update`` follows the batch's ``select`` (delay of one
    batch); with batches of one this is the sequential algorithm exactly.

    Args:
        gamma: exploration mixture and learning-rate scale, in (0, 1].
    """

    name = "exp3"

    def __init__(self, gamma: float = 0.05):
        check_float("gamma", gamma, 0.0, 1.0, open_low=True)
        self.gamma = float(gamma)

    def reset(self, n_actions: int, seed=None, group_seeds=None) -> None:
        super().reset(n_actions, seed, group_seeds)
        self.log_w = np.zeros((0, self.n_actions))
        """(campaigns, K) log-weights."""

    def _grow(self, n_rows: int) -> None:
        old = self.counts.shape[0]
        super()._grow(n_rows)
        self.log_w = np.concatenate([self.log_w, np.zeros((self.counts.shape[0] - old, self.n_actions))])

    def _slot_probabilities(self, slots: np.ndarray) -> np.ndarray:
        lw = self.log_w[slots]
        w = np.exp(lw - lw.max(axis=1, keepdims=True))
        return (1.0 - self.gamma) * w / w.sum(axis=1, keepdims=True) + self.gamma / self.n_actions

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        n = check_obs(obs)
        a, r = check_feedback(actions, rewards, n, self.n_actions)
        check_unit_rewards(r, "exp3")
        s = self.slots(obs)
        p = self.probabilities(obs)[np.arange(n), a]
        flat = s * self.n_actions + a
        gain = np.bincount(flat, weights=(self.gamma / self.n_actions) * r / p, minlength=self.log_w.size)
        self.log_w += gain.reshape(self.log_w.shape)
        super().update(obs, a, r)
