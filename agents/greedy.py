"""Greedy policies: greedy on the platform's CTR estimate, and ε-greedy on empirical means."""

from __future__ import annotations

import math
from bisect import bisect_left
from itertools import accumulate
from typing import Any

import numpy as np

from adsim.validation import check_float
from agents.arm_tables import ArmPolicy, argmax_probabilities, check_obs
from agents.base import Obs, Policy


class GreedyEstimate(Policy):
    """Shows the candidate with the highest CTR estimate (``obs["ctr_estimate"]``); never explores.

    Works in pool and personalised mode alike. Ties share the probability (drawn with the policy's
    generator). It does not learn itself: the platform's estimate learns from every impression.
    """

    name = "greedy"
    stackable = True

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        check_obs(obs)
        return argmax_probabilities(np.asarray(obs["ctr_estimate"]))


class EpsilonGreedy(ArmPolicy):
    """ε-greedy on each campaign's empirical mean rewards per arm.

    With probability ``1 − ε_n`` the arm with the best empirical mean (untried arms first, ties
    shared), otherwise a uniformly random arm. ``ε_n = epsilon / (1 + decay · n)`` where ``n`` is
    the number of impressions the campaign has had: ``decay = 0`` is fixed ε (linear regret),
    ``decay > 0`` decays like 1/n (logarithmic regret for a suitable scale).

    Args:
        epsilon: exploration probability at the start, in [0, 1].
        decay: per-impression decay rate of ε, in [0, 1e3]; 0 keeps ε fixed.
    """

    name = "epsilon_greedy"

    def __init__(self, epsilon: float = 0.1, decay: float = 0.0):
        check_float("epsilon", epsilon, 0.0, 1.0)
        check_float("decay", decay, 0.0, 1e3)
        self.epsilon, self.decay = float(epsilon), float(decay)

    def current_epsilon(self, slots: np.ndarray) -> np.ndarray:
        """(U,) exploration probability of each campaign now."""
        return self.epsilon / (1.0 + self.decay * self.counts[slots].sum(axis=1))

    def _slot_probabilities(self, slots: np.ndarray) -> np.ndarray:
        eps = self.current_epsilon(slots)[:, None]
        return (1.0 - eps) * argmax_probabilities(self.means(slots)) + eps / self.n_actions

    def _one_probabilities(self, slot: int) -> list[float]:
        """:meth:`_slot_probabilities` of one row in Python floats (the same operations, so equal)."""
        return self._one_fresh(self._one_row(slot))[0]

    def _one_fresh(self, row) -> tuple[list[float], int, list[float], list[float]]:
        """The probabilities of a :class:`~agents.arm_tables.OneRow`, the best arm if it is unique
        (else −1), and the open bounds of each arm's mean inside which the set of best arms, so the
        probabilities, stay as they are: above the runner-up's mean for a unique best arm, below it
        for the others; below the best mean for the others when several arms tie for it (the tied
        arms' bounds are empty)."""
        counts, sums = row.counts, row.sums
        eps = self.epsilon / (1.0 + self.decay * sum(counts))  # integer counts: exact in any order
        means = [s / n if n > 0 else math.inf for s, n in zip(sums, counts)]
        best = max(means)
        ties = means.count(best)
        keep, base = 1.0 - eps, eps / self.n_actions
        top = keep * (1.0 / ties) + base
        p = [top if m == best else base for m in means]
        K = len(means)
        if ties == 1:
            single = means.index(best)
            second = max([m for i, m in enumerate(means) if i != single], default=-math.inf)
            lo, hi = [-math.inf] * K, [second] * K
            lo[single], hi[single] = second, math.inf
        else:
            single = -1
            lo, hi = [-math.inf] * K, [best] * K
            for i, m in enumerate(means):
                if m == best:
                    lo[i], hi[i] = math.inf, -math.inf
        return p, single, lo, hi

    def _one_select(self, slot: int) -> int:
        row = self._one_row(slot)
        p, single, lo, hi = self._one_fresh(row)
        if self.decay == 0.0:  # a decaying ε changes at every update: nothing kept
            row.cache, row.lo, row.hi = single, lo, hi
        else:
            row.cache = row.lo = row.hi = None
        cums = list(accumulate(p))  # the sequential sums draw_one forms,
        cums[-1] = math.inf  # the last +inf: the bisection stops at the last arm, as draw_one's min
        row.cums = cums
        return bisect_left(cums, self.uniform_one())

    def _one_update(self, row, arm: int, reward: float, count: float, total: float) -> None:
        """The arm's new mean left its bounds (:meth:`_one_fresh`): a runner-up above the runner-up
        bound but still below the unique best arm's mean raises that bound; anything else (the best
        arm at or below it, ties, a decaying ε) drops the cached probabilities."""
        single, lo = row.cache, row.lo
        if lo is not None and single is not None and single >= 0 and arm != single:
            n = row.counts[single]
            best = row.sums[single] / n if n > 0 else math.inf
            m = total / count
            if m < best:
                hi = row.hi
                hi[:] = [m] * len(hi)
                lo[single], hi[single] = m, math.inf
                return
        row.cums = row.cache = row.lo = row.hi = None


class DecayingEpsilonGreedy(EpsilonGreedy):
    """:class:`EpsilonGreedy` with a decaying ε by default (``epsilon=1``, ``decay=0.001``)."""

    name = "epsilon_greedy_decay"

    def __init__(self, epsilon: float = 1.0, decay: float = 0.001):
        super().__init__(epsilon, decay)
