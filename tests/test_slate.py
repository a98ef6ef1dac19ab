"""SlateSelection: click models (likelihoods against simulated frequencies, exact oracles against
brute force), the env's contract (both checkers, single ≡ vector, determinism, common random
numbers, stacked seeds bit for bit) and its input checks."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import adsim  # noqa: F401  (registers the envs)
from adsim import rng as crng
from adsim.click_models import ClickModel
from adsim.config import make_config
from adsim.envs.spaces import Slate, SlateBatch
from adsim.requests import SlateStreams
from conftest import assert_stacked_is_each_seed_alone

ENV_ID = "adsim/SlateSelection-v0"
SMALL = {"n_users": 300, "n_products": 40, "n_campaigns": 4}
MODELS = {
    "pbm": ClickModel("pbm", 3, examination=(1.0, 0.75, 0.55)),
    "pbm_unordered": ClickModel("pbm", 3, examination=(0.5, 1.0, 0.7)),  # examination not monotone
    "cascade": ClickModel("cascade", 3),
    "dcm": ClickModel("dcm", 3, continuation=(0.75, 0.7333, 0.7333)),
    "dcm_steep": ClickModel("dcm", 3, continuation=(0.9, 0.4, 0.1)),
}
PATTERNS = np.array(list(itertools.product([False, True], repeat=3)))  # the 8 click vectors of 3 positions


def vec(num_envs: int, seed_world: int = 0, **kw):
    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point",
                        **{**SMALL, "seed": seed_world, **kw})


# ----------------------------------------------------------------- click models
def pattern_frequencies(model: ClickModel, a: np.ndarray, n: int, seed: int) -> np.ndarray:
    """(8,) simulated frequency of each click vector on slates of attractions ``a`` (3,)."""
    rng = np.random.default_rng(seed)
    clicks = model.simulate(np.broadcast_to(a, (n, 3)), rng.random((n, 3)), rng.random((n, 3)))
    code = (clicks * np.array([4, 2, 1])).sum(axis=1)  # PATTERNS' order: position 0 is the high bit
    return np.bincount(code, minlength=8) / n


@pytest.mark.parametrize("name", list(MODELS))
def test_likelihood_and_expected_clicks_match_simulated_frequencies(name):
    model, n = MODELS[name], 400_000
    for a in (np.array([0.5, 0.3, 0.6]), np.array([0.9, 0.2, 0.45])):
        lik = model.likelihood(np.broadcast_to(a, (8, 3)), PATTERNS)
        assert lik.sum() == pytest.approx(1.0, abs=1e-12)
        freq = pattern_frequencies(model, a, n, seed=1)
        se = np.sqrt(lik * (1 - lik) / n)
        assert np.all(np.abs(freq - lik) <= 4.5 * se + 1e-12), (freq, lik)
        # marginals and the expected reward from the same simulation
        marg = (freq[:, None] * PATTERNS).sum(axis=0)
        assert np.allclose(marg, model.position_probs(a), atol=4.5 * np.sqrt(0.25 / n))
        assert (freq * PATTERNS.sum(axis=1)).sum() == pytest.approx(float(model.expected_clicks(a)), abs=0.006)


def test_a_wrong_click_model_fails_the_frequency_check():
    """The margins above separate the models: each model's frequencies reject every other's likelihood."""
    a, n = np.array([0.5, 0.3, 0.6]), 400_000
    for true, wrong in itertools.permutations(["pbm", "cascade", "dcm", "dcm_steep"], 2):
        freq = pattern_frequencies(MODELS[true], a, n, seed=1)
        lik = MODELS[wrong].likelihood(np.broadcast_to(a, (8, 3)), PATTERNS)
        assert np.any(np.abs(freq - lik) > 4.5 * np.sqrt(lik * (1 - lik) / n) + 1e-12), (true, wrong)


def test_click_probabilities_worked_by_hand():
    a = np.array([0.5, 0.2, 0.4])
    # PBM: e_l · a_l
    assert np.allclose(MODELS["pbm"].position_probs(a), [0.5, 0.15, 0.22])
    # cascade: 0.5, 0.2 · 0.5 = 0.1, 0.4 · 0.5 · 0.8 = 0.16; at most one click
    assert np.allclose(MODELS["cascade"].position_probs(a), [0.5, 0.1, 0.16])
    # DCM λ = (0.9, 0.4, ·): reach 1, 1 − 0.1·0.5 = 0.95, 0.95 · (1 − 0.6·0.2) = 0.836
    assert np.allclose(MODELS["dcm_steep"].position_probs(a), [0.5, 0.19, 0.3344])
    assert MODELS["cascade"].likelihood(a, [True, True, False]) == 0.0  # nothing after the cascade's click


@pytest.mark.parametrize("name", list(MODELS))
def test_oracle_is_exact_against_brute_force_over_all_ordered_slates(name):
    model, K, L = MODELS[name], 5, 3
    rng = np.random.default_rng(7)
    att = np.concatenate([rng.random((1500, K)),  # the whole range: large attractions stress the DCM
                          rng.random((500, K)) * 0.1,
                          np.round(rng.random((500, K)), 1)])  # ties
    slates = np.array(list(itertools.permutations(range(K), L)))  # (60, 3)
    value = model.expected_clicks(att[:, slates])  # (M, 60): every ordered slate of every request
    slate, best = model.oracle(att)
    assert np.all(best >= value.max(axis=1) - 1e-12)
    assert np.array_equal(best, model.expected_clicks(np.take_along_axis(att, slate, axis=1)))
    assert np.all(np.sort(slate, axis=1)[:, 1:] != np.sort(slate, axis=1)[:, :-1])  # distinct


def test_dcm_needs_non_increasing_continuation_for_the_descending_oracle():
    """With λ growing down the page the descending top-L slate is beaten (why the config forbids it)."""
    with pytest.raises(ValueError, match="non-increasing"):
        ClickModel("dcm", 3, continuation=(0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="continuation == \\[0.2, 0.9, 0.9\\], must be non-increasing"):
        make_config(click_model="dcm", continuation=[0.2, 0.9, 0.9])
    # λ = (0, 1, 1) with a = (0.9, 0.8, 0.7): descending gives 0.9 + 0.1·(0.8 + 0.7) = 1.05; the least
    # attractive first gives 0.7 + 0.3·(0.9 + 0.8) = 1.21
    a, lam = np.array([0.9, 0.8, 0.7]), np.array([0.0, 1.0, 1.0])

    def dcm_clicks(x):  # Σ_l x_l Π_{j<l} (1 − (1 − λ_j) x_j)
        reach = np.cumprod(np.concatenate([[1.0], 1 - (1 - lam[:2]) * x[:2]]))
        return float((x * reach).sum())

    assert dcm_clicks(a) == pytest.approx(1.05)
    assert dcm_clicks(a[[2, 0, 1]]) == pytest.approx(1.21)


def test_default_examination_and_continuation_follow_the_slot_factors():
    cfg = make_config(slate_size=5)
    # slot factors (1, 0.75, 0.55), then × 0.55 / 0.75 per position: 0.40333…, 0.29578…
    assert np.allclose(cfg.slate_examination, [1.0, 0.75, 0.55, 0.55 ** 2 / 0.75, 0.55 ** 3 / 0.75 ** 2])
    assert np.allclose(cfg.slate_continuation, [0.75, 0.55 / 0.75, 0.55 / 0.75, 0.55 / 0.75, 0.55 / 0.75])
    cfg = make_config(slot_factors=(1.0, 0.5, 0.45), slate_size=4, click_model="dcm")
    assert np.allclose(cfg.slate_continuation, [0.5, 0.5, 0.5, 0.5])  # ratios 0.5, 0.9 … made non-increasing
    assert make_config("obd", slate_size=10).slate_examination == (1.0,) * 10


# ----------------------------------------------------------------- the env
@pytest.mark.parametrize("kw", [dict(click_model="pbm"), dict(click_model="dcm", mode="personalized"),
                                dict(click_model="cascade", slate_size=1, n_candidates=4)])
def test_gymnasium_and_sb3_env_checkers(kw):
    env = gym.make(ENV_ID, **SMALL, horizon=20, **kw).unwrapped
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)


def test_slate_space_samples_and_contains_only_distinct_slates():
    space = Slate(5, 3, seed=0)
    for _ in range(200):
        s = space.sample()
        assert space.contains(s) and len(set(s.tolist())) == 3
    assert not space.contains(np.array([1, 1, 2])) and not space.contains(np.array([0, 1, 5]))
    batch = gym.vector.utils.batch_space(space, 4)
    assert isinstance(batch, SlateBatch) and batch.contains(batch.sample())
    assert not batch.contains(np.array([[0, 1, 2]] * 3 + [[4, 4, 0]]))


def test_single_equals_vector_of_one_including_autoreset():
    single = gym.make(ENV_ID, **SMALL, horizon=7, click_model="dcm")
    vector = vec(1, horizon=7, click_model="dcm")
    o1, i1 = single.reset(seed=5)
    o2, i2 = vector.reset(seed=5)
    rng = np.random.default_rng(0)
    for t in range(16):
        for k in o1:
            assert np.array_equal(o1[k], o2[k][0]), (t, k)
        assert np.array_equal(i1["attraction"], i2["attraction"][0])
        assert np.array_equal(i1["oracle_slate"], i2["oracle_slate"][0])
        slate = rng.permutation(8)[:3]
        o1, r1, _, tr1, i1 = single.step(slate)
        o2, r2, _, tr2, i2 = vector.step(slate[None])
        assert r1 == r2[0] and tr1 == tr2[0] and i1["regret"] == i2["regret"][0]
        assert np.array_equal(i1["clicks"], i2["clicks"][0])
        if tr1:
            assert np.array_equal(i2["final_obs"]["candidates"][0], o1["candidates"])
            o1, i1 = single.reset()


def run_policy(env, seed: int, choose, steps: int = 12):
    obs, info = env.reset(seed=seed)
    trace = []
    for t in range(steps):
        slates = choose(t, info)
        nobs, reward, _, _, ninfo = env.step(slates)
        trace.append((obs, info, slates, reward, ninfo))
        obs, info = nobs, ninfo
    return trace


def random_slates(seed: int, n: int, K: int = 8, L: int = 3):
    rng = np.random.default_rng(seed)
    return lambda t, info: np.argsort(rng.random((n, K)), axis=1)[:, :L]


@pytest.mark.parametrize("click_model", ["pbm", "cascade", "dcm"])
def test_vector_env_is_deterministic_under_a_seed(click_model):
    a = run_policy(vec(16, horizon=5, click_model=click_model), 3, random_slates(1, 16))
    b = run_policy(vec(16, horizon=5, click_model=click_model), 3, random_slates(1, 16))
    for (o1, i1, s1, r1, n1), (o2, i2, s2, r2, n2) in zip(a, b):
        assert all(np.array_equal(o1[k], o2[k]) for k in o1)
        assert np.array_equal(r1, r2) and np.array_equal(n1["clicks"], n2["clicks"])
        assert np.array_equal(n1["regret"], n2["regret"])


@pytest.mark.parametrize("click_model", ["pbm", "cascade", "dcm"])
def test_common_random_numbers_across_policies(click_model):
    """Two policies in one seed meet the same users, candidates and truth; where they show the same
    slate they get the same clicks; and every click is the stream's uniform below its probability."""
    n, K = 64, 8
    env = vec(n, horizon=50, click_model=click_model, target_ctr=0.2)
    oracle = run_policy(env, 9, lambda t, info: info["oracle_slate"])
    mixed_rng = np.random.default_rng(2)

    def mixed(t, info):  # the oracle on even rows, a random slate on odd rows
        s = info["oracle_slate"].copy()
        s[1::2] = np.argsort(mixed_rng.random((n // 2, K)), axis=1)[:, :3]
        return s

    other = run_policy(env, 9, mixed)
    keys = crng.stream_keys(9, n)
    for t, ((o1, i1, s1, r1, n1), (o2, i2, s2, r2, n2)) in enumerate(zip(oracle, other)):
        for k in ("user", "context", "campaign", "candidates", "page"):
            assert np.array_equal(o1[k], o2[k]), (t, k)
        assert np.array_equal(i1["attraction"], i2["attraction"])
        assert np.array_equal(n1["clicks"][::2], n2["clicks"][::2])
        assert np.all(n1["regret"] == 0.0) and np.all(n2["regret"][1::2] >= -1e-15)
        # the page's clicks: position l's uniform of stream CLICK + l at (key, episode 0, step t)
        u = crng.uniforms(keys, np.zeros(n, np.int64), np.full(n, t), 3, offset=SlateStreams.CLICK)
        a = np.take_along_axis(i2["attraction"], s2, axis=1)
        assert np.array_equal(env.click_model.expected_clicks(a), n2["reward_expected"])  # the env's model scores slates
        assert np.array_equal(env.click_model.position_probs(a), n2["slate_click_probs"])
        if click_model == "pbm":
            assert np.array_equal(n2["clicks"], u < a * np.array(make_config().slate_examination))
        else:  # the first position is always scanned
            assert np.array_equal(n2["clicks"][:, 0], u[:, 0] < a[:, 0])
    assert sum(r.sum() for *_, r, _ in oracle) > sum(r.sum() for *_, r, _ in other)


@pytest.mark.parametrize("click_model", ["pbm", "cascade", "dcm"])
def test_env_clicks_follow_the_likelihood(click_model):
    """Every click vector's count over the env's pages is the sum of its likelihood (its streams' clicks)."""
    n, steps = 2048, 12
    env = vec(n, horizon=100, click_model=click_model, target_ctr=0.25, creative_scale=1.0)
    model = env.unwrapped.core.click_model if hasattr(env, "unwrapped") else env.core.click_model
    obs, info = env.reset(seed=4)
    rng = np.random.default_rng(0)
    expected, counts, total = np.zeros(8), np.zeros(8), 0
    for _ in range(steps):
        slates = np.argsort(rng.random((n, 8)), axis=1)[:, :3]
        a = np.take_along_axis(info["attraction"], slates, axis=1)
        expected += model.likelihood(a[:, None, :], PATTERNS[None]).sum(axis=0)
        _, reward, _, _, info = env.step(slates)
        counts += np.bincount((info["clicks"] * np.array([4, 2, 1])).sum(axis=1), minlength=8)
        assert np.array_equal(reward, info["clicks"].sum(axis=1))
        total += n
    assert np.all(np.abs(counts - expected) <= 4.5 * np.sqrt(expected) + 1), (counts, expected)


def test_stacked_seeds_reproduce_unstacked_runs_bit_for_bit():
    cfg = make_config(**SMALL, horizon=6, click_model="dcm", mode="personalized")
    assert_stacked_is_each_seed_alone(
        ENV_ID, cfg, lambda rng, n: np.argsort(rng.random((n, 8)), axis=1)[:, :3],
        lambda a, g, B: a[g * B:(g + 1) * B])  # 14 steps: two autoresets


def test_render_shows_the_page():
    env = gym.make(ENV_ID, **SMALL, render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert "oracle slate" in text and "page of 3" in text and text.count("  [") == 8


@pytest.mark.parametrize("overrides, error, match", [
    (dict(slate_size=5, n_candidates=4), ValueError, "slate_size == 5, must be <= n_candidates == 4"),
    (dict(slate_size=0), ValueError, "slate_size == 0, must be in \\[1, 10\\]"),
    (dict(slate_size=11, n_candidates=20), ValueError, "slate_size == 11, must be in \\[1, 10\\]"),
    (dict(click_model="dcn"), ValueError, "unknown click_model 'dcn'; did you mean 'dcm'"),
    (dict(examination=[1.0, 0.5]), TypeError, "examination must be a list of slate_size == 3 numbers"),
    (dict(examination=[1.0, 0.5, 0.0]), ValueError, "examination\\[2\\] == 0.0, must be in \\(0.0, 1.0\\]"),
    (dict(click_model="cascade", examination=[1.0, 0.5, 0.2]), ValueError, "examination applies to click_model 'pbm'"),
    (dict(reward="conversion"), ValueError, "reward must be 'click'"),
    (dict(fatigue_strength=0.5), ValueError, "fatigue_strength must be 0"),
])
def test_bad_config_raises_naming_the_parameter(overrides, error, match):
    with pytest.raises(error, match=match):
        gym.make(ENV_ID, **SMALL, **overrides)


@pytest.mark.parametrize("slate, match", [
    ([1, 1, 2], "slate \\[1, 1, 2\\] shows candidate 1 twice"),
    ([0, 8, 2], "slate entry == 8, must be in \\[0, 7\\]"),
    ([0, 1], "slate shape \\(2,\\), expected \\(3,\\)"),
])
def test_bad_slate_raises_naming_the_value(slate, match):
    env = gym.make(ENV_ID, **SMALL).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(np.array(slate))
    venv = vec(2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="slate \\[3, 4, 3\\] of sub-env 1 shows candidate 3 twice"):
        venv.step(np.array([[0, 1, 2], [3, 4, 3]]))


def test_perf_slate_suite_prints_json(capsys, monkeypatch):
    import json

    import experiments.perf.slate as slate_perf
    from experiments.cli import main

    monkeypatch.setattr(slate_perf, "_vector", lambda cm, mode, n=4096: lambda: n)  # chunks doing nothing
    monkeypatch.setattr(slate_perf, "_single", lambda cm: lambda: 500)
    assert main(["perf", "--suite", "slate", "--quick"]) == 0
    out = json.loads(capsys.readouterr().out)["slate"]
    assert out["config"] == {"N": 4096, "K": 20, "L": 3, "horizon": 1000}
    assert set(out["meets_target"]) == {"pbm", "cascade", "dcm"}
    assert out["vector_pool_dcm_N4096_slates_per_s"]["repeats"] == 3
    assert out["meets_target"]["pbm"]["cpu"]  # a chunk that does nothing outruns the target


@pytest.mark.parametrize("mode", ["pool", "personalized"])
def test_attraction_is_creative_selections_click_probability_without_the_slot_factor(mode):
    """One core: in one seed the slate env serves CreativeSelection's requests (users, candidates,
    β0), and its attraction times the request's slot factor is CreativeSelection's click probability."""
    from adsim.observation import ad_slot

    cs = gym.make_vec("adsim/CreativeSelection-v0", num_envs=16, vectorization_mode="vector_entry_point",
                      **SMALL, mode=mode, horizon=4)
    sl = vec(16, mode=mode, horizon=4)
    (o1, i1), (o2, i2) = cs.reset(seed=2), sl.reset(seed=2)
    factors = np.array(make_config().world.slot_factors)
    for t in range(6):
        assert np.array_equal(o1["candidates"], o2["candidates"]) and np.array_equal(o1["user"], o2["user"])
        assert np.array_equal(i1["click_probs"], i2["attraction"] * factors[ad_slot(o1["context"])][:, None])
        assert np.all(ad_slot(o2["context"]) == 0)  # the page's context: its top slot
        assert np.array_equal(i1["optimal_action"], i2["oracle_slate"][:, 0])  # PBM: the best at the top
        o1, *_, i1 = cs.step(i2["oracle_slate"][:, 0])
        o2, *_, i2 = sl.step(i2["oracle_slate"])


@pytest.mark.parametrize("name,kw", [("pbm", {"examination": [1.0, 0.7, 0.5, 0.3, 0.3]}), ("cascade", {}),
                                     ("dcm", {"continuation": [0.9, 0.6, 0.6, 0.2, 0.0]})])
def test_random_clicks_is_the_mean_over_every_ordered_slate(name, kw):
    """The random-slate baseline, worked out by brute force over all K!/(K−L)! ordered slates, with
    attractions both large and CTR-sized (where Newton's identities could lose digits)."""
    import itertools

    from adsim.click_models import ClickModel

    rng = np.random.default_rng(5)
    cm = ClickModel(name, 5, **kw)
    for K, scale in ((5, 1.0), (8, 1.0), (8, 0.05)):
        a = rng.uniform(0, scale, (7, K))
        brute = np.mean([cm.expected_clicks(a[:, list(s)]) for s in itertools.permutations(range(K), 5)], axis=0)
        np.testing.assert_allclose(cm.random_clicks(a), brute, rtol=1e-11, atol=0)
    assert cm.random_clicks(rng.uniform(0, 1, (2, 3, 8))).shape == (2, 3)
