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


# ---------------------------------------------------------------------------------------------
# Beta-Bernoulli Thompson sampling one request at a time, on the packed row of agents.compiled

from numba.extending import get_cython_function_address  # noqa: E402
import llvmlite.binding as _llvm  # noqa: E402

from agents.packed_row import (  # noqa: E402
    PR_A, PR_ALPHA0, PR_B, PR_BETA0, PR_EXACT, PR_F, PR_H, PR_HIGH, PR_LEAD, PR_LOW, PR_M, PR_MARGIN, PR_MU,
    PR_NARROW, PR_STEPS,
)

_llvm.add_symbol("adsim_betaincinv", get_cython_function_address("scipy.special.cython_special",
                                                                   "__pyx_fuse_0betaincinv"))
_betaincinv = types.ExternalFunction("adsim_betaincinv", types.float64(types.float64, types.float64, types.float64))
"""SciPy's betaincinv for doubles (the function of the ``scipy.special.betaincinv`` ufunc), linked by
name so the kernels stay cacheable."""


@jit
def posterior_select(S, U, pos):
    # The arm with the largest posterior draw F_k⁻¹(U[pos + k]), or -1 if U has fewer than K
    # uniforms from pos. bisect_left's count of each arm's CDFs below u − margin, the highest of
    # them rules out the arms surely below that threshold (the rival set of _one_select's Python
    # code, which prunes in two steps), the inverse CDFs of the rest, the first of equal draws.
    K = S.shape[0] - 2
    if pos + K > U.shape[0]:
        return -1
    m = int(S[K, PR_M])
    margin = S[K + 1, PR_MARGIN]
    best = 0
    for k in range(K):
        v = U[pos + k] - margin
        j = 0
        while j < m and S[k, PR_F + j] < v:
            j += 1
        if j > best:
            best = j
    if best:
        n, first = 0, -1
        for k in range(K):
            if U[pos + k] >= S[k, PR_F + best - 1] - margin:
                n += 1
                if first < 0:
                    first = k
        if n == 1:
            return first
    arm, top = -1, 0.0
    for k in range(K):
        u = U[pos + k]
        if best == 0 or u >= S[k, PR_F + best - 1] - margin:
            x = _betaincinv(S[k, PR_A], S[k, PR_B], u)
            if arm < 0 or x > top:
                arm, top = k, x
    return arm


@jit
def posterior_update(S, k, reward, n, s):
    # Arm k's parameters from its count n and reward sum s, and its CDFs and terms by the
    # recurrence after a click or a non-click (BetaThompson._one_update's operations, in order);
    # 2 if its exact CDFs are due instead (the caller writes them, then calls posterior_lead), else
    # posterior_lead's answer.
    K = S.shape[0] - 2
    a0, b0 = S[k, PR_A], S[k, PR_B]
    a = S[K, PR_ALPHA0] + s
    b = S[K, PR_BETA0] + n - s
    S[k, PR_A] = a
    S[k, PR_B] = b
    S[k, PR_MU] = a / (a + b)
    steps = S[k, PR_STEPS] + 1.0
    if steps < S[K + 1, PR_EXACT] and (reward == 1.0 or reward == 0.0):
        if reward == 1.0:
            d, g, x = -1.0 / a0, (a0 + b0) / a0, PR_F
        else:
            d, g, x = 1.0 / b0, (a0 + b0) / b0, PR_H
        prev = -np.inf
        for i in range(int(S[K, PR_M])):
            t = S[k, PR_H + i]
            f = S[k, PR_F + i] + t * d
            prev = f if f > prev else prev
            S[k, PR_F + i] = prev
            S[k, PR_H + i] = t * S[K, x + i] * g
        S[k, PR_STEPS] = steps
        return posterior_lead(S, k)
    S[k, PR_STEPS] = 0.0
    return 2


@jit
def posterior_lead(S, k):
    # After arm k's update: k leads if its mean passed the leader's; 1 if the leader's CDFs say the
    # thresholds are to be re-chosen, else 0.
    K = S.shape[0] - 2
    lead = int(S[K, PR_LEAD])
    if k != lead:
        if S[k, PR_MU] <= S[lead, PR_MU]:
            return 0
        S[K, PR_LEAD] = k
    lo, hi = S[k, PR_F], S[k, PR_F + int(S[K, PR_M]) - 1]
    narrow = S[K + 1, PR_NARROW]
    if lo > S[K + 1, PR_LOW] or hi < S[K + 1, PR_HIGH] or (lo < narrow and hi > 1.0 - narrow):
        return 1
    return 0
