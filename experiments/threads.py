"""One BLAS thread, for every BLAS a run may use — including one a policy loads on first use.

``threadpoolctl.threadpool_limits`` limits only the libraries loaded when it is entered. SciPy
ships its own OpenBLAS, which ``scipy.linalg`` loads; the ridge policies import it on their first
refit (``agents.ridge``: importing ``agents`` stays light), so inside a limit entered before that
import SciPy's LAPACK would start a thread per core. Measured on the 2-core machine: linear TS on
batches of 1,024 then kept a second thread busy (CPU time twice the wall-clock time). The limits
here load it first.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def one_blas_thread(user_api: str | None = "blas") -> threadpool_limits:
    """``threadpool_limits(1, user_api)`` entered after SciPy's BLAS is loaded (a context manager);
    ``user_api=None`` limits OpenMP too."""
    import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, so the limit reaches it)

    return threadpool_limits(limits=1, user_api=user_api)
