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
* ``lints_counts(weights, cols, ctr, order, block_rows, phrases, dim, counts)``: the same, from the
  unsorted sparse features, the bias and CTR terms included, without the (N·K, samples) array: each
  request's K · samples scores are made and compared in a small buffer. The bias-and-CTR term is
  ``fma(ctr, w1, w0)``, which is what this OpenBLAS's (m, 2) · (2, samples) product computes: the
  kernel is offered only where a probe of that product over several shapes finds it so
  (``blas_is_fma``), otherwise ``sparse_scores_wins`` takes the BLAS product's scores.
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

    from agents import _compiled_numba as nb

    return SimpleNamespace(sparse_scores_wins=nb.sparse_scores_wins,
                           lints_counts=nb.lints_counts if nb.blas_is_fma() else None)
