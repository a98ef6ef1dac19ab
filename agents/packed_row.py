"""Column layout of Beta-Bernoulli Thompson sampling's packed posterior row ``S`` (see
:mod:`agents.compiled`), shared by the Python policy (``agents.thompson``) and the compiled
kernels (``agents._compiled_numba``, which reads these constants when it compiles: touch that
file when they change, so numba's disk cache is rebuilt). A module of constants only, so both
can import it without importing each other."""

POSTERIOR_M = 6
"""The most thresholds the row holds."""
PR_F, PR_H = 0, POSTERIOR_M
PR_A = PR_M = 2 * POSTERIOR_M
PR_B = PR_LEAD = PR_A + 1
PR_MU = PR_ALPHA0 = PR_A + 2
PR_STEPS = PR_BETA0 = PR_A + 3
PR_MARGIN, PR_EXACT, PR_NARROW, PR_LOW, PR_HIGH = range(5)
PR_WIDTH = PR_A + 4
"""Columns of the packed posterior row (layout in :mod:`agents.compiled`)."""
