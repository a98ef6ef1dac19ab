"""Beta-Bernoulli Thompson sampling, and the hybrid bandit with the CTR estimate as its prior.

Thompson sampling shows arm k with the posterior probability that k is the best arm.
:class:`BetaThompson` computes that probability by numerical integration over the arms' Beta
posteriors (``agents.quadrature``: no random draws, absolute error below 1e-4, tested); the
hybrid, whose every request has its own posteriors, estimates it from ``samples`` posterior draws
per distinct request (from a stream fixed by the policy's seed and update count, so asking twice
gives the same answer). Either way ``select`` draws the action from exactly those probabilities,
so the logged propensities are the ones the policy acted on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adsim.validation import check_float, check_int
from agents.arm_tables import (
    ArmPolicy,
    CampaignIndex,
    PosteriorDraws,
    check_feedback,
    check_obs,
    check_unit_rewards,
)
from agents.base import Obs, Policy
from agents.quadrature import NODES, beta_argmax

ESTIMATE_FLOOR = 1e-4
"""The hybrid's prior mean is the estimate kept inside [1e-4, 1 − 1e-4] so both Beta parameters are > 0."""


def argmax_frequencies(draws: np.ndarray) -> np.ndarray:
    """(U, K) share of the M draws (U, M, K) in which each arm is the largest."""
    u, m, k = draws.shape
    best = draws.argmax(axis=2) + (np.arange(u) * k)[:, None]
    return np.bincount(best.ravel(), minlength=u * k).reshape(u, k) / m


class BetaThompson(ArmPolicy):
    """Beta-Bernoulli Thompson sampling per campaign and arm (rewards in [0, 1]).

    Posterior of arm k: ``Beta(alpha0 + S_k, beta0 + n_k − S_k)`` with ``S_k`` the summed rewards
    and ``n_k`` the impressions. The probability that arm k's posterior draw is the largest is
    integrated numerically (``agents.quadrature.beta_argmax``, ``nodes`` grid points per arm;
    absolute error below ``agents.quadrature.ERROR_BOUND`` = 1e-4 at the default, tested).

    Args:
        alpha0: prior pseudo-clicks, in (0, 1e6].
        beta0: prior pseudo-non-clicks, in (0, 1e6].
        nodes: quadrature grid points per arm, in [8, 1024].
    """

    name = "thompson"

    def __init__(self, alpha0: float = 1.0, beta0: float = 1.0, nodes: int = NODES):
        check_float("alpha0", alpha0, 0.0, 1e6, open_low=True)
        check_float("beta0", beta0, 0.0, 1e6, open_low=True)
        check_int("nodes", nodes, 8, 1024)
        self.alpha0, self.beta0, self.nodes = float(alpha0), float(beta0), nodes

    def _check_rewards(self, rewards: np.ndarray) -> None:
        check_unit_rewards(rewards, "thompson")

    def posterior(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(U, K) Beta parameters (alpha, beta) of the campaigns' arms."""
        s, n = self.sums[slots], self.counts[slots]
        return self.alpha0 + s, self.beta0 + n - s

    def _slot_probabilities(self, slots: np.ndarray) -> np.ndarray:
        """Cached per campaign row: recomputed only for rows whose counts or sums changed since
        (each row's integral is independent of the others', so this changes no number)."""
        rows = self.counts.shape[0]
        if self._cached_p.shape[0] < rows:
            extra = rows - self._cached_p.shape[0]
            self._cached_p = np.concatenate([self._cached_p, np.zeros((extra, self.n_actions))])
            self._cached_counts = np.concatenate([self._cached_counts, np.full((extra, self.n_actions), np.nan)])
            self._cached_sums = np.concatenate([self._cached_sums, np.full((extra, self.n_actions), np.nan)])
        fresh = ((self._cached_counts[slots] == self.counts[slots]).all(axis=1)
                 & (self._cached_sums[slots] == self.sums[slots]).all(axis=1))
        if not fresh.all():
            stale = np.unique(slots[~fresh])
            a, b = self.posterior(stale)
            self._cached_p[stale] = beta_argmax(a, b, self.nodes)
            self._cached_counts[stale] = self.counts[stale]
            self._cached_sums[stale] = self.sums[stale]
        return self._cached_p[slots]

    def reset(self, n_actions: int, seed=None, group_seeds=None) -> None:
        super().reset(n_actions, seed, group_seeds)
        self._cached_p = np.zeros((0, self.n_actions))
        """(rows, K) propensities last computed per campaign row, from these counts and sums:"""
        self._cached_counts = np.zeros((0, self.n_actions))
        self._cached_sums = np.zeros((0, self.n_actions))


class HybridThompson(PosteriorDraws, Policy):
    """Thompson sampling per creative with the platform's CTR estimate as the prior
    (the creative-ranking hybrid bandit: a model prior, refined by each creative's own feedback).

    For candidate k of a request the prior is ``Beta(s·e_k, s·(1 − e_k))``, centred on the CTR
    estimate ``e = obs["ctr_estimate"]`` (kept in [1e-4, 1 − 1e-4]) with strength ``s``
    pseudo-impressions; the feedback of *that creative* in that campaign updates it:
    ``Beta(s·e_k + S, s·(1 − e_k) + n − S)``. Statistics are keyed by (campaign, creative id
    vector), so they follow a creative in pool mode (a persistent arm) and in personalised mode
    (where a creative recurs only when the generator proposes it again; otherwise the policy
    samples around the estimate). They sit in a hashed table of ``2**table_bits`` entries;
    creatives sharing an entry would share statistics, which is negligible while the number of
    creatives shown stays well below the table size.

    Args:
        prior_strength: s, pseudo-impressions behind the estimate, in (0, 1e6].
        samples: posterior draws behind each propensity estimate, in [16, 65536].
        table_bits: log2 of the statistics table size, in [10, 26].
    """

    name = "hybrid"
    stackable = True

    def __init__(self, prior_strength: float = 1000.0, samples: int = 128, table_bits: int = 20):
        check_float("prior_strength", prior_strength, 0.0, 1e6, open_low=True)
        check_int("samples", samples, 16, 65536)
        check_int("table_bits", table_bits, 10, 26)
        self.prior_strength, self.samples, self.table_bits = float(prior_strength), samples, table_bits

    def reset(self, n_actions: int, seed=None, group_seeds=None) -> None:
        super().reset(n_actions, seed, group_seeds)
        self._reset_draws()
        self.index = CampaignIndex(self.groups)
        self.counts = np.zeros(self.n_groups << self.table_bits)
        """Impressions per (campaign, creative) table entry (one table per group)."""
        self.sums = np.zeros(self.n_groups << self.table_bits)
        """Summed rewards per table entry."""

    def creative_keys(self, obs: Obs) -> np.ndarray:
        """(N, K) table entries of the candidates (multiplicative hashing of campaign and ids)."""
        n = check_obs(obs, n_actions=self.n_actions)
        rows = self.index.lookup(obs["campaign"])
        slots = rows.astype(np.uint64) if self.n_groups == 1 else np.asarray(self.index.local, dtype=np.uint64)[rows]
        ids = np.asarray(obs["candidates"]).reshape(n, self.n_actions, -1).astype(np.uint64)
        mult = _HASH_MULT[: ids.shape[2]]
        h = (ids * mult).sum(axis=2, dtype=np.uint64) + slots[:, None] * _HASH_CAMPAIGN
        keys = ((h * _HASH_MIX) >> np.uint64(64 - self.table_bits)).astype(np.int64)
        if self.n_groups > 1:  # each group its own table
            keys = self.groups.key(np.asarray(self.index.group)[rows, None], keys, 1 << self.table_bits)
        return keys

    def posterior(self, keys: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Beta parameters (alpha, beta), each shaped like ``keys``, for table entries with estimates."""
        e = np.clip(np.asarray(estimate, dtype=np.float64), ESTIMATE_FLOOR, 1.0 - ESTIMATE_FLOOR)
        s, n = self.sums[keys], self.counts[keys]
        return self.prior_strength * e + s, self.prior_strength * (1.0 - e) + n - s

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        a, b = self.posterior(self.creative_keys(obs), obs["ctr_estimate"])
        ab, k = np.concatenate([a, b], axis=1), self.n_actions
        row_groups = self.group_rows(ab.shape[0]) if self.n_groups > 1 else None

        def draw(rng: np.random.Generator, rows) -> np.ndarray:
            uniq, inv = np.unique(ab[rows], axis=0, return_inverse=True)  # requests sharing posteriors
            draws = rng.beta(uniq[:, None, :k], uniq[:, None, k:], size=(uniq.shape[0], self.samples, k))
            return argmax_frequencies(draws)[inv.reshape(-1)]

        return self.per_group(row_groups, draw)

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        keys = self.creative_keys(obs)
        a, r = check_feedback(actions, rewards, keys.shape[0], self.n_actions)
        check_unit_rewards(r, "hybrid")
        shown = keys[np.arange(a.shape[0]), a]
        entries, inv = np.unique(shown, return_inverse=True)  # O(batch), not O(table size)
        self.counts[entries] += np.bincount(inv, minlength=entries.size)
        self.sums[entries] += np.bincount(inv, weights=r, minlength=entries.size)
        self.n_updates += 1


_HASH_MULT = np.random.default_rng(np.random.SeedSequence(20260)).integers(1, 2**63, size=64, dtype=np.uint64) | np.uint64(1)
_HASH_CAMPAIGN = np.uint64(0x9E3779B97F4A7C15)
_HASH_MIX = np.uint64(0xBF58476D1CE4E5B9)
