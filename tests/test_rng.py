"""Counter-based uniforms and inverse-CDF draws, and the candidate-first layout of the response model:
the fast paths give exactly (bit for bit) the numbers of the plain ones."""

from __future__ import annotations

import numpy as np
import pytest

from adsim import rng as crng
from adsim.config import make_config
from adsim.response import click_logits, click_prob
from adsim.selection import SelectionCore


def _searchsorted_draw(u, cdf):
    return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.shape[0] - 1)


def _cdfs():
    r = np.random.default_rng(0)
    out = []
    for n in (1, 2, 3, 5, 24, 100, 1000):
        c = np.cumsum(r.dirichlet(np.ones(n)))
        c[-1] = 1.0
        out.append(c)
    return out + [
        np.array([0.0, 0.0, 0.5, 0.5, 0.5, 1.0, 1.0]),  # zero-probability categories: repeated entries
        np.array([0.25, 0.5, 0.75, 1.0]),  # entries on bucket ends
        np.array([0.1, 0.2, 0.9999]),  # last entry below 1: the index is clipped to n - 1
        np.array([1 / 3, 1 / 3 + 1e-12, 1 / 3 + 2e-12, 1.0]),  # several entries inside one bucket
        np.array([2.0**-53, 0.5, 1 - 2.0**-53]),
    ]


@pytest.mark.parametrize("cdf", _cdfs(), ids=lambda c: f"n{c.size}")
def test_table_draws_equal_binary_search_at_and_around_every_entry(cdf):
    r = np.random.default_rng(1)
    u = np.concatenate([r.random(20000), cdf, np.nextafter(cdf, 0.0), np.nextafter(cdf, 2.0), [0.0, 1 - 2.0**-53],
                        np.arange(4096) / 4096, np.nextafter(np.arange(1, 4097) / 4096, 0.0)])
    u = u[(u >= 0.0) & (u < 1.0)]
    got = crng.categorical(u, cdf)
    want = _searchsorted_draw(u, cdf)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    # any leading shape, and a strided view
    np.testing.assert_array_equal(crng.categorical(np.stack([u, u[::-1]], 1), cdf),
                                  _searchsorted_draw(np.stack([u, u[::-1]], 1), cdf))


def test_bucketed_cdf_rejects_a_bad_cdf():
    with pytest.raises(ValueError, match="1-D"):
        crng.BucketedCDF(np.ones((2, 2)))


def _mix64(z: int) -> int:
    m = (1 << 64) - 1
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & m
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & m
    return z ^ (z >> 31)


def test_uniforms_are_splitmix64_at_their_position_in_either_layout():
    keys = crng.stream_keys(7, 5)
    episode = np.array([0, 1, 2, 3, 40])
    step = np.array([[0, 1, 2], [5, 6, 7], [0, 0, 9], [99, 100, 101], [1, 2, 3]])
    u = crng.uniforms(keys, episode, step, 4, offset=16)
    assert u.shape == (5, 3, 4)
    for i in range(5):
        for t in range(3):
            for s in range(4):
                c = (int(episode[i]) * crng.MAX_EPISODE_STEPS + int(step[i, t])) * 4096 + 16 + s
                z = (int(keys[i]) + (c + 1) * 0x9E3779B97F4A7C15) % (1 << 64)
                assert u[i, t, s] == (_mix64(z) >> 11) / float(1 << 53)
    by_stream = crng.uniforms(keys, episode, step, 4, offset=16, streams_first=True)
    assert by_stream.shape == (4, 5, 3) and by_stream.flags.c_contiguous
    np.testing.assert_array_equal(np.moveaxis(by_stream, 0, -1), u)
    np.testing.assert_array_equal(crng.uniforms(keys, episode, step[:, 0], 3, streams_first=True),
                                  crng.uniforms(keys, episode, step[:, 0], 3).T)


def test_candidate_first_logits_and_click_probs_are_the_same_numbers():
    core = SelectionCore(make_config("default", mode="pool", n_candidates=6), 64)
    w, r = core.world, np.random.default_rng(3)
    user, device, position = r.integers(0, w.config.n_users, (64, 3)), r.integers(0, 3, (64, 3)), r.integers(0, 3, (64, 3))
    theta, item = r.random((64, 3, w.d)), r.random((64, 3))
    affinity, static = r.normal(size=(64, 3, 6)), r.normal(size=(64, 3, 6))
    discount = r.random((64, 3, 6)) < 0.4
    rows = click_logits(w, theta, user, device, item, affinity, discount, static)
    cols = click_logits(w, theta, user, device, item, np.moveaxis(affinity, -1, 0).copy(),
                        np.moveaxis(discount, -1, 0).astype(np.float64), np.moveaxis(static, -1, 0), candidate_axis=0)
    np.testing.assert_array_equal(np.moveaxis(cols, 0, -1), rows)
    pf = w.context.position_factor
    np.testing.assert_array_equal(np.moveaxis(click_prob(cols, -3.1, position, pf, candidate_axis=0), 0, -1),
                                  click_prob(rows, -3.1, position, pf))
    with pytest.raises(ValueError, match="candidate_axis"):
        click_prob(rows, -3.1, position, pf, candidate_axis=1)


@pytest.mark.parametrize("reward", ["click", "conversion", "revenue"])
def test_block_truth_equals_the_per_request_truth(reward):
    core = SelectionCore(make_config("default", mode="pool", n_candidates=8, reward=reward, horizon=30), 40)
    core.seed(5)
    core.start_episode()
    b = core.block
    probs, expected, optimal, best = core._block_truth_of(np.ascontiguousarray(np.moveaxis(b.logits, -1, 0)),
                                                          b.position, b.p_conv)
    for j in range(b.length):
        want = core._truth(np.ascontiguousarray(b.logits[:, j]), b.position[:, j], b.p_conv[:, j])
        for got, ref in zip((probs[j], expected[j], optimal[j], best[j]), want):
            np.testing.assert_array_equal(got, ref)
    tied = np.moveaxis(b.logits, -1, 0).copy()
    tied[5] = tied[2] = tied.max(axis=0) + 1.0  # exact ties between candidates 2 and 5: the first wins, as argmax
    _, expected, optimal, _ = core._block_truth_of(tied, b.position, b.p_conv)
    assert (optimal == 2).all()
    np.testing.assert_array_equal(optimal, expected.argmax(-1))
