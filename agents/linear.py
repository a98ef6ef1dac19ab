"""Linear contextual bandits: LinUCB (disjoint per arm, and shared over candidate features) and
linear Thompson sampling. All keep their ridge inverses by rank-one updates (``agents.ridge``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adsim.config import check_choice, check_float, check_int
from agents.arms import CampaignIndex, check_feedback, check_obs, draw_actions
from agents.base import Obs, Policy
from agents.features import DIM, SEGMENTS, candidate_features, n_segments, request_features, user_segment
from agents.ridge import Ridge
from agents.thompson import argmax_frequencies

REQUEST_KEYS = ("user", "context", "campaign")


def _check_keys(features: Any) -> tuple[str, ...]:
    if isinstance(features, str) or not isinstance(features, (tuple, list)) or not features:
        raise TypeError(f"features must be a non-empty tuple of obs keys from {REQUEST_KEYS}, got {features!r}")
    for f in features:
        if f not in REQUEST_KEYS:
            raise ValueError(f"features contains {f!r}; allowed: {REQUEST_KEYS}")
    return tuple(features)


class LinUCB(Policy):
    """Disjoint LinUCB (Li et al., 2010): one ridge regression per campaign and arm.

    The request's context ``x = [obs[f] for f in features] + [1]`` (user, real-time context and
    campaign features by default, d = 80 in the default world) scores arm k with
    ``θ_kᵀx + alpha · sqrt(xᵀ A_k⁻¹ x)``; the best score is shown (ties share the probability).
    Arms are per campaign, as for the context-free policies (``agents.arms``).

    Args:
        alpha: width of the confidence bonus, in [0, 100].
        reg: ridge regularisation (prior precision), in (0, 1e6].
        features: obs keys concatenated into the context, from ("user", "context", "campaign").
    """

    name = "linucb"

    def __init__(self, alpha: float = 1.0, reg: float = 1.0, features: tuple[str, ...] = REQUEST_KEYS):
        check_float("alpha", alpha, 0.0, 100.0)
        check_float("reg", reg, 0.0, 1e6, open_low=True)
        self.alpha, self.reg, self.features = float(alpha), float(reg), _check_keys(features)

    def reset(self, n_actions: int, seed=None) -> None:
        super().reset(n_actions, seed)
        self.index = CampaignIndex()
        self.ridge: Ridge | None = None  # sized on the first request (d is known then)

    def _prepare(self, obs: Obs) -> tuple[np.ndarray, np.ndarray]:
        """Campaign rows (N,) and contexts (N, d); grows the regressions for new campaigns."""
        check_obs(obs)
        x = request_features(obs, self.features)
        slots = self.index.lookup(obs["campaign"])
        if self.ridge is None:
            self.ridge = Ridge(0, x.shape[1], self.reg)
        if len(self.index) * self.n_actions > self.ridge.groups:
            self.ridge.grow(len(self.index) * self.n_actions)
        return slots, x

    def scores(self, obs: Obs) -> np.ndarray:
        """(N, K) upper confidence bounds."""
        slots, x = self._prepare(obs)
        K, rd = self.n_actions, self.ridge
        if x.shape[0] == 1:  # the one-request path: (K, d, d) @ (d,)
            g = slice(int(slots[0]) * K, int(slots[0]) * K + K)
            v = rd.A_inv[g] @ x[0]
            return (rd.theta[g] @ x[0] + self.alpha * np.sqrt(v @ x[0]))[None]
        out = np.empty((x.shape[0], K))
        for s in np.unique(slots):  # one iteration per campaign in the batch
            rows = np.flatnonzero(slots == s) if len(self.index) > 1 else slice(None)
            xs = x[rows]
            g = slice(int(s) * K, int(s) * K + K)
            d = xs.shape[1]
            v = (xs @ rd.A_inv[g].transpose(1, 0, 2).reshape(d, K * d)).reshape(-1, K, d)  # one GEMM
            width = np.sqrt((v * xs[:, None, :]).sum(axis=2))
            out[rows] = xs @ rd.theta[g].T + self.alpha * width
        return out

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        s = self.scores(obs)
        top = s == s.max(axis=1, keepdims=True)
        return top / top.sum(axis=1, keepdims=True)

    def select(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        p = self.probabilities(obs)
        if (p.max(axis=1) == 1.0).all():  # no ties: deterministic, no draw needed
            return p.argmax(axis=1)
        return draw_actions(p, self.rng)

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        slots, x = self._prepare(obs)
        a, r = check_feedback(actions, rewards, x.shape[0], self.n_actions)
        self.ridge.update(slots * self.n_actions + a, x, r)


class _SharedLinear(Policy):
    """Base of the shared-model policies: a ridge regression over candidate features per user segment."""

    def __init__(self, reg: float, segment_by: str):
        check_float("reg", reg, 0.0, 1e6, open_low=True)
        check_choice("segment_by", segment_by, SEGMENTS)
        self.reg, self.segment_by = float(reg), segment_by

    def reset(self, n_actions: int, seed=None) -> None:
        super().reset(n_actions, seed)
        self.ridge: Ridge | None = None  # one block per segment, sized on the first request

    def features(self, obs: Obs) -> tuple[np.ndarray, np.ndarray]:
        """Segments (N,) and candidate features (N, K, DIM) of a batch."""
        check_obs(obs)
        z = candidate_features(obs)
        if z.shape[1] != self.n_actions:
            raise ValueError(f"obs has {z.shape[1]} candidates, policy was reset for K == {self.n_actions}")
        if self.ridge is None:
            self.ridge = Ridge(n_segments(self.segment_by, obs["user"].shape[1]), DIM, self.reg)
        return user_segment(obs["user"], self.segment_by), z

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        seg, z = self.features(obs)
        a, r = check_feedback(actions, rewards, z.shape[0], self.n_actions)
        self.ridge.update(seg, z[np.arange(a.shape[0]), a], r)

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        seg, z = self.features(obs)
        out = np.empty(z.shape[:2])
        for s in np.unique(seg):  # one iteration per user segment present (at most a few)
            rows = np.flatnonzero(seg == s)
            out[rows] = self._segment_probabilities(int(s), z[rows])
        return out

    def _segment_probabilities(self, s: int, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class LinUCBShared(_SharedLinear):
    """LinUCB with one model shared by all candidates: works when candidates change every request.

    Scores candidate k by ``θ_sᵀz + alpha · sqrt(zᵀA_s⁻¹z)`` where ``z`` are the candidate's
    features (``agents.features``: bias, relative CTR estimate, multi-hot of its phrases and
    visual attributes) and ``s`` is the user's segment (its strongest interest tag by default):
    the model is linear in *creative parts × user segment*. Ties share the probability.

    Args:
        alpha: width of the confidence bonus, in [0, 100].
        reg: ridge regularisation, in (0, 1e6].
        segment_by: user segmentation, "tag", "category" or "none".
    """

    name = "linucb_shared"

    def __init__(self, alpha: float = 0.3, reg: float = 1.0, segment_by: str = "tag"):
        super().__init__(reg, segment_by)
        check_float("alpha", alpha, 0.0, 100.0)
        self.alpha = float(alpha)

    def _segment_probabilities(self, s: int, z: np.ndarray) -> np.ndarray:
        n, k, d = z.shape
        flat = z.reshape(n * k, d)
        width = np.sqrt(np.einsum("id,id->i", flat @ self.ridge.A_inv[s], flat))
        score = (flat @ self.ridge.theta[s] + self.alpha * width).reshape(n, k)
        top = score == score.max(axis=1, keepdims=True)
        return top / top.sum(axis=1, keepdims=True)


class LinearTS(_SharedLinear):
    """Linear Thompson sampling (Agrawal & Goyal, 2013) on the shared candidate features.

    Posterior per segment ``θ_s ~ N(θ̂_s, v² A_s⁻¹)``; each request shows the candidate with the
    best sampled score. The propensities are the shares of ``samples`` posterior draws (shared by
    the batch's requests of a segment) in which each candidate wins; ``select`` draws from exactly
    those.

    Args:
        v: posterior scale, in (0, 100].
        reg: ridge regularisation, in (0, 1e6].
        segment_by: user segmentation, "tag", "category" or "none".
        samples: posterior draws behind the propensities, in [1, 4096].
    """

    name = "lin_ts"

    def __init__(self, v: float = 0.1, reg: float = 1.0, segment_by: str = "tag", samples: int = 64):
        super().__init__(reg, segment_by)
        check_float("v", v, 0.0, 100.0, open_low=True)
        check_int("samples", samples, 1, 4096)
        self.v, self.samples = float(v), samples

    def posterior_draws(self, s: int) -> np.ndarray:
        """(samples, DIM) draws of segment ``s``'s θ from its posterior."""
        cov = self.ridge.A_inv[s]
        chol = np.linalg.cholesky(0.5 * (cov + cov.T))
        xi = self.rng.standard_normal((self.samples, cov.shape[0]))
        return self.ridge.theta[s] + self.v * xi @ chol.T

    def _segment_probabilities(self, s: int, z: np.ndarray) -> np.ndarray:
        n, k, d = z.shape
        score = (z.reshape(n * k, d) @ self.posterior_draws(s).T).reshape(n, k, self.samples)
        return argmax_frequencies(score.transpose(0, 2, 1))
