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
    return stieltjes_argmax(beta_cdfs(a, b, nodes))


def beta_cdfs(a: np.ndarray, b: np.ndarray, nodes: int = NODES) -> np.ndarray:
    """(N, K, M) the CDFs of ``Beta(a, b)`` (N, K) on each row's sorted grid (``nodes`` points per arm,
    the ends 0 and 1, the midpoints), which covers the support: ``F`` is 0 at the first point, 1 at the last."""
    from scipy.special import betainc  # imported on first use: importing agents stays light

    s = a + b
    mean = a / s
    sd = np.sqrt(a * b / (s * s * (s + 1.0)))
    x = _grid(np.maximum(mean - SPAN * sd, 0.0), np.minimum(mean + SPAN * sd, 1.0), nodes, ends=(0.0, 1.0))
    return betainc(a[:, :, None], b[:, :, None], x[:, None, :])


# ---------------------------------------------------------------------------------------------- slates
# The top L of one draw per arm (Thompson sampling's slate, ``agents.slate``) has two integrals of the
# same kind, on the same grids (which must cover the draws' support: F is 0 at the first point and 1
# at the last, as ``beta_cdfs``'s; there are no tail terms), with the same trapezoidal Stieltjes rule
# and Richardson step:
#
#   P(slate s_1 … s_L) = P(X_{s_1} > … > X_{s_L} > every other draw)
#                      = ∫ dF_{s_1}(x_1) ∫_{x_2 < x_1} dF_{s_2}(x_2) … ∫_{x_L < x_{L-1}} H(x_L) dF_{s_L}(x_L),
#       H = Π_{j ∉ s} F_j, evaluated from the inside out as L cumulative Stieltjes sums;
#   P(arm k at position l) = ∫ P(exactly l − 1 other draws exceed x) dF_k(x),
#       the count Poisson-binomial in the others' 1 − F_j(x), from prefix and suffix recursions over
#       the arms (truncated at L − 1: only counts below L are needed), combined by a convolution.
#
# Error (``tests/test_slate_policies.py`` checks it against the same integrals on grids 16× finer, on
# random posteriors with close and far arms): with the default ``nodes`` every slate probability and
# every marginal is within ``SLATE_ERROR_BOUND`` of the fine grid's value.

SLATE_ERROR_BOUND = 1e-4
"""Largest absolute error of a slate probability or a marginal with ``NODES`` points per arm (tested)."""


def _cumulative_stieltjes(F: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(N, M) ``∫_{x_0}^{x_i} g dF`` at each grid point by the trapezoidal rule (F, g (N, M))."""
    out = np.zeros_like(g)
    np.cumsum(np.diff(F, axis=1) * (g[:, :-1] + g[:, 1:]) * 0.5, axis=1, out=out[:, 1:])
    return out


def _richardson(integral, *arrays: np.ndarray) -> np.ndarray:
    """``integral`` of the grid arrays (grid on the last axis), the trapezoid's h² term cancelled with
    the every-other-point grid (the grids of ``_grid`` have an odd number of points)."""
    fine = integral(*arrays)
    coarse = integral(*(x[..., ::2] for x in arrays))
    return (4.0 * fine - coarse) / 3.0


SLATE_CHUNK = 256
"""Slates integrated at once by :func:`stieltjes_slate` (bounds its (chunk, K, M) temporaries)."""


def stieltjes_slate(F: np.ndarray, slates: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """(P,) P(the draws of ``slates`` (P, L) are the L largest, in that order) from the CDFs ``F``
    (U, K, M) on each row's sorted grid covering the support; slate i's draws are those of row
    ``rows[i]`` of ``F`` (default: row i)."""
    rows = np.arange(slates.shape[0]) if rows is None else np.asarray(rows)
    if slates.shape[0] > SLATE_CHUNK:
        return np.concatenate([stieltjes_slate(F, slates[i:i + SLATE_CHUNK], rows[i:i + SLATE_CHUNK])
                               for i in range(0, slates.shape[0], SLATE_CHUNK)])
    n, k = slates.shape[0], F.shape[1]
    rest = np.ones((n, k), dtype=bool)
    rest[np.arange(n)[:, None], slates] = False
    H = np.where(rest[:, :, None], F[rows], 1.0).prod(axis=1)  # (P, M) every other draw below x
    Fs = F[rows[:, None], slates]  # (P, L, M)

    def nested(Fs: np.ndarray, H: np.ndarray) -> np.ndarray:
        g = H
        for l in range(Fs.shape[1] - 1, -1, -1):  # from the last position to the first
            g = _cumulative_stieltjes(Fs[:, l], g)
        return g[:, -1]

    return np.clip(_richardson(nested, Fs, H), 0.0, 1.0)


def stieltjes_ranks(F: np.ndarray, L: int) -> np.ndarray:
    """(N, K, L) P(arm k's draw is the (l+1)-th largest), l < L, from the CDFs ``F`` (N, K, M) on each
    row's sorted grid covering the support; each position's column normalised to sum to 1."""
    n, k, m = F.shape
    Q = 1.0 - F  # P(arm j's draw is above x)

    def step(dist: np.ndarray, f: np.ndarray, q: np.ndarray) -> np.ndarray:  # add one arm to a count distribution
        out = dist * f[..., None]
        out[..., 1:] += dist[..., :-1] * q[..., None]
        return out

    pre = np.empty((k, n, m, L))  # pre[j]: count of arms < j above x (truncated at L − 1)
    suf = np.empty((k, n, m, L))  # suf[j]: count of arms > j above x
    pre[0] = suf[k - 1] = np.eye(1, L)[0]
    for j in range(1, k):  # a loop over the arms (the propensities', not select's, path)
        pre[j] = step(pre[j - 1], F[:, j - 1], Q[:, j - 1])
        suf[k - 1 - j] = step(suf[k - j], F[:, k - j], Q[:, k - j])
    others = np.zeros((k, n, m, L))  # count of the other arms above x
    for c in range(L):
        for c1 in range(c + 1):
            others[..., c] += pre[..., c1] * suf[..., c - c1]
    others = others.transpose(1, 0, 3, 2)  # (N, K, L, M)

    def integral(F: np.ndarray, G: np.ndarray) -> np.ndarray:
        return (np.diff(F, axis=-1)[:, :, None] * (G[..., :-1] + G[..., 1:])).sum(axis=-1) * 0.5

    p = np.clip(_richardson(integral, F, others), 0.0, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def beta_slate(a: np.ndarray, b: np.ndarray, slates: np.ndarray, nodes: int = NODES,
               rows: np.ndarray | None = None) -> np.ndarray:
    """(P,) P(the top L of independent ``Beta(a, b)`` draws is ``slates`` (P, L), in order); the draws
    of slate i have the parameters of row ``rows[i]`` of ``a``, ``b`` (U, K) (default: row i)."""
    return stieltjes_slate(beta_cdfs(a, b, nodes), slates, rows)


def beta_ranks(a: np.ndarray, b: np.ndarray, L: int, nodes: int = NODES) -> np.ndarray:
    """(N, K, L) P(arm k's ``Beta(a, b)`` draw is the (l+1)-th largest) for independent draws (N, K)."""
    return stieltjes_ranks(beta_cdfs(a, b, nodes), L)
