"""Optional compiled hot paths (numba), each with a pure NumPy/Python twin that gives the same numbers.

numba is not a dependency: :func:`kernels` compiles the kernels on first use when numba imports
(``pip install numba``) and returns None otherwise, or when the environment variable
``ADSIM_NUMBA=0`` turns them off (the tests run both paths). A kernel does the floating-point
operations of its twin in the same order, without fast-math (no reassociation, no fused
multiply-adds), so the results are bit-identical (tested against the twins).

Kernels:

* ``sparse_scores_wins(score, cols, weights, block_rows, k, dim, counts)``: linear TS's scores and
  winners (``agents.linear.LinearTS``). Adds each candidate's active part columns' sampled weights
  to its bias-and-CTR scores, in increasing column order (the CSR kernel's order), then counts per
  request and draw the first candidate with the largest score — one request at a time, so its
  K · samples scores stay in cache instead of three passes over the batch's (N·K, samples) array.
"""

from __future__ import annotations

import os

_KERNELS: object | None = None
_TRIED = False


def enabled() -> bool:
    """Whether compiled kernels may be used (``ADSIM_NUMBA`` is not "0")."""
    return os.environ.get("ADSIM_NUMBA", "1") != "0"


def kernels():
    """The compiled kernels (a namespace), or None without numba or with ``ADSIM_NUMBA=0``."""
    global _KERNELS, _TRIED
    if not enabled():
        return None
    if not _TRIED:
        _TRIED = True
        try:
            import numba  # noqa: F401
        except ImportError:
            return None
        _KERNELS = _compile()
    return _KERNELS


def _compile():
    from types import SimpleNamespace

    import numba
    import numpy as np

    jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")

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

    return SimpleNamespace(sparse_scores_wins=sparse_scores_wins)
