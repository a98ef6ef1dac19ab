"""Ridge regressions with their inverse Gram matrices kept up to date.

``A_g = reg·I + Σ x xᵀ`` and ``b_g = Σ r x`` for G independent groups (e.g. one per arm). A
single observation applies Sherman–Morrison, ``A⁻¹ ← A⁻¹ − (A⁻¹x)(A⁻¹x)ᵀ / (1 + xᵀA⁻¹x)``; a
batch of c observations of one group applies its rank-c generalisation (Woodbury),
``A⁻¹ ← A⁻¹ − V (I_c + XV)⁻¹ Vᵀ`` with ``V = A⁻¹Xᵀ``, which solves c×c systems (c <= ``CHUNK``
at a time) instead of inverting the d×d matrix — while c < d · ``REFRESH``. From there on a
d×d inverse is the cheaper (Woodbury costs about 5 d² flops per row, an inverse about d³): the
group's ``A`` takes the batch's Gram matrix ``XᵀX`` and ``A⁻¹`` is recomputed from it by
Cholesky factorisation (exactly symmetric). All three equal the sequential rank-one updates up to
rounding (tested); the recomputed inverse also drops the rounding the updates had accumulated.

With ``factors=True`` (linear Thompson sampling, which draws ``θ ~ N(θ̂, v² A⁻¹)``) a recomputed
inverse also leaves the lower Cholesky factor ``L`` of ``A⁻¹`` (``A⁻¹ = L Lᵀ``) in ``chol``, so
the draws need no factorisation of their own: with ``J`` the order-reversing permutation and
``R Rᵀ = J A J`` (``potrf``), ``A⁻¹ = J R⁻ᵀ R⁻¹ J`` (``trtri``, ``lauum``: the same work as
``potri``) and ``L = J R⁻ᵀ J`` is lower triangular. A group updated incrementally since (or never
refreshed) has ``chol_ok`` False.
"""

from __future__ import annotations

import numpy as np

CHUNK = 64
"""Largest rank of one Woodbury step."""
REFRESH = 0.5
"""A group with at least ``REFRESH · d`` observations in a batch has its inverse recomputed."""


class Ridge:
    """G ridge regressions of dimension d (arrays with a leading group axis).

    Attributes:
        A: (G, d, d) Gram matrices (kept for checks and the posterior's covariance).
        A_inv: (G, d, d) their inverses, updated incrementally.
        b: (G, d) reward-weighted feature sums.
        theta: (G, d) ridge estimates ``A⁻¹ b``.
        chol: (G, d, d) with ``factors``: the lower Cholesky factors of ``A_inv`` where ``chol_ok``.
        chol_ok: (G,) bool, whether ``chol[g]`` is ``A_inv[g]``'s factor (always False without ``factors``).
    """

    def __init__(self, groups: int, d: int, reg: float, factors: bool = False):
        self.d, self.reg, self.factors = d, float(reg), bool(factors)
        self.A = np.zeros((0, d, d))
        self.A_inv = np.zeros((0, d, d))
        self.b = np.zeros((0, d))
        self.theta = np.zeros((0, d))
        self.chol = np.zeros((0, d, d) if self.factors else (0, 0, 0))
        self.chol_ok = np.zeros(0, dtype=bool)
        self.grow(groups)

    @property
    def groups(self) -> int:
        return self.A.shape[0]

    def grow(self, groups: int) -> None:
        """Add fresh groups (prior only) until there are ``groups``."""
        extra = groups - self.groups
        if extra <= 0:
            return
        eye = np.broadcast_to(np.eye(self.d), (extra, self.d, self.d))
        self.A = np.concatenate([self.A, self.reg * eye])
        self.A_inv = np.concatenate([self.A_inv, eye / self.reg])
        self.b = np.concatenate([self.b, np.zeros((extra, self.d))])
        self.theta = np.concatenate([self.theta, np.zeros((extra, self.d))])
        self.chol = np.concatenate([self.chol, np.zeros((extra,) + self.chol.shape[1:])])
        self.chol_ok = np.concatenate([self.chol_ok, np.zeros(extra, dtype=bool)])

    def update_one(self, g: int, x: np.ndarray, r: float) -> None:
        """Sherman–Morrison update of group ``g`` with one observation ``x`` (d,), reward ``r``."""
        A_inv, b = self.A_inv[g], self.b[g]
        v = A_inv @ x
        A_inv -= v[:, None] * (v / (1.0 + x @ v))
        self.A[g] += x[:, None] * x
        b += r * x
        self.theta[g] = A_inv @ b
        self.chol_ok[g] = False

    def update(self, groups: np.ndarray, X: np.ndarray, r: np.ndarray) -> None:
        """Add observations ``X`` (m, d) with rewards ``r`` (m,) to ``groups`` (m,)."""
        if X.shape[0] == 1:
            self.update_one(int(groups[0]), X[0], float(r[0]))
            return
        order = np.argsort(groups, kind="stable")
        g_sorted = groups[order]
        new_group = np.empty(g_sorted.shape[0], dtype=bool)
        new_group[0] = True
        np.not_equal(g_sorted[1:], g_sorted[:-1], out=new_group[1:])
        starts = np.flatnonzero(new_group)
        ends = np.append(starts[1:], g_sorted.shape[0])
        Xs, rs = X[order], r[order]  # each group's rows contiguous: slices, not a gather per group
        refresh = []
        for s, e in zip(starts.tolist(), ends.tolist()):  # one iteration per group touched (arms), not per row
            g = int(g_sorted[s])
            if e - s == 1:  # Sherman–Morrison, as for a batch of one
                self.update_one(g, Xs[s], float(rs[s]))
            elif e - s < REFRESH * self.d:
                self._update_group(g, Xs[s:e], rs[s:e])
            else:
                Xg = Xs[s:e]
                self.A[g] += Xg.T @ Xg
                self.b[g] += Xg.T @ rs[s:e]
                refresh.append(g)
        if refresh:
            self._refresh(refresh)

    def _update_group(self, g: int, X: np.ndarray, r: np.ndarray) -> None:
        A_inv = self.A_inv[g]
        for c0 in range(0, X.shape[0], CHUNK):
            Xc = X[c0:c0 + CHUNK]
            V = A_inv @ Xc.T  # (d, c)
            S = np.eye(Xc.shape[0]) + Xc @ V
            A_inv -= V @ np.linalg.solve(S, V.T)
        self.A[g] += X.T @ X
        self.b[g] += X.T @ r
        self.theta[g] = A_inv @ self.b[g]
        self.chol_ok[g] = False

    def _refresh(self, groups: list[int]) -> None:
        """Recompute ``A⁻¹`` (LAPACK ``potrf``/``potri``: Cholesky, then the inverse of the factor)
        and ``θ`` of ``groups`` from their ``A`` and ``b`` (with ``factors``, by the reversed
        factorisation of the module docstring, which also gives ``chol``)."""
        from scipy.linalg import lapack  # imported on first use: importing agents stays light

        tri = np.empty((len(groups), self.d, self.d))
        ok = np.ones(len(groups), dtype=bool)
        if self.factors:
            inv_factor = np.empty((len(groups), self.d, self.d))
        for i, g in enumerate(groups):
            if self.factors:  # R Rᵀ = J A J, R⁻¹, then R⁻ᵀR⁻¹ = (J A J)⁻¹: lower triangles, zeros above
                c, info = lapack.dpotrf(self.A[g][::-1, ::-1], lower=1, clean=1)
                if info == 0:
                    inv_factor[i], info = lapack.dtrtri(c, lower=1)
                if info == 0:
                    tri[i], info = lapack.dlauum(inv_factor[i], lower=1)
            else:
                c, info = lapack.dpotrf(self.A[g], lower=0, clean=1)  # zeros below the diagonal
                if info == 0:
                    tri[i], info = lapack.dpotri(c, lower=0)  # A⁻¹'s upper triangle, zeros below
            if info != 0:  # not positive definite in floating point (a tiny reg): LU instead
                tri[i] = np.triu(np.linalg.inv(self.A[g]))
                if self.factors:
                    tri[i] = tri[i][::-1, ::-1].copy()  # (J A⁻¹ J)'s lower triangle, as above
                ok[i] = False
        full = tri + tri.transpose(0, 2, 1)
        diag = np.arange(self.d)
        full[:, diag, diag] *= 0.5  # the diagonal counted twice (exact: a power of two)
        if self.factors:
            full = full[:, ::-1, ::-1]  # J (J A J)⁻¹ J
            self.chol[groups] = inv_factor.transpose(0, 2, 1)[:, ::-1, ::-1]  # L = J R⁻ᵀ J
        full = np.ascontiguousarray(full)
        self.A_inv[groups] = full
        self.chol_ok[groups] = ok & self.factors
        self.theta[groups] = np.matmul(full, self.b[groups][:, :, None])[:, :, 0]
