"""The optional compiled kernels (``agents.compiled``, numba) give the numbers of their NumPy twins.

Without numba the kernel tests are skipped; the twins themselves are what every other test runs
then. ``ADSIM_NUMBA=0`` turns the kernels off, so with numba installed each test runs both paths
in one process and compares them bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from agents import compiled
from agents.linear import _count_true
from agents.registry import make_policy
from tests.test_policies import K, PERSONALIZED, record


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def test_adsim_numba_0_turns_the_kernels_off(monkeypatch):
    monkeypatch.setenv("ADSIM_NUMBA", "0")
    assert not compiled.enabled() and compiled.kernels() is None


@pytest.mark.parametrize("samples", [8, 16, 17, 64, 248, 256])
def test_count_true_equals_add_reduce(samples):
    """The 64-bit-word count of True (S a multiple of 8 below 256) and its fallback, on bool arrays with
    runs of True, False and mixes, against ``np.add.reduce``."""
    rng = np.random.default_rng(samples)
    win = rng.random((33, 5, samples)) < rng.random((33, 5, 1))  # rows from all-False to all-True
    win[0], win[1] = False, True
    np.testing.assert_array_equal(_count_true(win), np.add.reduce(win, axis=2, dtype=np.int32))
    assert _count_true(win).dtype == np.int32


def _lin_ts_run(monkeypatch, numba: str, kernel: str | None = None, **hyper) -> list[np.ndarray]:
    """Propensities, actions and final ridge state of lin_ts over recorded personalised batches, with
    the kernels on or off (``kernel``: leave only that one of the lin_ts kernels)."""
    monkeypatch.setenv("ADSIM_NUMBA", numba)
    if kernel is not None:
        kern = compiled.kernels()
        only = {"lints_counts": kern.lints_counts, "sparse_scores_wins": kern.sparse_scores_wins}[kernel]
        monkeypatch.setattr(kern, "lints_counts", only if kernel == "lints_counts" else None)
    out = []
    for kwargs in ({"seed": 0}, {"group_seeds": [0, 1]}):
        policy = make_policy("lin_ts", **hyper)
        policy.reset(K, **kwargs)
        for o, a, r in DATA:
            out.append(policy.probabilities(o))
            out.append(policy.select(o))
            policy.update(o, a, r)
        out.extend([policy.ridge.A, policy.ridge.b])
    return out


DATA = record(PERSONALIZED, 5, 64)


@pytest.mark.parametrize("hyper", [{}, {"samples": 17, "segment_by": "none"},
                                   {"samples": 256, "segment_by": "category", "v": 0.5}, {"samples": 1}])
@pytest.mark.parametrize("kernel", ["lints_counts", "sparse_scores_wins"])
def test_lin_ts_kernels_equal_the_numpy_path(monkeypatch, hyper, kernel):
    pytest.importorskip("numba")
    if kernel == "lints_counts" and compiled.kernels().lints_counts is None:
        pytest.skip("this BLAS's bias-and-CTR product is not one fused multiply-add: lints_counts is not used")
    want = _lin_ts_run(monkeypatch, "0", **hyper)
    got = _lin_ts_run(monkeypatch, "1", kernel, **hyper)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_lin_ts_kernels_keep_the_rules_for_ties_and_overflow(monkeypatch):
    """Tied candidates (the first wins), and scores overflowing to +inf (ties again), with the kernels
    on and off. (A NaN score needs an infinite draw, which takes the dense product's path before any
    kernel: ``tests/test_policies.py``.)"""
    pytest.importorskip("numba")
    obs = {key: v.copy() for key, v in DATA[3][0].items()}
    cand = obs["candidates"].reshape(64, K, -1)
    cand[:, 3] = cand[:, 1]  # candidate 3 repeats candidate 1
    obs["ctr_estimate"][:, 3] = obs["ctr_estimate"][:, 1]
    results = []
    for numba in ("0", "1"):
        monkeypatch.setenv("ADSIM_NUMBA", numba)
        policy = make_policy("lin_ts", samples=32)
        policy.reset(K, seed=0)
        for o, a, r in DATA[:3]:
            policy.update(o, a, r)
        p = policy.probabilities(obs)
        assert np.all(p[:, 3] == 0) and p[:, 1].sum() > 0
        policy.ridge.theta[:, 2:] = 1e308  # the part terms of a candidate with two parts or more sum to inf
        assert np.isposinf(policy.sampled_scores(obs)).any()
        results.append((p, policy.probabilities(obs)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
