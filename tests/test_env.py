"""Contract, determinism and common-random-numbers tests of CreativeSelection."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from adsim.envs import CreativeSelectionVectorEnv
from tests.conftest import ENV_ID, make_vec

MODES = ["pool", "personalized"]


@pytest.mark.parametrize("mode", MODES)
def test_gymnasium_and_sb3_env_checkers(mode):
    gym_check_env(gym.make(ENV_ID, mode=mode, horizon=50).unwrapped)
    sb3_check_env(gym.make(ENV_ID, mode=mode, horizon=50))


def test_make_vec_returns_native_vector_env():
    env = make_vec(8)
    assert isinstance(env.unwrapped, CreativeSelectionVectorEnv)
    assert isinstance(env.unwrapped, gym.vector.VectorEnv)


@pytest.mark.parametrize("mode", MODES)
def test_vector_reset_step_autoreset(mode):
    n, horizon = 6, 5
    env = make_vec(n, mode=mode, horizon=horizon)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    first = {k: v.copy() for k, v in obs.items()}
    rng = np.random.default_rng(0)
    for t in range(horizon):
        obs, reward, terminated, truncated, info = env.step(rng.integers(0, 8, n))
        assert env.observation_space.contains(obs)
        assert reward.shape == (n,) and not terminated.any()
        assert truncated.all() == (t == horizon - 1)
        assert info["click_probs"].shape == (n, 8) and info["regret"].shape == (n,)
    assert "final_obs" in info and info["_final_obs"].all()
    # the returned obs is the next episode's first request, not the final one
    assert not np.array_equal(obs["user"], info["final_obs"]["user"])
    obs2, *_ = env.step(np.zeros(n, dtype=int))  # stepping after autoreset works
    assert env.observation_space.contains(obs2)
    assert not np.array_equal(first["user"], obs["user"])  # episode 1 differs from episode 0


def _rollout_single(seed, actions, **kw):
    env = gym.make(ENV_ID, **kw)
    obs, info = env.reset(seed=seed)
    out = [(obs, 0.0, False, info)]
    for a in actions:
        obs, r, term, trunc, info = env.step(int(a))
        out.append((obs, r, trunc, info))
        if trunc:
            obs, info = env.reset()
            out.append((obs, 0.0, False, info))
    return out


@pytest.mark.parametrize("mode", MODES)
def test_single_equals_vector_of_one_including_autoreset(mode):
    horizon = 7
    actions = np.random.default_rng(1).integers(0, 8, 16)
    single = _rollout_single(11, actions, mode=mode, horizon=horizon)
    vec = make_vec(1, mode=mode, horizon=horizon)
    obs, info = vec.reset(seed=11)
    vec_out = [(obs, 0.0, False, info)]
    for a in actions:
        obs, r, term, trunc, info = vec.step(np.array([a]))
        if trunc[0]:
            vec_out.append((info["final_obs"], r[0], True, info["final_info"]))
            # the same-step reset: its info's regret belongs to the action just taken
            vec_out.append((obs, 0.0, False, dict(info, regret=np.zeros(1))))
        else:
            vec_out.append((obs, r[0], False, info))
    assert len(single) == len(vec_out)
    for (so, sr, st, si), (vo, vr, vt, vi) in zip(single, vec_out):
        for k in so:
            np.testing.assert_array_equal(so[k], vo[k][0], err_msg=k)
        assert sr == vr and st == vt
        np.testing.assert_array_equal(si["click_probs"], vi["click_probs"][0])
        assert si["optimal_action"] == vi["optimal_action"][0]
        assert si["regret"] == pytest.approx(float(np.asarray(vi["regret"]).reshape(-1)[0]))


def test_subenv_i_sees_the_stream_of_its_explicit_seed():
    """With a list of seeds, slot i's users, contexts, candidates and truth equal a single env's."""
    vec = make_vec(4, mode="personalized", horizon=50)
    obs, info = vec.reset(seed=[100, 7, 55, 3])
    for i, s in enumerate([100, 7, 55, 3]):
        env = gym.make(ENV_ID, mode="personalized", horizon=50)
        o, inf = env.reset(seed=s)
        for k in ("user", "context", "campaign", "candidates"):
            np.testing.assert_array_equal(o[k], obs[k][i])
        np.testing.assert_array_equal(inf["click_probs"], info["click_probs"][i])


def test_integer_seeds_never_share_streams_across_seeds():
    """Seeds s and s+1 of an N-slot vector env have no slot in common (no s+i overlap)."""
    a, b = make_vec(8, horizon=50).reset(seed=0)[0], make_vec(8, horizon=50).reset(seed=1)[0]
    for i in range(1, 8):  # slot i of seed 0 vs slot i-1 of seed 1 would coincide under s+i
        assert not np.array_equal(a["context"][i], b["context"][i - 1]) or not np.array_equal(
            a["user"][i], b["user"][i - 1])
    single, _ = gym.make(ENV_ID, horizon=50).reset(seed=1)
    np.testing.assert_array_equal(single["user"], b["user"][0])


@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_trajectory(mode):
    actions = np.random.default_rng(2).integers(0, 8, 40)
    a = _rollout_single(5, actions, mode=mode, horizon=15)
    b = _rollout_single(5, actions, mode=mode, horizon=15)
    for (oa, ra, _, ia), (ob, rb, _, ib) in zip(a, b):
        for k in oa:
            np.testing.assert_array_equal(oa[k], ob[k])
        assert ra == rb
    c = _rollout_single(6, actions, mode=mode, horizon=15)
    assert not all(np.array_equal(x[0]["user"], y[0]["user"]) for x, y in zip(a, c))


@pytest.mark.parametrize("mode", MODES)
def test_common_random_numbers_do_not_depend_on_actions(mode):
    """Two different action sequences see the same users, contexts, candidates and coin flips."""
    n, steps = 32, 60
    runs = []
    for policy_seed in (0, 1):
        env = make_vec(n, mode=mode, horizon=25)
        obs, info = env.reset(seed=9)
        acts = np.random.default_rng(policy_seed).integers(0, 8, (steps, n))
        seen, clicks = [], []
        for a in acts:
            seen.append((obs["user"].copy(), obs["context"].copy(), obs["candidates"].copy(),
                         info["click_probs"].copy()))
            obs, r, _, _, info = env.step(a)
            clicks.append((info["clicked"].copy(), a))
        runs.append((seen, clicks))
    (s0, c0), (s1, c1) = runs
    for x, y in zip(s0, s1):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    # The uniform behind a click is shared: where both runs showed the same creative, outcomes agree.
    same = [(k0 == k1)[a0 == a1].all() for (k0, a0), (k1, a1) in zip(c0, c1)]
    assert all(same)
    differing = sum(int((a0 != a1).sum()) for (_, a0), (_, a1) in zip(c0, c1))
    assert differing > 0.5 * n * steps


def test_oracle_has_zero_regret_random_positive():
    n = 64
    for policy in ("oracle", "random"):
        env = make_vec(n, horizon=100)
        obs, info = env.reset(seed=4)
        rng, total = np.random.default_rng(0), 0.0
        for _ in range(100):
            a = info["optimal_action"] if policy == "oracle" else rng.integers(0, 8, n)
            obs, r, _, _, info = env.step(a)
            total += info["regret"].sum()
        if policy == "oracle":
            assert total == 0.0
        else:
            assert total > 0.05 * n * 100 * 0.03  # well above zero: ~ >5 % of clicks


@pytest.mark.parametrize("reward", ["conversion", "revenue"])
def test_conversion_and_revenue_rewards(reward):
    n = 256
    env = make_vec(n, reward=reward, horizon=200)
    obs, info = env.reset(seed=0)
    clicks = conv = total = 0.0
    for _ in range(200):
        obs, r, _, _, info = env.step(np.zeros(n, dtype=int))
        clicks += info["clicked"].sum()
        conv += info["converted"].sum()
        total += r.sum()
        assert (r[~info["converted"]] == 0).all()
        assert np.all(info["expected_reward"] <= info["click_probs"] * (1 if reward == "conversion" else 1e3))
    assert 0 < conv < clicks
    if reward == "conversion":
        assert total == conv
    else:
        assert total > conv  # prices > 1


def test_render_ansi_shows_candidates():
    env = gym.make(ENV_ID, render_mode="ansi", language="zh")
    env.reset(seed=0)
    text = env.render()
    assert text.count("[") >= 8 and "p=" in text


@pytest.mark.parametrize("env_id", [ENV_ID, "adsim/AdSession-v0"])
def test_render_rgb_array_and_sb3_make_vec_env(env_id):
    # SB3's make_vec_env asks for render_mode="rgb_array": the envs draw their text as an image
    from stable_baselines3.common.env_util import make_vec_env

    vec = make_vec_env(env_id, n_envs=2, seed=0)
    obs = vec.reset()
    assert obs["user"].shape[0] == 2
    img = vec.envs[0].render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.shape[0] > 50
    assert img.min() < 100 and img.max() == 255  # dark text on white
    with pytest.raises(ValueError, match=r"render_mode == 'depth_array', must be None or one of \['ansi', 'rgb_array'\]"):
        type(vec.envs[0].unwrapped)(render_mode="depth_array")
