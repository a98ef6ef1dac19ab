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
* ``posterior_select(S, U, pos)``, ``posterior_update(S, k, reward, n, s)``, ``posterior_lead(S, k)``:
  Beta-Bernoulli Thompson sampling one request at a time (``BetaThompson(sampling="posterior")``,
  ``agents.thompson``): the threshold tests, the inverse CDFs of the arms they leave (SciPy's
  ``cython_special.betaincinv``, the ufunc's function: the same numbers) and the update's
  incomplete-beta recurrence, on one packed row array ``S`` (layout below) — the twin is
  ``agents.thompson._PosteriorRow``'s Python code, on lists. One request is one kernel call for
  the decision and one for the update (≈ 0.2 µs each to dispatch with a single array).

Packed posterior row ``S`` (K + 2, 2·M + 4), M = ``POSTERIOR_M`` thresholds at most, m in use:
row k < K holds arm k's CDFs at the thresholds (``PR_F`` + i), the recurrence terms (``PR_H`` + i),
``PR_A``, ``PR_B`` (Beta parameters), ``PR_MU`` (mean), ``PR_STEPS`` (recurrence steps since the
last exact CDFs); row K the thresholds θ_i (``PR_F`` + i), 1 − θ_i (``PR_H`` + i), ``PR_M`` (m),
``PR_LEAD`` (the leading arm), ``PR_ALPHA0``, ``PR_BETA0`` (the priors); row K + 1 the constants
(``PR_MARGIN``, ``PR_EXACT``, ``PR_NARROW``, ``PR_LOW``, ``PR_HIGH``).
"""

from __future__ import annotations

from adsim.compiled import enabled, numba_usable  # noqa: F401  (enabled: part of this module's interface)
from agents.packed_row import (  # noqa: F401  (the layout, re-exported: c.PR_* in agents.thompson)
    POSTERIOR_M, PR_A, PR_ALPHA0, PR_B, PR_BETA0, PR_EXACT, PR_F, PR_H, PR_HIGH, PR_LEAD, PR_LOW, PR_M, PR_MARGIN,
    PR_MU, PR_NARROW, PR_STEPS, PR_WIDTH,
)

_KERNELS: object | None = None


def kernels():
    """The compiled kernels (a namespace), or None without numba or with ``ADSIM_NUMBA=0``."""
    global _KERNELS
    if not numba_usable():
        return None
    if _KERNELS is None:
        _KERNELS = _compile()
    return _KERNELS


def _compile():
    from types import SimpleNamespace

    from agents import _compiled_numba as nb

    return SimpleNamespace(sparse_scores_wins=nb.sparse_scores_wins,
                           lints_counts=nb.lints_counts if nb.blas_is_fma() else None,
                           posterior_select=nb.posterior_select, posterior_update=nb.posterior_update,
                           posterior_lead=nb.posterior_lead)
