"""Small statistics for regret curves: confidence intervals, log-log slopes, the Lai–Robbins bound."""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def ci95_halfwidth(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Half-width of the two-sided 95 % Student-t interval of the mean (NaN for fewer than 2 values)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    if n < 2:
        return np.full(np.delete(values.shape, axis), np.nan) if values.ndim > 1 else np.float64(np.nan)
    sem = values.std(axis=axis, ddof=1) / np.sqrt(n)
    from scipy import stats  # imported where used: runner workers load this module for the bound only

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


def bootstrap_mean_ci(values: np.ndarray, axis: int = -1, n_resamples: int = 2000,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap 95 % interval of the mean over ``axis`` (scipy.stats.bootstrap).

    A percentile interval of a mean lies within the values' range, so a band of a non-negative
    metric (regret) never goes below 0 and a band of a CTR stays in [0, 1]. For paired differences
    pass the per-seed differences: resampling seeds keeps each seed's pair together. Fewer than 2
    values, or all equal: the interval is the mean itself (NaN for no values)."""
    values = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    mean = values.mean(axis=-1) if values.shape[-1] else np.full(values.shape[:-1], np.nan)
    low, high = np.array(mean, dtype=np.float64, copy=True), np.array(mean, dtype=np.float64, copy=True)
    if values.shape[-1] < 2:
        return low, high
    flat = values.reshape(-1, values.shape[-1])
    varies = np.ptp(flat, axis=-1) > 0
    if varies.any():
        from scipy import stats

        res = stats.bootstrap((flat[varies],), np.mean, axis=-1, vectorized=True, method="percentile",
                              n_resamples=n_resamples, confidence_level=0.95, rng=np.random.default_rng(seed))
        lo, hi = low.reshape(-1), high.reshape(-1)
        lo[varies], hi[varies] = res.confidence_interval.low, res.confidence_interval.high
    return low, high
