"""One request at a time (issue 14): the lean paths give exactly what the batched path gives.

Blocked uniforms (``Policy.uniform_one``) must leave the policy's stream exactly as one
``rng.random()`` per decision would, whatever else draws from the generator in between; ε-greedy's
cached probabilities must equal freshly computed ones after every update; Thompson sampling with
``sampling="posterior"`` must take the same decisions one request at a time as batched, draw
exactly from the Thompson distribution, and report propensities within the quadrature's bound of
the frequencies it selects with.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from agents.quadrature import ERROR_BOUND
from agents.registry import make_policy


def _stream(n: int, k: int, seed: int, campaigns: int = 3):
    rng = np.random.default_rng(seed)
    which = rng.integers(0, campaigns, n)
    p = rng.uniform(0.05, 0.6, (campaigns, k))
    for t in range(n):
        c = which[t]
        obs = {"user": rng.random((1, 5)), "context": np.zeros((1, 2), np.float32),
               "campaign": np.full((1, 2), c, np.float32), "candidates": np.zeros((1, k), np.int64),
               "ctr_estimate": np.full((1, k), 0.03, np.float32)}
        yield obs, (rng.random(k) < p[c]).astype(np.float64)


def test_uniform_one_is_the_generators_stream_whatever_draws_in_between():
    policy, plain = make_policy("random"), np.random.default_rng(11)
    policy.reset(3, seed=11)
    for t in range(700):  # crosses several blocks
        assert policy.uniform_one() == plain.random()
        if t % 97 == 0:  # other draws in between: a 32-bit one leaves a buffered half behind
            np.testing.assert_array_equal(policy.rng.integers(0, 5, 3, dtype=np.int32),
                                          plain.integers(0, 5, 3, dtype=np.int32))
        if t % 131 == 0:
            np.testing.assert_array_equal(policy.rngs[0].random(4), plain.random(4))
    assert policy.rng.bit_generator.state == plain.bit_generator.state


@pytest.mark.parametrize("name,hyper", [("epsilon_greedy", {}), ("epsilon_greedy", {"epsilon": 1.0, "decay": 0.01}),
                                        ("ucb1", {}), ("thompson", {"sampling": "posterior"}), ("thompson", {}),
                                        ("kl_ucb", {}), ("exp3", {})])
def test_one_request_path_equals_batched_path_with_batches_in_between(name, hyper):
    """Interleaved batches of three (which draw from the generator and update the tables) and a
    deep copy mid-stream change nothing."""
    k = 5
    fast, slow = make_policy(name, **hyper), make_policy(name, **hyper)
    fast.reset(k, seed=3)
    slow.reset(k, seed=3)
    slow._one_slot = lambda obs: None  # the batched path for every call
    stream = list(_stream(900, k, seed=4))
    for t, (obs, clicks) in enumerate(stream):
        if t == 450:
            fast = copy.deepcopy(fast)
        if t % 61 == 60:  # a batch of three requests
            batch = {key: np.concatenate([o[key] for o, _ in stream[t - 3:t]]) for key in obs}
            a_fast, a_slow = fast.select(batch), slow.select(batch)
            np.testing.assert_array_equal(a_fast, a_slow)
            r = np.array([c[a] for (_, c), a in zip(stream[t - 3:t], a_fast)])
            fast.update(batch, a_fast, r)
            slow.update(batch, a_slow, r)
        a_fast, a_slow = fast.select(obs), slow.select(obs)
        assert a_fast.shape == (1,) and a_fast.dtype == np.int64
        assert a_fast[0] == a_slow[0], t
        fast.update(obs, a_fast, clicks[a_fast])
        slow.update(obs, a_slow, clicks[a_slow])
        if t % 50 == 0 and not hyper.get("sampling"):
            np.testing.assert_array_equal(fast.probabilities(obs), slow.probabilities(obs))
    np.testing.assert_array_equal(fast.counts, slow.counts)
    np.testing.assert_array_equal(fast.sums, slow.sums)


def test_epsilon_greedy_cached_probabilities_equal_fresh_ones():
    policy = make_policy("epsilon_greedy", epsilon=0.2)
    policy.reset(4, seed=0)
    for obs, clicks in _stream(3000, 4, seed=1, campaigns=1):
        a = policy.select(obs)
        row = policy._one_rows[0]
        if row.cums is not None:  # the cached draw table is that of the current statistics
            p = policy._one_fresh(row)[0]
            assert row.cums[:-1] == list(np.cumsum(p))[:-1] and row.cums[-1] == np.inf  # +inf: the last arm
            np.testing.assert_array_equal(p, policy._slot_probabilities(np.array([0]))[0])
        policy.update(obs, a, clicks[a])


def test_one_request_update_validates_like_the_batched_path():
    policy = make_policy("epsilon_greedy")
    policy.reset(4, seed=0)
    obs, _ = next(_stream(1, 4, seed=0))
    a = policy.select(obs)
    with pytest.raises(TypeError, match="actions must be integers"):
        policy.update(obs, np.array([1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="action == 4"):
        policy.update(obs, np.array([4]), np.array([1.0]))
    with pytest.raises(ValueError, match="rewards must be finite"):
        policy.update(obs, a, np.array([np.nan]))
    with pytest.raises(ValueError, match=r"expected \(1,\) each"):
        policy.update(obs, np.array([1, 2]), np.array([1.0, 0.0]))
    policy.update(obs, a, np.array([2.5]))  # ε-greedy takes any finite reward
    assert policy.sums.sum() == 2.5
    with pytest.raises(ValueError, match="sampling"):
        make_policy("thompson", sampling="quadrature")


@pytest.mark.parametrize("name", ["epsilon_greedy", "thompson"])
def test_one_request_actions_are_read_only_and_update_the_arm_they_hold(name):
    """The one-request path returns a shared read-only (1,) array per action: writing to it raises,
    and update reads the arm from it — also from an array of another policy or of the policy before
    a pickle round trip (the arrays' ids are remade, never matched to the wrong arm)."""
    import pickle

    policy = make_policy(name)
    policy.reset(4, seed=0)
    obs, _ = next(_stream(1, 4, seed=0))
    a = policy.select(obs)
    assert a.shape == (1,) and not a.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 0
    with pytest.raises(ValueError):  # nor can it be made writeable
        a.flags.writeable = True
    policy.update(obs, a, np.array([1.0]))
    assert policy.counts[0, a[0]] == 1.0 and policy.counts.sum() == 1.0
    copy_ = pickle.loads(pickle.dumps(policy))
    assert copy_._action_ids and set(copy_._action_ids) != set(policy._action_ids)
    assert not any(x.flags.writeable for x in copy_._actions)
    other = policy._actions[(a[0] + 1) % 4]  # the old policy's array of another arm
    b = copy_.select(obs)
    copy_.update(obs, other, np.array([0.0]))
    assert copy_.counts[0, other[0]] == 1.0 and copy_.counts.sum() == 2.0
    copy_.update(obs, b, np.array([0.0]))
    assert copy_.counts[0, b[0]] >= 1.0 and copy_.counts.sum() == 3.0


def test_posterior_sampling_draws_from_the_thompson_distribution():
    """``select`` frequencies over many decisions from one state match ``probabilities`` (quadrature,
    error <= 1e-4) within Monte-Carlo error, one request at a time and batched alike."""
    k = 4
    policy = make_policy("thompson", sampling="posterior")
    policy.reset(k, seed=5)
    for obs, clicks in _stream(400, k, seed=6, campaigns=1):
        a = policy.select(obs)
        policy.update(obs, a, clicks[a])
    obs, _ = next(_stream(1, k, seed=6, campaigns=1))
    p = policy.probabilities(obs)[0]
    n = 40_000
    one = np.bincount([policy.select(obs)[0] for _ in range(n)], minlength=k) / n
    batch = {key: np.repeat(v, n, axis=0) for key, v in obs.items()}
    many = np.bincount(policy.select(batch), minlength=k) / n
    tol = 4.5 * np.sqrt(p * (1 - p) / n) + ERROR_BOUND
    assert np.all(np.abs(one - p) <= tol), (one, p)
    assert np.all(np.abs(many - p) <= tol), (many, p)
    assert p.max() < 0.9  # a state where several arms are still drawn: the test has teeth


def test_posterior_sampling_prunes_without_changing_decisions():
    """Rows with close, far and untried arms: the threshold shortcut takes exactly the argmax of
    all K inverse CDFs at the same uniforms (computed here in full)."""
    from scipy.special import betaincinv

    k = 6
    policy = make_policy("thompson", sampling="posterior", alpha0=0.5, beta0=2.0)
    policy.reset(k, seed=9)
    obs, _ = next(_stream(1, k, seed=0, campaigns=1))
    policy.select(obs)
    rng = np.random.default_rng(2)
    policy.counts[0] = [5000, 4800, 30, 0, 200, 1]
    policy.sums[0] = [1500, 1460, 3, 0, 70, 1]
    policy._one_rows = {}
    for _ in range(3000):
        state = copy.deepcopy(policy.rng.bit_generator.state)
        got = policy.select(obs)[0]
        replay = np.random.Generator(np.random.PCG64())  # the same K uniforms, replayed
        replay.bit_generator.state = state
        a, b = policy.posterior(np.array([0]))
        want = betaincinv(a, b, replay.random((1, k))).argmax(axis=1)[0]
        assert got == want
        arm = int(rng.integers(0, k))
        policy.update(obs, np.array([arm]), np.array([float(rng.random() < 0.3)]))


def test_shared_models_reuse_features_only_of_unchanged_arrays():
    """``update`` after ``select`` on the same batch reuses its candidate features; a batch whose
    arrays were changed in place between the two is featurised again (same ridge as a fresh policy)."""
    from experiments.perf.policies import _recorded_batches

    (obs0, obs1), _, _ = _recorded_batches("personalized", 2)
    obs0 = {k: v[:64].copy() for k, v in obs0.items()}
    obs1 = {k: v[:64].copy() for k, v in obs1.items()}
    for name in ("linucb_shared", "lin_ts"):
        reuse, fresh = make_policy(name), make_policy(name)
        reuse.reset(8, seed=0)
        fresh.reset(8, seed=0)
        a = reuse.select(obs0)
        np.testing.assert_array_equal(a, fresh.select(obs0))
        r = (np.arange(64) % 3 == 0).astype(float)
        obs0["candidates"][:] = obs1["candidates"]  # changed in place after the decision
        obs0["user"][:] = obs1["user"]
        reuse.update(obs0, a, r)
        fresh._last_features = None
        fresh.update(obs0, a, r)
        np.testing.assert_array_equal(reuse.ridge.A_inv, fresh.ridge.A_inv)
        np.testing.assert_array_equal(reuse.ridge.b, fresh.ridge.b)
        assert np.abs(reuse.ridge.b).sum() > 0


def test_posterior_rows_cdfs_follow_the_recurrence_within_its_bound():
    """The one-request rows update their CDFs at the thresholds by the incomplete-beta recurrence
    (a click or a non-click) or by ``betainc`` (any other reward, and every ``_EXACT_EVERY`` steps):
    along a long stream of both kinds the kept CDFs stay within 1e-11 of ``betainc`` at the current
    posteriors (the selection's margin is 1e-9), and the decisions are the batched path's."""
    from scipy.special import betainc

    k = 5
    fast, slow = make_policy("thompson", sampling="posterior"), make_policy("thompson", sampling="posterior")
    fast.reset(k, seed=21)
    slow.reset(k, seed=21)
    slow._one_slot = lambda obs: None
    rng = np.random.default_rng(8)
    ctr = np.array([0.30, 0.28, 0.2, 0.1, 0.29])
    worst, recurrences = 0.0, 0
    for t, (obs, _) in enumerate(_stream(6000, k, seed=3, campaigns=1)):
        a = fast.select(obs)
        assert a[0] == slow.select(obs)[0], t
        r = float(rng.random() < ctr[a[0]]) if t % 7 else float(rng.random())  # now and then a fraction
        row = fast._one_rows[0].cache
        steps = list(row.steps)
        fast.update(obs, a, np.array([r]))
        slow.update(obs, a, np.array([r]))
        recurrences += row is fast._one_rows[0].cache and row.steps[a[0]] > steps[a[0]]
        if t % 25 == 0:
            row = fast._one_rows[0].cache
            assert row.a == (fast.alpha0 + fast.sums[0]).tolist()
            exact = np.maximum.accumulate(betainc(np.array(row.a)[:, None], np.array(row.b)[:, None],
                                                  np.array(row.theta)), axis=1)
            worst = max(worst, float(np.abs(np.array(row.F) - exact).max()))
            cols = np.array(row.cols)
            lead = row.lead
            np.testing.assert_array_equal(np.delete(cols, lead, axis=1), np.delete(np.array(row.F).T - 1e-9, lead, axis=1))
            assert np.all(cols[:, lead] == np.inf)
    assert worst < 1e-11, worst
    assert recurrences > 3000  # most updates took the recurrence: the test has teeth
    np.testing.assert_array_equal(fast.counts, slow.counts)


@pytest.mark.parametrize("name,hyper", [("epsilon_greedy", {}), ("thompson", {"sampling": "posterior"})])
def test_inline_check_of_the_last_requests_arrays_still_catches_bad_input(name, hyper):
    """``select`` re-checks a request holding the arrays it checked last request cheaply, but
    still every call: a missing key, an estimate reshaped in place, a campaign changed in place,
    and (1, 1) feedback arrays in ``update`` all get the batched path's errors or results."""
    policy = make_policy(name, **hyper)
    policy.reset(4, seed=0)
    obs, _ = next(_stream(1, 4, seed=0, campaigns=1))
    for _ in range(3):  # the second and third calls take the inline check
        a = policy.select(dict(obs))
        policy.update(obs, a, np.array([1.0]))
    with pytest.raises(ValueError, match="lacks key 'user'"):
        policy.select({k: v for k, v in obs.items() if k != "user"})
    with pytest.raises(ValueError, match=r"expected \(1,\) each"):
        policy.update(obs, a.reshape(1, 1), np.array([1.0]))
    with pytest.raises(ValueError, match=r"expected \(1,\) each"):
        policy.update(obs, a, np.array([[1.0]]))
    obs["campaign"][:] = 7.0  # another campaign, in the same array: a new table row
    policy.select(dict(obs))
    assert policy.counts.shape[0] >= 2 and len(policy.index) == 2
    obs["ctr_estimate"].shape = (4, 1)  # reshaped in place
    with pytest.raises(ValueError, match="candidates"):
        policy.select(dict(obs))


def _registered_bandits() -> list[str]:
    from agents.registry import BIDDING_POLICIES, POLICIES

    return sorted(n for n in POLICIES if n not in BIDDING_POLICIES and not hasattr(POLICIES[n], "learn"))


@pytest.mark.parametrize("mode", ["pool", "personalized"])
@pytest.mark.parametrize("name", _registered_bandits())
def test_select_one_and_update_one_are_select_and_update_with_scalars(name, mode):
    """Every registered bandit, on the env's requests one at a time: the scalar calls take the same
    actions from the same streams and leave the same state as ``select``/``update`` with (1,) arrays —
    including policies that redefine ``select`` or ``update`` over an inherited lean path (they get
    the generic scalar calls)."""
    import gymnasium as gym

    import adsim  # noqa: F401  (registers the envs)

    k = 4
    env = gym.make_vec("adsim/CreativeSelection-v0", num_envs=1, vectorization_mode="vector_entry_point",
                       mode=mode, n_candidates=k, horizon=50, campaign=None if mode == "pool" else 0)
    scalar, arrays = make_policy(name), make_policy(name)
    scalar.reset(k, seed=5)
    arrays.reset(k, seed=5)
    obs, info = env.reset(seed=7)
    for t in range(120):
        a = scalar.select_one(obs, info)
        b = arrays.select(obs, info)
        assert type(a) is int and a == b[0], (t, a, b)
        nxt, reward, _, _, nxt_info = env.step(b)
        scalar.update_one(obs, a, reward[0])  # an np.float64 reward, as reward[0] is
        arrays.update(obs, b, reward)
        obs, info = nxt, nxt_info
    env.close()
    np.testing.assert_array_equal(scalar.probabilities(obs, info), arrays.probabilities(obs, info))
    assert scalar.rng.bit_generator.state == arrays.rng.bit_generator.state


def test_the_oracle_selects_one_from_info():
    policy = make_policy("oracle")
    policy.reset(3, seed=0)
    obs, _ = next(_stream(1, 3, seed=0))
    assert policy.select_one(obs, {"expected_reward": np.array([[0.1, 0.3, 0.2]])}) == 1


@pytest.mark.parametrize("name", ["epsilon_greedy", "linucb", "random"])
def test_scalar_calls_reject_bad_input_with_the_batched_paths_errors(name):
    policy = make_policy(name)
    policy.reset(4, seed=0)
    obs, _ = next(_stream(1, 4, seed=0))
    a = policy.select_one(obs)
    with pytest.raises(TypeError, match="action must be an int"):
        policy.update_one(obs, 1.0, 1.0)
    with pytest.raises(TypeError, match="action must be an int"):
        policy.update_one(obs, True, 1.0)
    with pytest.raises(TypeError, match="reward must be a real number"):
        policy.update_one(obs, a, "1")
    with pytest.raises(TypeError, match="reward must be a real number"):
        policy.update_one(obs, a, np.array([1.0]))
    if name != "random":  # random learns nothing, so checks nothing
        with pytest.raises(ValueError, match=r"action == 4, must be in \[0, 3\]"):
            policy.update_one(obs, 4, 1.0)
        with pytest.raises(ValueError, match="finite"):
            policy.update_one(obs, a, float("nan"))
    batch = {key: np.concatenate([v, v]) for key, v in obs.items()}
    with pytest.raises(ValueError, match="batch of one request"):
        policy.select_one(batch)
    policy.update_one(obs, a, 1)  # an int reward is a number
    policy.update_one(obs, np.int64(a), 0.0)  # a NumPy integer action too


@pytest.mark.parametrize("base", ["epsilon_greedy", "linucb"])
def test_a_subclass_that_wraps_select_and_update_gets_them_from_the_scalar_calls(base):
    from agents.registry import POLICIES

    calls = []

    class Logged(POLICIES[base]):
        def select(self, obs, info=None):
            calls.append("select")
            return super().select(obs, info)

        def update(self, obs, actions, rewards):
            calls.append("update")
            super().update(obs, actions, rewards)

    policy = Logged()
    policy.reset(4, seed=0)
    for obs, clicks in _stream(5, 4, seed=1, campaigns=1):
        obs["user"] = np.ones((1, 3))
        a = policy.select_one(obs)
        policy.update_one(obs, a, clicks[a])
    assert calls == ["select", "update"] * 5


@pytest.mark.parametrize("stacked", [False, True])
def test_hybrid_posterior_sampling_draws_from_its_quadrature_propensities(stacked):
    """``hybrid`` (``sampling="posterior"``, the default): over many draws of the same requests,
    the frequencies of ``select`` match ``probabilities`` (quadrature, error <= 1e-4) within
    Monte-Carlo error, for requests with close, far and fed candidates; stacked groups alike."""
    k, n = 4, 20_000
    policy = make_policy("hybrid", prior_strength=50.0)
    if stacked:
        policy.reset(k, group_seeds=[3, 4])
    else:
        policy.reset(k, seed=3)
    obs = {"user": np.zeros((2, 3)), "context": np.zeros((2, 2), np.float32),
           "campaign": np.zeros((2, 2), np.float32), "candidates": np.arange(2 * k * 9).reshape(2, k * 9),
           "ctr_estimate": np.array([[0.05, 0.052, 0.03, 0.049], [0.2, 0.1, 0.19, 0.05]], np.float32)}
    for _ in range(3):  # some feedback on the first request's candidates 1 and 3
        policy.update(obs, np.array([1, 3]), np.array([1.0, 0.0]))
    p = policy.probabilities(obs)
    assert 0.1 < p[0].max() < 0.9 and 0.1 < p[1].max() < 0.9  # several candidates drawn: the test has teeth
    batch = {key: np.concatenate([np.repeat(v[:1], n, axis=0), np.repeat(v[1:], n, axis=0)]) for key, v in obs.items()}
    a = policy.select(batch)
    for row in range(2):
        freq = np.bincount(a[row * n:(row + 1) * n], minlength=k) / n
        tol = 4.5 * np.sqrt(p[row] * (1 - p[row]) / n) + ERROR_BOUND
        assert np.all(np.abs(freq - p[row]) <= tol), (row, freq, p[row])
