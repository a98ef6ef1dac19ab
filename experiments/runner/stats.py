"""Small statistics for regret curves: confidence intervals, log-log slopes, the Lai–Robbins bound."""

from __future__ import annotations

import numpy as np
from scipy import stats

EPS = 1e-12


def ci95_halfwidth(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Half-width of the two-sided 95 % Student-t interval of the mean (NaN for fewer than 2 values)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    if n < 2:
        return np.full(np.delete(values.shape, axis), np.nan) if values.ndim > 1 else np.float64(np.nan)
    sem = values.std(axis=axis, ddof=1) / np.sqrt(n)
    return stats.t.ppf(0.975, n - 1) * sem


def loglog_slope(x: np.ndarray, y: np.ndarray, last_fraction: float = 0.1) -> float:
    """Least-squares slope of log y against log x over the points with ``x >= last_fraction * max(x)``.

    A regret curve growing like ``T^a`` has slope ``a``: 1 is linear regret, ``log T`` growth gives
    slopes that fall towards 0. NaN when fewer than 2 usable points (y must be > 0).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = (x >= last_fraction * x.max()) & (y > 0) & np.isfinite(y)
    if keep.sum() < 2 or np.ptp(x[keep]) == 0:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def bernoulli_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(Bernoulli(p) ‖ Bernoulli(q)), elementwise (probabilities clipped to [1e-12, 1 − 1e-12])."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    q = np.clip(np.asarray(q, dtype=np.float64), EPS, 1 - EPS)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def lai_robbins_constant(means: np.ndarray) -> float:
    """``Σ_{k: μ_k < μ*} (μ* − μ_k) / KL(μ_k ‖ μ*)`` for Bernoulli arms with means ``means`` (K,).

    Lai & Robbins (1985): any consistent policy has ``liminf E[R_T] / log T >=`` this constant, so
    ``constant · log T`` is the asymptotic lower bound on fixed-arm regret after T impressions.
    """
    means = np.asarray(means, dtype=np.float64)
    best = means.max()
    sub = means[means < best]
    if sub.size == 0:
        return 0.0
    return float(np.sum((best - sub) / bernoulli_kl(sub, best)))
