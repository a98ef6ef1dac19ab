"""Beta-Bernoulli Thompson sampling, and the hybrid bandit with the CTR estimate as its prior.

Thompson sampling shows arm k with the posterior probability that k is the best arm. Both
policies estimate that probability from ``samples`` posterior draws per distinct request
(``probabilities``; the draws come from a stream fixed by the policy's seed and update count, so
asking twice gives the same answer), and ``select`` draws the action from exactly those
probabilities, so the logged propensities are the ones the policy acted on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adsim.config import check_float, check_int
from agents.arms import ArmPolicy, PosteriorDraws, check_obs, check_unit_rewards
from agents.base import Obs

ESTIMATE_FLOOR = 1e-4
"""The hybrid's prior mean is the estimate kept inside [1e-4, 1 − 1e-4] so both Beta parameters are > 0."""


def argmax_frequencies(draws: np.ndarray) -> np.ndarray:
    """(U, K) share of the M draws (U, M, K) in which each arm is the largest."""
    u, m, k = draws.shape
    best = draws.argmax(axis=2) + (np.arange(u) * k)[:, None]
    return np.bincount(best.ravel(), minlength=u * k).reshape(u, k) / m


class BetaThompson(PosteriorDraws, ArmPolicy):
    """Beta-Bernoulli Thompson sampling per campaign and arm (rewards in [0, 1]).

    Posterior of arm k: ``Beta(alpha0 + S_k, beta0 + n_k − S_k)`` with ``S_k`` the summed rewards
    and ``n_k`` the impressions.

    Args:
        alpha0: prior pseudo-clicks, in (0, 1e6].
        beta0: prior pseudo-non-clicks, in (0, 1e6].
        samples: posterior draws behind each propensity estimate, in [16, 65536].
    """

    name = "thompson"

    def __init__(self, alpha0: float = 1.0, beta0: float = 1.0, samples: int = 512):
        check_float("alpha0", alpha0, 0.0, 1e6, open_low=True)
        check_float("beta0", beta0, 0.0, 1e6, open_low=True)
        check_int("samples", samples, 16, 65536)
        self.alpha0, self.beta0, self.samples = float(alpha0), float(beta0), samples

    def reset(self, n_actions: int, seed=None) -> None:
        super().reset(n_actions, seed)
        self._reset_draws()

    def _check_rewards(self, rewards: np.ndarray) -> None:
        check_unit_rewards(rewards, "thompson")

    def posterior(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(U, K) Beta parameters (alpha, beta) of the campaigns' arms."""
        s, n = self.sums[slots], self.counts[slots]
        return self.alpha0 + s, self.beta0 + n - s

    def _slot_probabilities(self, slots: np.ndarray) -> np.ndarray:
        a, b = self.posterior(slots)
        draws = self.draw_rng().beta(a[:, None, :], b[:, None, :], size=(a.shape[0], self.samples, a.shape[1]))
        return argmax_frequencies(draws)


class HybridThompson(PosteriorDraws, ArmPolicy):
    """Thompson sampling with the platform's CTR estimate as the prior (creative-ranking hybrid bandit).

    For each request and arm, the prior is ``Beta(s·e, s·(1 − e))`` centred on the CTR estimate
    ``e = obs["ctr_estimate"]`` (kept in [1e-4, 1 − 1e-4]) with strength ``s`` pseudo-impressions;
    the arm's own feedback in that campaign updates it: ``Beta(s·e + S_k, s·(1 − e) + n_k − S_k)``.
    A strong prior trusts the model; a weak one lets the arm's data dominate sooner. In
    personalised mode, where arms do not persist, it samples around the estimate.

    Args:
        prior_strength: s, pseudo-impressions behind the estimate, in (0, 1e6].
        samples: posterior draws behind each propensity estimate, in [16, 65536].
    """

    name = "hybrid"

    def __init__(self, prior_strength: float = 50.0, samples: int = 128):
        check_float("prior_strength", prior_strength, 0.0, 1e6, open_low=True)
        check_int("samples", samples, 16, 65536)
        self.prior_strength, self.samples = float(prior_strength), samples

    def reset(self, n_actions: int, seed=None) -> None:
        super().reset(n_actions, seed)
        self._reset_draws()

    def _check_rewards(self, rewards: np.ndarray) -> None:
        check_unit_rewards(rewards, "hybrid")

    def posterior(self, slots: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(U, K) Beta parameters for requests of campaign rows ``slots`` with estimates (U, K)."""
        e = np.clip(np.asarray(estimate, dtype=np.float64), ESTIMATE_FLOOR, 1.0 - ESTIMATE_FLOOR)
        s, n = self.sums[slots], self.counts[slots]
        return self.prior_strength * e + s, self.prior_strength * (1.0 - e) + n - s

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        check_obs(obs)
        slots = self.slots(obs)
        est = np.asarray(obs["ctr_estimate"], dtype=np.float64)
        keys = np.concatenate([slots[:, None].astype(np.float64), est], axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)  # requests sharing a posterior
        a, b = self.posterior(uniq[:, 0].astype(np.int64), uniq[:, 1:])
        draws = self.draw_rng().beta(a[:, None, :], b[:, None, :], size=(a.shape[0], self.samples, a.shape[1]))
        return argmax_frequencies(draws)[inv.reshape(-1)]
