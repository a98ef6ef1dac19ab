"""Linear contextual bandits: LinUCB (disjoint per arm, and shared over candidate features) and
linear Thompson sampling. All keep their ridge inverses up to date by Sherman–Morrison and
Woodbury updates or, for a large batch of one regression, by recomputing it (``agents.ridge``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from adsim.validation import check_choice, check_float, check_int
from agents import compiled
from agents.arm_tables import (
    CampaignIndex,
    PosteriorDraws,
    argmax_probabilities,
    check_feedback,
    check_obs,
    check_one_feedback,
    draw_one,
)
from agents.base import SCALAR_REWARDS, Obs, Policy, draw_actions, one_feedback
from adsim.creative.lexicon import MAX_PHRASES
from agents.features import (
    DIM,
    SEGMENTS,
    candidate_columns,
    dense_features,
    n_segments,
    request_features,
    user_segment,
)
from agents.quadrature import NODES, normal_argmax
from agents.ridge import Ridge
from agents.thompson import argmax_frequencies


def _csr_matvecs(*args) -> None:
    """SciPy's compiled CSR kernel ``Y += A · X`` (``scipy.sparse._sparsetools``), imported on first use."""
    from scipy.sparse._sparsetools import csr_matvecs

    csr_matvecs(*args)

REQUEST_KEYS = ("user", "context", "campaign")
_FEATURE_KEYS = ("candidates", "ctr_estimate", "user")
"""The observation arrays the shared models' features and segments are computed from."""


def _check_keys(features: Any) -> tuple[str, ...]:
    """Observation keys (any env's: e.g. AdSession's ``session`` block); checked against the obs on use."""
    if isinstance(features, str) or not isinstance(features, (tuple, list)) or not features:
        raise TypeError(f"features must be a non-empty tuple of observation keys such as {REQUEST_KEYS}, "
                        f"got {features!r}")
    for f in features:
        if not isinstance(f, str) or not f:
            raise ValueError(f"features contains {f!r}; each entry must be an observation key (str)")
    return tuple(features)


class LinUCB(Policy):
    """Disjoint LinUCB (Li et al., 2010): one ridge regression per campaign and arm.

    The request's context ``x = [obs[f] for f in features] + [1]`` (user, real-time context and
    campaign features by default, d = 80 in the default world) scores arm k with
    ``θ_kᵀx + alpha · sqrt(xᵀ A_k⁻¹ x)``; the best score is shown (ties share the probability).
    Arms are per campaign, as for the context-free policies (``agents.arm_tables``), so this is a
    pool-mode policy; with personalised candidates use :class:`LinUCBShared`. One request at a
    time (N = 1) takes a specialised path with a preallocated context buffer.

    Args:
        alpha: width of the confidence bonus, in [0, 100].
        reg: ridge regularisation (prior precision), in (0, 1e6].
        features: obs keys concatenated into the context, from ("user", "context", "campaign").
    """

    name = "linucb"
    stackable = True

    def __init__(self, alpha: float = 1.0, reg: float = 1.0, features: tuple[str, ...] = REQUEST_KEYS):
        check_float("alpha", alpha, 0.0, 100.0)
        check_float("reg", reg, 0.0, 1e6, open_low=True)
        self.alpha, self.reg, self.features = float(alpha), float(reg), _check_keys(features)

    def reset(self, n_actions: int, seed=None, group_seeds=None) -> None:
        super().reset(n_actions, seed, group_seeds)
        self.index = CampaignIndex(self.groups)
        self.ridge: Ridge | None = None  # sized on the first request (d is known then)
        self._x1: np.ndarray | None = None  # context buffer of the one-request path
        self._blocks: list[tuple[str, slice]] = []

    # ------------------------------------------------------------------ contexts and campaigns
    def _setup(self, x: np.ndarray) -> None:
        self.ridge = Ridge(0, x.shape[1], self.reg)
        self._x1 = np.ones(x.shape[1])
        start = 0
        for k in self.features:
            self._blocks.append((k, slice(start, start + self._width[k])))
            start += self._width[k]

    def _grow(self) -> None:
        if len(self.index) * self.n_actions > self.ridge.groups:
            self.ridge.grow(len(self.index) * self.n_actions)

    def _prepare(self, obs: Obs) -> tuple[np.ndarray, np.ndarray]:
        """Campaign rows (N,) and contexts (N, d); grows the regressions for new campaigns."""
        check_obs(obs, n_actions=self.n_actions)
        x = request_features(obs, self.features)  # raises if a feature key is missing
        widths = {k: np.shape(obs[k])[1] for k in self.features}
        if self.ridge is None:
            self._width = widths
            self._setup(x)
        elif widths != self._width:
            raise ValueError(f"obs feature widths {widths} differ from the first batch's {self._width}")
        slots = self.index.lookup(obs["campaign"])
        self._grow()
        return slots, x

    def _prepare_one(self, obs: Obs) -> tuple[int, np.ndarray]:
        """The one-request path of :meth:`_prepare`: fills a preallocated context buffer."""
        x = self._x1
        for k, sl in self._blocks:
            row = obs.get(k)
            if not isinstance(row, np.ndarray) or row.shape != (1, sl.stop - sl.start):
                raise ValueError(f"obs[{k!r}] is {type(row).__name__} of shape {np.shape(row)}, "
                                 f"expected an array of shape (1, {sl.stop - sl.start})")
            x[sl] = row[0]
        campaign = obs.get("campaign")
        if not isinstance(campaign, np.ndarray) or campaign.ndim != 2:
            raise ValueError(f"obs['campaign'] must be a (1, C) array, got shape {np.shape(campaign)}")
        slot = self.index.row_id(campaign[0])
        if (slot + 1) * self.n_actions > self.ridge.A.shape[0]:  # a new campaign (the last row): _grow
            self._grow()
        return slot, x

    def _one(self, obs: Obs) -> bool:
        return (self._x1 is not None and type(obs) is dict
                and getattr(obs.get("ctr_estimate"), "shape", (None,))[:1] == (1,))

    # ------------------------------------------------------------------ decisions
    def scores(self, obs: Obs) -> np.ndarray:
        """(N, K) upper confidence bounds ``θ_kᵀx + alpha · sqrt(xᵀA_k⁻¹x)``."""
        if self._one(obs):
            slot, x = self._prepare_one(obs)
            return self._scores_one(slot, x)[None]
        mean, width = self.mean_width(obs)
        return mean + self.alpha * width

    def mean_width(self, obs: Obs) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) ridge predictions ``θ_kᵀx`` and widths ``sqrt(xᵀA_k⁻¹x)`` (batched path)."""
        K = self.n_actions
        slots, x = self._prepare(obs)
        rd, d = self.ridge, x.shape[1]
        mean, width = np.empty((x.shape[0], K)), np.empty((x.shape[0], K))
        for s in np.unique(slots):  # one iteration per campaign in the batch
            rows = np.flatnonzero(slots == s) if len(self.index) > 1 else slice(None)
            xs = x[rows]
            g = slice(int(s) * K, int(s) * K + K)
            v = (xs @ rd.A_inv[g].transpose(1, 0, 2).reshape(d, K * d)).reshape(-1, K, d)  # one GEMM
            width[rows] = np.sqrt(np.einsum("nkd,nd->nk", v, xs))
            mean[rows] = xs @ rd.theta[g].T
        return mean, width

    def _mean_width_one(self, slot: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = slice(slot * self.n_actions, (slot + 1) * self.n_actions)
        v = self.ridge.A_inv[g] @ x  # (K, d)
        return self.ridge.theta[g] @ x, np.sqrt(v @ x)

    def _scores_one(self, slot: int, x: np.ndarray) -> np.ndarray:
        mean, width = self._mean_width_one(slot, x)
        return mean + self.alpha * width

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        return argmax_probabilities(self.scores(obs))

    def select_one(self, obs: Obs, info: dict[str, Any] | None = None) -> int:
        if not self._one(obs):
            return Policy.select_one(self, obs, info)
        s = self._scores_one(*self._prepare_one(obs))
        scores = s.tolist()
        best = max(scores)
        if scores.count(best) == 1:  # no tie (NaN scores take the general path below)
            return scores.index(best)
        return int(draw_actions(argmax_probabilities(s[None]), self.uniforms(1))[0])

    def select(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """The best arm per request (a draw among tied ones, as ``probabilities`` says)."""
        if self._one(obs):
            return np.array([LinUCB.select_one(self, obs, info)])
        p = self.probabilities(obs)
        tied = (p.max(axis=1) < 1.0).reshape(self.n_groups, -1).any(axis=1)  # per group
        if not tied.any():  # no ties: deterministic, no draw needed
            return p.argmax(axis=1)
        u = self.uniforms(p.shape[0], draw=tied)  # only groups with ties draw (NaN elsewhere)
        return np.where(np.isnan(u[:, 0]), p.argmax(axis=1), draw_actions(p, u))

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        if self._one(obs):
            LinUCB.update_one(self, obs, *check_one_feedback(actions, rewards, self.n_actions))
            return
        self._update_batch(obs, actions, rewards)

    def update_one(self, obs: Obs, action: int, reward: float) -> None:
        if not (type(action) is int and 0 <= action < self.n_actions and type(reward) in SCALAR_REWARDS
                and math.isfinite(reward) and self._one(obs)):  # else: check it all
            if not self._one(obs):
                self._update_batch(obs, *one_feedback(action, reward))
                return
            action, reward = check_one_feedback(*one_feedback(action, reward), self.n_actions)
        slot, x = self._prepare_one(obs)
        self.ridge.update_one(slot * self.n_actions + action, x, float(reward))

    def _update_batch(self, obs: Obs, actions: Any, rewards: Any) -> None:
        slots, x = self._prepare(obs)
        a, r = check_feedback(actions, rewards, x.shape[0], self.n_actions)
        self.ridge.update(slots * self.n_actions + a, x, r)


class LinTSArms(LinUCB):
    """Disjoint linear Thompson sampling: LinUCB's per-campaign, per-arm ridge regressions with
    Gaussian posteriors ``θ_k ~ N(θ̂_k, v² A_k⁻¹)`` (OBP's and MABWiser's ``LinTS``).

    Arm k's sampled score for context x is ``N(θ̂_kᵀx, v² xᵀA_k⁻¹x)``, independent across arms, so
    the probability that it is the largest is a one-dimensional integral, computed by quadrature
    (``agents.quadrature.normal_argmax``: no random draws, absolute error below 1e-4, tested);
    ``select`` draws from exactly those probabilities. A pool-mode policy, like :class:`LinUCB`.

    Args:
        v: posterior scale, in (0, 100].
        reg: ridge regularisation (prior precision), in (0, 1e6].
        features: obs keys concatenated into the context (plus a bias, so every width is > 0).
        nodes: quadrature grid points per arm, in [8, 1024].
    """

    name = "lin_ts_arms"

    def __init__(self, v: float = 0.1, reg: float = 1.0, features: tuple[str, ...] = REQUEST_KEYS,
                 nodes: int = NODES):
        super().__init__(alpha=0.0, reg=reg, features=features)
        check_float("v", v, 0.0, 100.0, open_low=True)
        check_int("nodes", nodes, 8, 1024)
        self.v, self.nodes = float(v), nodes

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        if self._one(obs):
            mean, width = self._mean_width_one(*self._prepare_one(obs))
            return normal_argmax(mean[None], self.v * width[None], self.nodes)
        mean, width = self.mean_width(obs)
        return normal_argmax(mean, self.v * width, self.nodes)

    def select(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N,) actions drawn from ``probabilities`` with the policy's generator(s)."""
        if self._one(obs):
            return np.array([draw_one(self.probabilities(obs)[0].tolist(), self.rng.random())])
        return Policy.select(self, obs, info)


class _SharedLinear(Policy):
    """Base of the shared-model policies: a ridge regression over candidate features per user segment."""

    stackable = True
    _factors = False
    """Whether the ridge keeps the Cholesky factors of its inverses (``agents.ridge.Ridge``)."""

    def __init__(self, reg: float, segment_by: str):
        check_float("reg", reg, 0.0, 1e6, open_low=True)
        check_choice("segment_by", segment_by, SEGMENTS)
        self.reg, self.segment_by = float(reg), segment_by

    def reset(self, n_actions: int, seed=None, group_seeds=None) -> None:
        super().reset(n_actions, seed, group_seeds)
        self.ridge: Ridge | None = None  # one block per (group,) segment, sized on the first request
        self.n_updates = 0
        self._last_features: list | None = None
        """[obs, [(key, its array, a copy)], blocks, cols, ctr, dense features or None] of the last
        batch: ``update`` after ``select`` on the same, unchanged arrays reuses them."""

    def _sparse(self, obs: Obs) -> list:
        """The cache entry of a batch (see ``_last_features``): ridge blocks (N,), the candidates'
        features in their sparse form (``agents.features.candidate_columns``) and, once asked for,
        dense (:meth:`features`)."""
        n = check_obs(obs)
        last = self._last_features
        if last is not None and last[0] is obs and all(
                obs.get(k) is arr and arr.shape == copy.shape and np.array_equal(arr, copy) for k, arr, copy in last[1]):
            return last
        cols, ctr = candidate_columns(obs)
        if ctr.shape[1] != self.n_actions:
            raise ValueError(f"obs has {ctr.shape[1]} candidates, policy was reset for K == {self.n_actions}")
        if self.ridge is None:
            self.n_segments = n_segments(self.segment_by, obs["user"].shape[1])
            self.ridge = Ridge(self.n_groups * self.n_segments, DIM, self.reg, factors=self._factors)
        seg = user_segment(obs["user"], self.segment_by)
        blocks = self.groups.key(self.group_rows(n), seg, self.n_segments)
        arrays = [(k, obs[k], np.array(obs[k], copy=True)) for k in _FEATURE_KEYS]
        entry = [obs, arrays, blocks, cols, ctr, None]
        if all(isinstance(arr, np.ndarray) for _, arr, _ in arrays):
            self._last_features = entry
        return entry

    def features(self, obs: Obs) -> tuple[np.ndarray, np.ndarray]:
        """Ridge blocks (N,) — the user segment, ``group · n_segments + segment`` when stacked — and
        candidate features (N, K, DIM) of a batch."""
        entry = self._sparse(obs)
        if entry[5] is None:
            entry[5] = dense_features(entry[3], entry[4])
        return entry[2], entry[5]

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        _, _, blocks, cols, ctr, _ = self._sparse(obs)
        a, r = check_feedback(actions, rewards, ctr.shape[0], self.n_actions)
        rows = np.arange(a.shape[0])
        self.ridge.update(blocks, dense_features(cols[:, rows, a], ctr[rows, a]), r)
        self.n_updates += 1
        self._changed(blocks)

    def update_pairs(self, obs: Obs, rows: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from feedback on (request, candidate) pairs of a batch, one update: candidate
        ``actions[i]`` shown to request ``rows[i]`` earned ``rewards[i]`` (each (P,); ``agents.slate``)."""
        _, _, blocks, cols, ctr, _ = self._sparse(obs)
        self.ridge.update(blocks[rows], dense_features(cols[:, rows, actions], ctr[rows, actions]), rewards)
        self.n_updates += 1
        self._changed(blocks[rows])

    def _changed(self, blocks: np.ndarray) -> None:
        """Called after an update of the ridge ``blocks`` (N,)."""


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

    def reset(self, n_actions: int, seed=None, group_seeds=None) -> None:
        super().reset(n_actions, seed, group_seeds)
        self._tables: tuple[np.ndarray, np.ndarray] | None = None
        """(G·(DIM+1)², G·(DIM+1)) the ridge blocks' ``A⁻¹`` (symmetrised) and ``θ``, each padded with
        a zero row and column DIM (the empty part slots of ``candidate_columns``), flattened."""
        self._stale: np.ndarray | None = None  # blocks updated since the tables were (None: all)

    def _changed(self, blocks: np.ndarray) -> None:
        if self._stale is not None:
            self._stale = np.union1d(self._stale, blocks)

    def _padded(self) -> tuple[np.ndarray, np.ndarray]:
        G, D1 = self.ridge.groups, DIM + 1
        if self._tables is None:
            self._tables, self._stale = (np.zeros(G * D1 * D1), np.zeros(G * D1)), None
        if self._stale is None or self._stale.size:
            g = slice(None) if self._stale is None else self._stale
            M, th = self._tables[0].reshape(G, D1, D1), self._tables[1].reshape(G, D1)
            A_inv = self.ridge.A_inv[g]
            M[g, :DIM, :DIM] = 0.5 * (A_inv + A_inv.transpose(0, 2, 1))
            th[g, :DIM] = self.ridge.theta[g]
            self._stale = np.zeros(0, dtype=np.int64)
        return self._tables

    def scores(self, obs: Obs) -> np.ndarray:
        """(N, K) upper confidence bounds ``θ_sᵀz + alpha · sqrt(zᵀA_s⁻¹z)``, from the features' sparse
        form: ``z = e_0 + c·e_1 + Σ_p e_{u_p}`` makes the width a sum of ``A⁻¹`` entries over the pairs
        of the few columns in use, ``Σ_{i,j∈U} M_ij + 2c Σ_{i∈U} M_1i + c² M_11`` with U the bias and
        part columns (M symmetric, so each pair i < j once, doubled) and ``θᵀz`` one entry per column."""
        _, _, blocks, cols, ctr, _ = self._sparse(obs)
        M, th = self._padded()
        n, k = ctr.shape
        D1 = DIM + 1
        u = cols.reshape(cols.shape[0], n * k)  # (P, N·K)
        c = ctr.reshape(n * k)
        blk = np.repeat(blocks, k)
        t_row = blk * D1
        mean = th.take(t_row) + c * th.take(t_row + 1)
        row = t_row * D1  # offset of block's row 0 in M
        starts = [row] + [row + D1 * u[p] for p in range(u.shape[0])]  # rows i ∈ U: bias, then parts
        ends = [np.zeros_like(row)] + [u[p] for p in range(u.shape[0])]  # their columns
        diag = np.zeros(n * k)
        off = np.zeros(n * k)
        cross = np.zeros(n * k)
        ctr_row = row + D1
        for i, (ri, ci) in enumerate(zip(starts, ends)):
            diag += M.take(ri + ci)
            cross += M.take(ctr_row + ci)
            for cj in ends[i + 1:]:
                off += M.take(ri + cj)
            if i:
                mean += th.take(t_row + ci)
        width2 = diag + 2.0 * off + c * (2.0 * cross + c * M.take(ctr_row + 1))
        return (mean + self.alpha * np.sqrt(np.maximum(width2, 0.0))).reshape(n, k)

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        score = self.scores(obs)
        top = score == score.max(axis=1, keepdims=True)
        return top / top.sum(axis=1, keepdims=True)


class LinearTS(PosteriorDraws, _SharedLinear):
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
    _factors = True

    def __init__(self, v: float = 0.1, reg: float = 1.0, segment_by: str = "tag", samples: int = 64):
        super().__init__(reg, segment_by)
        check_float("v", v, 0.0, 100.0, open_low=True)
        check_int("samples", samples, 1, 4096)
        self.v, self.samples = float(v), samples

    def reset(self, n_actions: int, seed=None, group_seeds=None) -> None:
        super().reset(n_actions, seed, group_seeds)
        self._reset_draws()

    def posterior_draws(self, s: int) -> np.ndarray:
        """(samples, DIM) draws of ridge block ``s``'s θ from its posterior (fixed until the next update)."""
        return self._draws(np.array([s]))[0]

    def _draws(self, blocks: np.ndarray) -> np.ndarray:
        """(len(blocks), samples, DIM): :meth:`posterior_draws` of several blocks, in one pass."""
        rd = self.ridge
        chol = rd.chol[blocks]  # the factors a recomputed inverse left, ...
        stale = ~rd.chol_ok[blocks]
        if stale.any():  # ... and a factorisation where the inverse was updated incrementally since
            cov = rd.A_inv[blocks[stale]]
            chol[stale] = np.linalg.cholesky(0.5 * (cov + cov.transpose(0, 2, 1)))
        xi = np.stack([
            np.random.Generator(np.random.PCG64([self._draw_keys[group], self.n_updates, segment])).standard_normal(
                (self.samples, DIM))
            for group, segment in (divmod(int(s), self.n_segments) for s in blocks)])
        return self.ridge.theta[blocks][:, None, :] + self.v * xi @ chol.transpose(0, 2, 1)

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """Per ridge block present, the shares of its posterior draws in which each candidate scores
        highest (the first of equal scores, as ``argmax``).

        The requests are taken block by block (each block's rows contiguous) and every candidate's
        ``samples`` scores are one contiguous row of a (N·K, samples) array, so the winners are
        found by comparing K rows per request. The scores come from the features' sparse form
        (:meth:`_scores`): the bias and CTR terms by one (m·K, 2) · (2, samples) product per block,
        then each active part column's sampled weight added in increasing column order — the same
        operations, in the same order, as the dense (m·K, DIM) · (DIM, samples) product, without
        its ≈ 80 zero terms per score. With numba (``agents.compiled``) the part terms are added and
        the winners counted by one compiled kernel, request by request, with the same results."""
        n, k = self.batch_size(obs), self.n_actions
        wins = np.empty((n, k), dtype=np.int32)
        order, score, counted = self._sorted_scores(obs, wins)
        out = np.empty((n, k))
        out[order] = wins / self.samples if counted else self._winners(score.reshape(n, k, self.samples))
        return out

    def _sorted_scores(self, obs: Obs, wins: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
        """The requests sorted by ridge block, ``order`` (N,), the candidates' scores under each
        posterior draw in that order, (N·K, samples), and whether ``wins`` was filled (:meth:`_scores`)."""
        _, _, blocks, cols, ctr, _ = self._sparse(obs)
        order = np.argsort(blocks, kind="stable")  # requests by block, each block's rows contiguous
        present, starts, sizes = np.unique(blocks[order], return_index=True, return_counts=True)
        draws = self._draws(present)
        kern = compiled.kernels() if wins is not None else None
        if (kern is not None and kern.lints_counts is not None and self.samples >= 2 and sizes.size
                and sizes.min() * self.n_actions >= 2 and np.isfinite(draws).all()):  # (fma-shaped BLAS products)
            weights = np.ascontiguousarray(draws.transpose(0, 2, 1))  # (blocks, DIM, samples)
            block_rows = np.repeat(np.arange(sizes.shape[0]), sizes)
            if kern.lints_counts(weights, cols, ctr, order, block_rows, MAX_PHRASES, DIM, wins):
                return order, None, True
        return (order,) + self._scores(draws, cols[:, order], ctr[order], starts, sizes, wins)

    def sampled_scores(self, obs: Obs) -> np.ndarray:
        """(N, K, samples) every candidate's score under each of its block's posterior draws (the
        draws ``probabilities`` counts winners of)."""
        order, score, _ = self._sorted_scores(obs)
        out = np.empty((order.shape[0], self.n_actions, self.samples))
        out[order] = score.reshape(order.shape[0], self.n_actions, self.samples)
        return out

    @staticmethod
    def _scores(draws: np.ndarray, cols: np.ndarray, ctr: np.ndarray, starts: np.ndarray,
                sizes: np.ndarray, wins: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
        """(N·K, samples) scores ``θᵀz`` of requests sorted by block (block b: rows ``starts[b]`` …,
        ``sizes[b]`` of them, posterior draws ``draws[b]`` (samples, DIM)), from the sparse features
        ``cols`` (P, N, K) and ``ctr`` (N, K) (``agents.features.candidate_columns``); and whether
        ``wins`` (N, K) int32, if given, now holds the number of draws each candidate wins (the
        compiled kernel, ``agents.compiled``, counts them where numba is present and no score is NaN)."""
        n, k = ctr.shape
        nk, samples = n * k, draws.shape[1]
        score = np.empty((nk, samples))
        if not np.isfinite(draws).all():  # the dense product's rules (0 · inf = NaN) for non-finite draws
            z = dense_features(cols, ctr).reshape(nk, DIM)
            for b, (s0, m) in enumerate(zip(starts.tolist(), sizes.tolist())):
                np.matmul(z[s0 * k:(s0 + m) * k], draws[b].T, out=score[s0 * k:(s0 + m) * k])
            return score, False
        z2 = np.empty((nk, 2))  # the bias and CTR columns, ...
        z2[:, 0] = 1.0
        z2[:, 1] = ctr.ravel()
        for b, (s0, m) in enumerate(zip(starts.tolist(), sizes.tolist())):  # ... one product per block
            np.matmul(z2[s0 * k:(s0 + m) * k], draws[b, :, :2].T, out=score[s0 * k:(s0 + m) * k])
        # then the part columns, in increasing order (a dense product's order): the phrase slots
        # sorted by a network of compare-exchanges; the attribute slots' columns come after every
        # phrase column and increase slot by slot (agents.features); DIM (empty) is dropped
        c = cols.reshape(cols.shape[0], nk)
        for i, j in ((0, 1), (2, 3), (0, 2), (1, 3), (1, 2)) if MAX_PHRASES == 4 else ():
            lo = np.minimum(c[i], c[j])
            np.maximum(c[i], c[j], out=c[j])
            c[i] = lo
        if MAX_PHRASES != 4:
            c[:MAX_PHRASES] = np.sort(c[:MAX_PHRASES], axis=0)
        kern = compiled.kernels() if wins is not None else None
        if kern is not None:  # the same additions, in the same order, then the winners, request by request
            weights = np.ascontiguousarray(draws.transpose(0, 2, 1))  # (blocks, DIM, samples)
            block_rows = np.repeat(np.arange(sizes.shape[0]), sizes)
            return score, bool(kern.sparse_scores_wins(score, c, weights, block_rows, k, DIM, wins))
        active = (c != DIM).T  # (N·K, P)
        offset = np.repeat(np.arange(0, draws.shape[0] * DIM, DIM), sizes * k)  # block b's weights: rows b·DIM …
        indices = (c.T + offset[:, None])[active]
        indptr = np.zeros(nk + 1, dtype=indices.dtype)
        np.cumsum(np.add.reduce(active, axis=1, dtype=indptr.dtype), out=indptr[1:])
        weights = np.ascontiguousarray(draws.transpose(0, 2, 1)).reshape(-1, samples)  # (blocks·DIM, samples)
        _csr_matvecs(nk, weights.shape[0], samples, indptr, indices, np.ones(indices.size), weights.ravel(),
                     score.ravel())  # score += parts' 0/1 matrix · weights, row by row, entry by entry
        return score, False

    def _winners(self, score: np.ndarray) -> np.ndarray:
        """(N, K) shares of the draws in which each candidate has the largest of ``score`` (N, K, samples)."""
        n, k, samples = score.shape
        best = score[:, 0].copy()
        for j in range(1, k):
            np.maximum(best, score[:, j], out=best)
        if np.isnan(best).any():  # NaN scores: argmax's rule (the first NaN wins)
            return argmax_frequencies(score.transpose(0, 2, 1))
        win = score == best[:, None]
        counts = _count_true(win)  # (N, K)
        if counts.sum() != samples * n:  # ties: only the first of the equal scores wins
            taken = np.zeros((n, samples), dtype=bool)
            for j in range(k):
                win[:, j] &= ~taken
                taken |= win[:, j]
            counts = _count_true(win)
        return counts / samples


_BYTE_SUM = np.uint64(0x0101010101010101)
"""Times a 64-bit word of eight byte counts (each < 256 in total), its top byte is their sum."""


def _count_true(win: np.ndarray) -> np.ndarray:
    """(N, K) number of True along the last axis of ``win`` (N, K, S) bool, C-contiguous. With S a
    multiple of 8 (and below 256) each row's bools are read as S/8 64-bit words of 0/1 bytes: their sum
    holds eight byte counts (no carries), whose total the multiplication by 0x0101…01 collects in
    the top byte; exact integers, as ``np.add.reduce`` gives, in a pass over S/8 words instead of S bools."""
    n, k, s = win.shape
    if s % 8 or s >= 256 or not win.flags.c_contiguous:
        return np.add.reduce(win, axis=2, dtype=np.int32)  # twice as fast as count_nonzero here
    words = np.add.reduce(win.view(np.uint64), axis=2)  # (N, K) words of eight byte counts
    return ((words * _BYTE_SUM) >> np.uint64(56)).astype(np.int32)
