"""Thompson propensities by quadrature (agents.quadrature) and the one-request fast paths.

The quadrature's stated error bound (``ERROR_BOUND`` = 1e-4 absolute, default ``NODES``) is checked
against exact values (two Gaussians: a closed form; Beta cases with closed forms), adaptive
``scipy.integrate.quad`` of the same integrals, and a high-sample Monte-Carlo estimate.
The fast paths for batches of one request must give exactly the batched path's results.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import ndtr

from agents.quadrature import ERROR_BOUND, beta_argmax, normal_argmax
from agents.registry import make_policy


def _quad_reference(dists) -> np.ndarray:
    """P(arm k's draw is the largest) by adaptive quadrature of f_k · Π_{j≠k} F_j."""
    out = []
    lo = min(d.ppf(1e-14) for d in dists)
    hi = max(d.isf(1e-14) for d in dists)
    for k, dk in enumerate(dists):
        def f(x, k=k, dk=dk):
            return dk.pdf(x) * np.prod([d.cdf(x) for j, d in enumerate(dists) if j != k])
        pts = sorted({float(d.mean()) for d in dists if lo < d.mean() < hi})
        out.append(integrate.quad(f, lo, hi, points=pts, limit=1000, epsabs=1e-13, epsrel=1e-11)[0])
    return np.array(out)


def _random_betas(rng, n_cases: int):
    for i in range(n_cases):
        k = int(rng.integers(2, 7))
        if i % 3 == 0:  # small counts: wide, skewed posteriors near 0 and 1
            a, b = 1.0 + rng.integers(0, 4, k), 1.0 + rng.integers(0, 6, k)
        else:  # a bandit's state: some arms played a lot, some hardly, CTRs from 1 % to 60 %
            n = rng.integers(0, 20_000, k) * (rng.random(k) < 0.8)
            ctr = rng.choice([0.01, 0.05, 0.3, 0.6]) * rng.uniform(0.7, 1.3, k)
            a = 1.0 + np.round(n * np.minimum(ctr, 1.0))
            b = 1.0 + n - (a - 1.0)
        yield a.astype(float), b.astype(float)


def test_beta_argmax_exact_small_cases():
    # P(Beta(a, 1) > U(0, 1)) = a / (a + 1); three uniforms: 1/3 each
    for a in (1.0, 2.0, 5.0, 40.0):
        p = beta_argmax(np.array([[a, 1.0]]), np.array([[1.0, 1.0]]))[0]
        assert abs(p[0] - a / (a + 1.0)) < ERROR_BOUND
    np.testing.assert_allclose(beta_argmax(np.ones((1, 3)), np.ones((1, 3)))[0], 1 / 3, atol=ERROR_BOUND)


def test_beta_argmax_within_bound_of_adaptive_quadrature():
    rng = np.random.default_rng(0)
    worst = 0.0
    for a, b in _random_betas(rng, 30):
        ref = _quad_reference([stats.beta(x, y) for x, y in zip(a, b)])
        got = beta_argmax(a[None], b[None])[0]
        np.testing.assert_allclose(got.sum(), 1.0)
        worst = max(worst, float(np.abs(got - ref).max()))
    assert worst < ERROR_BOUND


def test_normal_argmax_two_arms_closed_form():
    rng = np.random.default_rng(1)
    for _ in range(200):
        mu = rng.normal(0, 1, 2) * rng.choice([1e-3, 0.1, 1.0])
        sd = np.exp(rng.normal(-1, 1.5, 2))
        exact = float(ndtr((mu[0] - mu[1]) / np.hypot(*sd)))
        assert abs(normal_argmax(mu[None], sd[None])[0, 0] - exact) < ERROR_BOUND


def test_normal_argmax_many_arms_matches_fine_grid_and_monte_carlo():
    rng = np.random.default_rng(2)
    for i in range(40):
        k = int(rng.integers(3, 11))
        mu = rng.normal(0, 1, k) * rng.choice([0.01, 0.1, 1.0])
        if i % 3 == 0:
            mu = mu[0] + rng.normal(0, 1e-3, k)  # near-ties
        sd = np.exp(rng.normal(-1, 1.5, k))  # widths over orders of magnitude
        got = normal_argmax(mu[None], sd[None])[0]
        fine = normal_argmax(mu[None], sd[None], nodes=1024)[0]
        assert np.abs(got - fine).max() < ERROR_BOUND
    draws = np.random.default_rng(3).normal(mu, sd, (1_000_000, k))
    mc = np.bincount(draws.argmax(axis=1), minlength=k) / draws.shape[0]
    np.testing.assert_allclose(got, mc, atol=2e-3)  # Monte-Carlo's own error ~ 5e-4


def test_batched_rows_are_independent():
    rng = np.random.default_rng(4)
    a, b = 1.0 + rng.integers(0, 50, (5, 4)), 1.0 + rng.integers(0, 500, (5, 4))
    both = beta_argmax(a.astype(float), b.astype(float))
    for i in range(5):
        np.testing.assert_array_equal(both[i], beta_argmax(a[i:i + 1].astype(float), b[i:i + 1].astype(float))[0])


# ---------------------------------------------------------------------------------------------
# one request at a time ≡ the batched path


def _one_request_stream(n: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    campaigns = rng.integers(0, 3, n)  # three campaigns interleaved
    p = rng.uniform(0.05, 0.6, (3, k))
    for t in range(n):
        c = campaigns[t]
        obs = {"user": rng.random((1, 5)), "context": np.zeros((1, 2), np.float32),
               "campaign": np.full((1, 2), c, np.float32), "candidates": np.zeros((1, k), np.int64),
               "ctr_estimate": np.full((1, k), 0.03, np.float32)}
        yield obs, rng.random(k) < p[c]


@pytest.mark.parametrize("name,hyper", [("epsilon_greedy", {}), ("epsilon_greedy", {"epsilon": 1.0, "decay": 0.01}),
                                        ("ucb1", {}), ("thompson", {}), ("exp3", {}), ("kl_ucb", {})])
def test_one_request_path_equals_batched_path(name, hyper):
    k = 6
    fast, slow = make_policy(name, **hyper), make_policy(name, **hyper)
    fast.reset(k, seed=7)
    slow.reset(k, seed=7)
    slow._one_slot = lambda obs: None  # force the batched path on batches of one
    for obs, clicks in _one_request_stream(400, k, seed=8):
        np.testing.assert_array_equal(fast.probabilities(obs), slow.probabilities(obs))
        a_fast, a_slow = fast.select(obs), slow.select(obs)
        np.testing.assert_array_equal(a_fast, a_slow)
        assert a_fast.shape == (1,) and a_fast.dtype.kind == "i"
        r = clicks[a_fast].astype(np.float64)
        fast.update(obs, a_fast, r)
        slow.update(obs, a_slow, r)
    np.testing.assert_array_equal(fast.counts, slow.counts)
    np.testing.assert_array_equal(fast.sums, slow.sums)


def test_one_request_path_validates_like_the_batched_path():
    policy = make_policy("thompson")
    policy.reset(4, seed=0)
    obs, _ = next(_one_request_stream(1, 4, seed=0))
    with pytest.raises(ValueError, match="needs rewards in"):
        policy.update(obs, np.array([1]), np.array([2.0]))
    with pytest.raises(ValueError, match="action == 4"):
        policy.update(obs, np.array([4]), np.array([1.0]))
    with pytest.raises(ValueError, match="lacks key 'user'"):
        policy.select({k: v for k, v in obs.items() if k != "user"})
    with pytest.raises(ValueError, match="candidates"):
        policy.select({**obs, "ctr_estimate": np.zeros((1, 3))})


def test_lin_ts_arms_one_request_matches_batch_and_its_draws():
    policy = make_policy("lin_ts_arms", v=1.0, features=("user",))
    policy.reset(4, seed=0)
    stream = list(_one_request_stream(300, 4, seed=1))
    for obs, clicks in stream[:200]:
        a = policy.select(obs)
        policy.update(obs, a, clicks[a].astype(np.float64))
    batch = {key: np.concatenate([o[key] for o, _ in stream[200:]]) for key in stream[0][0]}
    p_batch = policy.probabilities(batch)
    for i, (obs, _) in enumerate(stream[200:]):
        np.testing.assert_allclose(policy.probabilities(obs)[0], p_batch[i], atol=1e-9)
    many = {key: np.repeat(v[:1], 20_000, axis=0) for key, v in batch.items()}
    freq = np.bincount(policy.select(many), minlength=4) / 20_000
    np.testing.assert_allclose(freq, p_batch[0], atol=0.015)
