"""Thompson sampling's propensities by numerical integration instead of posterior draws.

When the K arms' posterior draws ``X_1 … X_K`` are independent with CDFs ``F_j``, the probability
that arm k's draw is the largest is the Stieltjes integral

    P_k = ∫ G_k dF_k,        G_k(x) = Π_{j≠k} F_j(x)  (the others all below x).

It is evaluated on a grid that resolves every arm: ``nodes`` points per arm at its mean
± 8 standard deviations (merged and sorted, so the grid follows each posterior's own scale however
different the arms are), with the trapezoidal Stieltjes rule ``Σ_i (F_k(x_{i+1}) − F_k(x_i)) ·
(G_k(x_i) + G_k(x_{i+1})) / 2``; the mass beyond the last node counts with ``G_k`` averaged over
[G_k(x_last), 1]. The K results are normalised to sum to 1. ``G_k`` comes from prefix and suffix
products (no division). Only the CDFs are needed: Gaussian (``scipy.special.ndtr``) for the linear
policies' scores, Beta (``scipy.special.betainc``) for Beta-Bernoulli Thompson sampling.

Error (``tests/test_quadrature.py`` checks these bounds against adaptive ``scipy.integrate.quad``
of the same integrals on random cases: arms of very different widths, near-ties, skewed Betas):
with the default ``nodes`` the largest absolute error of any propensity is below ``ERROR_BOUND``
(1e-4) for Gaussian and Beta posteriors alike.

The propensities are deterministic functions of the posteriors (no random stream), and ``select``
draws the action from exactly them.
"""

from __future__ import annotations

import numpy as np

NODES = 24
"""Grid points per arm."""
SPAN = 8.0
"""Half-width of an arm's grid in standard deviations."""
ERROR_BOUND = 1e-4
"""Largest absolute error of a propensity with ``NODES`` points per arm (tested)."""

_T: dict[int, np.ndarray] = {}


def _t(nodes: int) -> np.ndarray:
    if nodes not in _T:
        _T[nodes] = np.linspace(0.0, 1.0, nodes)
    return _T[nodes]


def stieltjes_argmax(F: np.ndarray) -> np.ndarray:
    """(N, K) P(arm k's draw is the largest) from the CDFs ``F`` (N, K, M) on each row's sorted grid."""
    n, k, m = F.shape
    ones = np.ones((n, 1, m))
    before = np.cumprod(np.concatenate([ones, F[:, :-1]], axis=1), axis=1)  # Π_{j<k} F_j
    after = np.cumprod(np.concatenate([ones, F[:, :0:-1]], axis=1), axis=1)[:, ::-1]  # Π_{j>k} F_j
    G = before * after
    fine = _trapezoid(F, G)
    coarse = _trapezoid(F[..., ::2], G[..., ::2])
    p = (4.0 * fine - coarse) / 3.0  # Richardson: the trapezoid's h² error term cancels
    return p / p.sum(axis=1, keepdims=True)


def _trapezoid(F: np.ndarray, G: np.ndarray) -> np.ndarray:
    p = (np.diff(F, axis=2) * (G[..., :-1] + G[..., 1:])).sum(axis=2) * 0.5
    return p + (1.0 - F[..., -1]) * (G[..., -1] + 1.0) * 0.5 + F[..., 0] * G[..., 0] * 0.5


def _grid(lo: np.ndarray, hi: np.ndarray, nodes: int, ends: tuple[float, float] | None = None) -> np.ndarray:
    """(N, 2·M − 1) sorted grid: ``nodes`` evenly spaced points per arm on [lo, hi] (N, K), the
    ``ends`` if given (M points in all), and the midpoints between consecutive points."""
    n, k = lo.shape
    x = lo[:, :, None] + (hi - lo)[:, :, None] * _t(nodes)
    x = x.reshape(n, k * nodes)
    if ends is not None:
        x = np.concatenate([np.full((n, 1), ends[0]), x, np.full((n, 1), ends[1])], axis=1)
    x.sort(axis=1)
    out = np.empty((n, 2 * x.shape[1] - 1))
    out[:, ::2] = x
    out[:, 1::2] = 0.5 * (x[:, 1:] + x[:, :-1])
    return out


def normal_argmax(mean: np.ndarray, sd: np.ndarray, nodes: int = NODES) -> np.ndarray:
    """(N, K) P(arm k's draw is the largest) for independent ``N(mean, sd²)`` draws (N, K); sd > 0."""
    from scipy.special import ndtr  # imported on first use: importing agents stays light

    x = _grid(mean - SPAN * sd, mean + SPAN * sd, nodes)
    F = ndtr((x[:, None, :] - mean[:, :, None]) / sd[:, :, None])
    return stieltjes_argmax(F)


def beta_argmax(a: np.ndarray, b: np.ndarray, nodes: int = NODES) -> np.ndarray:
    """(N, K) P(arm k's draw is the largest) for independent ``Beta(a, b)`` draws (N, K); a, b > 0."""
    from scipy.special import betainc  # imported on first use: importing agents stays light

    s = a + b
    mean = a / s
    sd = np.sqrt(a * b / (s * s * (s + 1.0)))
    x = _grid(np.maximum(mean - SPAN * sd, 0.0), np.minimum(mean + SPAN * sd, 1.0), nodes, ends=(0.0, 1.0))
    F = betainc(a[:, :, None], b[:, :, None], x[:, None, :])
    return stieltjes_argmax(F)
