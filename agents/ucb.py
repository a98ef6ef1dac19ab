"""Optimism in the face of uncertainty: UCB1 and KL-UCB on each campaign's arms."""

from __future__ import annotations

import math

import numpy as np

from adsim.validation import check_float, check_int
from agents.arm_tables import ArmPolicy, argmax_probabilities, check_unit_rewards


class UCB1(ArmPolicy):
    """UCB1 (Auer et al., 2002): the arm maximising ``mean_k + sqrt(c · ln n / n_k)``.

    ``n`` is the campaign's impressions, ``n_k`` the arm's; untried arms go first. Deterministic
    except for ties, which share the probability.

    Args:
        c: exploration coefficient, in (0, 100]; 2 is the classical choice for rewards in [0, 1].
    """

    name = "ucb1"

    def __init__(self, c: float = 2.0):
        check_float("c", c, 0.0, 100.0, open_low=True)
        self.c = float(c)

    def _slot_probabilities(self, slots: np.ndarray) -> np.ndarray:
        return argmax_probabilities(self._slot_index(slots))

    def _slot_index(self, slots: np.ndarray, n: np.ndarray | None = None) -> np.ndarray:
        """(U, K) indices ``mean_k + sqrt(c · ln n / n_k)`` of U campaign rows (+inf for untried arms);
        ``n`` (U, 1) replaces the rows' impressions (a slate policy counts rounds instead)."""
        n_k = self.counts[slots]
        log_n = np.log(np.maximum(n_k.sum(axis=1, keepdims=True) if n is None else n, 1.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = np.sqrt(self.c * log_n / n_k)
        return np.where(n_k > 0, self.means(slots) + bonus, np.inf)

    def _one_probabilities(self, slot: int) -> list[float]:
        """:meth:`_slot_probabilities` of one row in Python floats (the same operations, so equal)."""
        row = self._one_row(slot)
        counts, sums = row.counts, row.sums
        c_log_n = self.c * float(np.log(np.float64(max(sum(counts), 1.0))))  # NumPy's log, as batched
        index = [s / n + math.sqrt(c_log_n / n) if n > 0 else math.inf for s, n in zip(sums, counts)]
        best = max(index)
        top = 1.0 / index.count(best)
        return [top if i == best else 0.0 for i in index]


def bernoulli_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Elementwise KL(Bernoulli(p) ‖ Bernoulli(q)), with the 0 log 0 = 0 convention."""
    eps = 1e-15
    p = np.clip(p, 0.0, 1.0)
    q = np.clip(q, eps, 1.0 - eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(p > 0, p * np.log(p / q), 0.0)
        b = np.where(p < 1, (1 - p) * np.log((1 - p) / (1 - q)), 0.0)
    return a + b


def kl_upper_bound(mean: np.ndarray, level: np.ndarray, iters: int = 40) -> np.ndarray:
    """Largest q in [mean, 1] with KL(mean ‖ q) <= level, by vectorised bisection (error 2^-iters)."""
    lo, hi = mean.copy(), np.ones_like(mean)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        ok = bernoulli_kl(mean, mid) <= level
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    return lo


class KLUCB(ArmPolicy):
    """KL-UCB (Garivier & Cappé, 2011) for rewards in [0, 1].

    Index ``max{q : n_k · KL(mean_k ‖ q) <= ln n + c · ln ln n}``, computed by bisection; it is
    tighter than UCB1's for small CTRs. Untried arms first; ties share the probability.

    Args:
        c: coefficient of the ``ln ln n`` term, in [0, 10]; 0 works best in practice, 3 is the
            one the regret bound is proved for.
        iters: bisection steps, in [10, 60] (precision 2^-iters).
    """

    name = "kl_ucb"

    def __init__(self, c: float = 0.0, iters: int = 40):
        check_float("c", c, 0.0, 10.0)
        check_int("iters", iters, 10, 60)
        self.c, self.iters = float(c), iters

    def _check_rewards(self, rewards: np.ndarray) -> None:
        check_unit_rewards(rewards, "kl_ucb")

    def _slot_probabilities(self, slots: np.ndarray) -> np.ndarray:
        return argmax_probabilities(self._slot_index(slots))

    def _slot_index(self, slots: np.ndarray, n: np.ndarray | None = None) -> np.ndarray:
        """(U, K) KL upper confidence bounds of U campaign rows (+inf for untried arms); ``n`` (U, 1)
        replaces the rows' impressions in the budget (a slate policy counts rounds instead)."""
        n_k = self.counts[slots]
        n = np.maximum(n_k.sum(axis=1, keepdims=True) if n is None else n, 1.0)
        budget = np.log(n) + self.c * np.log(np.maximum(np.log(n), 1.0))
        tried = n_k > 0
        mean = np.where(tried, self.sums[slots] / np.where(tried, n_k, 1.0), 0.0)
        level = budget / np.where(tried, n_k, 1.0)
        index = kl_upper_bound(mean, level, self.iters)
        return np.where(tried, index, np.inf)
