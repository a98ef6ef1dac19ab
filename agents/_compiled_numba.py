"""numba kernels of :mod:`agents.compiled` (imported only when numba is present; see there)."""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
"""No fast-math: the operations of the NumPy twins, in their order, rounded as theirs."""


@jit
def sparse_scores_wins(score, cols, weights, block_rows, k, dim, counts):
    # score (N·K, S): the bias and CTR terms, the part terms added in place; cols (P, N·K): the
    # part columns, increasing per candidate (dim: none); weights (blocks, DIM, S); block_rows
    # (N,): each request's block; counts (N, K) int32, written. Returns False if a score is
    # NaN (every score is still computed; the counts are then not).
    p_slots, nk = cols.shape
    samples = score.shape[1]
    nan = False
    best = np.empty(samples)
    arg = np.empty(samples, np.int32)
    for i in range(nk // k):
        b = block_rows[i]
        base = i * k
        for r in range(base, base + k):
            for p in range(p_slots):
                c = cols[p, r]
                if c != dim:
                    for s in range(samples):
                        score[r, s] += weights[b, c, s]
        if nan:
            continue
        for s in range(samples):
            v = score[base, s]
            best[s] = v
            arg[s] = 0
            nan |= v != v
        for j in range(1, k):  # the first of equal scores wins, as argmax
            for s in range(samples):
                v = score[base + j, s]
                gt = v > best[s]
                best[s] = v if gt else best[s]
                arg[s] = j if gt else arg[s]
                nan |= v != v
        for j in range(k):
            counts[i, j] = 0
        for s in range(samples):
            counts[i, arg[s]] += 1
    return not nan


@intrinsic
def fma(typingctx, x, y, z):
    """x · y + z rounded once (LLVM's llvm.fma.f64)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(d, [d, d, d]), "llvm.fma.f64")
        return builder.call(fn, args)

    return sig, codegen


@jit
def lints_counts(weights, cols, ctr, order, block_rows, phrases, dim, counts):
    # weights (blocks, DIM, S): each block's draws by column; cols (P, N, K) the part columns
    # (candidate_columns, unsorted), ctr (N, K), order (N,) the requests sorted by block and
    # block_rows (N,) the block of each sorted position; counts (N, K) int32, written in sorted
    # order. Each score is fma(ctr, w1, w0) (the BLAS product of the bias and CTR terms here)
    # plus the part columns' weights in increasing column order, made in a buffer of S and compared
    # at once with the best so far. Returns False if a score is NaN.
    p_slots, n, k = cols.shape
    samples = weights.shape[2]
    score = np.empty(samples)
    best = np.empty(samples)
    arg = np.empty(samples, np.int32)
    c = np.empty(p_slots, np.int64)
    for i in range(n):
        q = order[i]
        w = weights[block_rows[i]]
        nan = False
        for j in range(k):
            x = ctr[q, j]
            for s in range(samples):
                score[s] = fma(x, w[1, s], w[0, s])
            for p in range(p_slots):
                c[p] = cols[p, q, j]
            for p in range(1, phrases):  # the phrase slots sorted (insertion); attribute slots increase
                v = c[p]
                t = p
                while t > 0 and c[t - 1] > v:
                    c[t] = c[t - 1]
                    t -= 1
                c[t] = v
            for p in range(p_slots):
                col = c[p]
                if col != dim:
                    for s in range(samples):
                        score[s] += w[col, s]
            if j == 0:
                for s in range(samples):
                    v = score[s]
                    best[s] = v
                    arg[s] = 0
                    nan |= v != v
            else:  # the first of equal scores wins, as argmax
                for s in range(samples):
                    v = score[s]
                    gt = v > best[s]
                    best[s] = v if gt else best[s]
                    arg[s] = j if gt else arg[s]
                    nan |= v != v
        if nan:
            return False
        for j in range(k):
            counts[i, j] = 0
        for s in range(samples):
            counts[i, arg[s]] += 1
    return True


def blas_is_fma() -> bool:
    """Whether this BLAS computes the (m, 2) · (2, S) product of the bias and CTR terms as one fused
    multiply-add, fma(ctr, w1, w0), for a range of shapes with m, S >= 2 (NumPy hands a single row
    or column to another routine: lints_counts is used only for m, S >= 2, and not at all if not)."""
    rng = np.random.default_rng(0)
    for m, samples in ((2, 2), (3, 2), (7, 17), (129, 64), (1000, 64), (333, 256), (64, 5), (40, 4096)):
        z2 = np.ones((m, 2))
        z2[:, 1] = rng.standard_normal(m)
        w = rng.standard_normal((samples, 2)) * rng.uniform(0.1, 10.0)
        got = np.matmul(z2, w.T)
        want = np.empty_like(got)
        _fma_outer(z2[:, 1].copy(), np.ascontiguousarray(w[:, 1]), np.ascontiguousarray(w[:, 0]), want)
        if not np.array_equal(got, want):
            return False
    return True


@jit
def _fma_outer(x, y, z, out):
    for i in range(x.shape[0]):
        for s in range(y.shape[0]):
            out[i, s] = fma(x[i], y[s], z[s])
