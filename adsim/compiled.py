"""Optional compiled hot path of the envs (numba): a pool-mode request block in one pass.

numba is not a dependency (the ``fast`` extra): :func:`kernels` compiles the kernels on first use
when numba imports and returns None otherwise, or when the environment variable ``ADSIM_NUMBA=0``
turns them off (as for ``agents.compiled``; the tests run both paths). ``import adsim`` does not
import numba: a :class:`adsim.selection.SelectionCore` asks for the kernels when it is built.

The kernels (``adsim._compiled_numba``) replace the NumPy code of a pool-mode block —
``adsim.rng.uniforms``, ``RequestGenerator.requests`` and ``SelectionCore._block_truth_of``, about
three quarters of a vector step at N = 4,096 — with two loops over the requests, one before and one
after NumPy's ``exp`` (which stays NumPy's: its SIMD ``exp`` and numba's libm ``exp`` differ in
the last bit for some inputs). Every output is bit-identical to the NumPy path's: the kernels do
the same floating-point operations in the same order, without fast-math, and reproduce NumPy's
summation orders (its pairwise ``sum`` of a row, ``einsum``'s two-lane dot product). Those orders
depend on how NumPy was built, so :func:`kernels` first compares them with this NumPy's on random
rows of every length the kernels may meet (:func:`orders_match`) and offers the block kernels
only for the lengths where they agree (``tests/test_compiled_env.py`` compares whole episodes).

Kernels (see ``adsim._compiled_numba``):

* ``pool_requests``: uniforms, arrivals, ad slots, interests in context, item interest, the K
  affinities and click logits, the context features, and the arguments of the two σ's;
* ``pool_truth``: click probabilities, expected rewards, the optimal action and its expected
  reward of every request, step-major, from the exponentials.
"""

from __future__ import annotations

import os

import numpy as np

_KERNELS: object | None = None
_NUMBA: bool | None = None
"""Whether numba imports (None: not tried yet)."""
_ORDERS: dict[int, bool] = {}


def enabled() -> bool:
    """Whether compiled kernels may be used (``ADSIM_NUMBA`` is not "0")."""
    return os.environ.get("ADSIM_NUMBA", "1") != "0"


def numba_usable() -> bool:
    """Whether compiled kernels may be used and numba imports (tried once per process): the check
    of every optional numba path (``agents.compiled`` too)."""
    global _NUMBA
    if not enabled():
        return False
    if _NUMBA is None:
        try:
            import numba  # noqa: F401
        except ImportError:
            _NUMBA = False
        else:
            _NUMBA = True
    return _NUMBA


def kernels():
    """The compiled kernels (``adsim._compiled_numba``), or None without numba or with ``ADSIM_NUMBA=0``."""
    global _KERNELS
    if not numba_usable():
        return None
    if _KERNELS is None:
        from adsim import _compiled_numba

        _KERNELS = _compiled_numba
    return _KERNELS


def orders_match(d: int) -> bool:
    """Whether the kernels' row sum and dot product of length ``d`` are this NumPy's, bit for bit:
    ``x.sum(axis=-1, keepdims=True)`` of (N, T, d) rows and ``einsum("ntd,knd->knt", x, y, out=…)``
    as ``RequestGenerator.requests`` calls them, on random rows of magnitudes over a wide range
    (checked once per length; False without the kernels or for d above their pairwise block)."""
    kern = kernels()
    if kern is None or d > kern.MAX_PAIRWISE or d < 1:
        return False
    if d not in _ORDERS:
        rng = np.random.default_rng(d)
        ok = True
        for N, T, K in ((64, 1, 8), (17, 3, 3), (9, 2, 19)):
            x = rng.random((N, T, d)) * np.exp(rng.normal(0.0, 4.0, (N, T, d)))
            y = rng.normal(0.0, 1.0, (K, N, d)) * np.exp(rng.normal(0.0, 4.0, (K, N, d)))
            dots = np.empty((K, N, T))
            np.einsum("ntd,knd->knt", x, y, out=dots)
            rows = x.reshape(-1, d)  # request (n, t) and its K candidates' φ, (d, K)
            cols = np.ascontiguousarray(np.broadcast_to(y.transpose(1, 2, 0)[:, None], (N, T, d, K)).reshape(-1, d, K))
            sums, kdots = kern.orders(rows, cols, kern.lane_order(d))
            ok &= np.array_equal(kdots.reshape(N, T, K).transpose(2, 0, 1), dots, equal_nan=True)
            ok &= np.array_equal(sums.reshape(N, T), x.sum(axis=-1, keepdims=True)[..., 0], equal_nan=True)
        _ORDERS[d] = bool(ok)
    return _ORDERS[d]


__all__ = ["enabled", "kernels", "orders_match"]
