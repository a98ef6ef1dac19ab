"""AdSession env, the Gymnasium→SB3 vector adapter, and the SB3 agents behind ``Policy``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import adsim  # noqa: F401  (registers the envs)
from adsim.envs.ad_session import AdSessionEnv, AdSessionVectorEnv
from adsim.session import make_session_config
from agents.base import RandomPolicy
from agents.registry import make_policy
from agents.sb3_adapter import SB3VecEnv

torch.set_num_threads(1)
TINY = {"preset": "tiny"}


def vec(n: int, **kw) -> AdSessionVectorEnv:
    return gym.make_vec("adsim/AdSession-v0", num_envs=n, vectorization_mode="vector_entry_point", **{**TINY, **kw})


def session_stats(env: AdSessionVectorEnv, choose, steps: int, seed: int = 0) -> tuple[float, float]:
    """Mean return and length of the sessions finished in ``steps`` vector steps; ``choose(obs, info, t)``."""
    obs, info = env.reset(seed=seed)
    ret, length = np.zeros(env.num_envs), np.zeros(env.num_envs)
    returns, lengths = [], []
    for t in range(steps):
        obs, r, term, trunc, info = env.step(choose(obs, info, t))
        ret += r
        length += 1
        done = term | trunc
        returns += ret[done].tolist()
        lengths += length[done].tolist()
        ret[done] = length[done] = 0
    return float(np.mean(returns)), float(np.mean(lengths))


# ----------------------------------------------------------------------------- the environment
def test_env_checkers_pass():
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    gym_check(gym.make("adsim/AdSession-v0", **TINY).unwrapped, skip_render_check=True)
    sb3_check(AdSessionEnv(preset="tiny"), warn=False)


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        ({"horizon": 0}, ValueError, r"horizon == 0, must be in \[1"),
        ({"fatigue_creative": -1.0}, ValueError, r"fatigue_creative == -1.0"),
        ({"memory_halflife": 0.0}, ValueError, r"memory_halflife == 0.0, must be in \(0"),
        ({"leave_base": 1.5}, ValueError, r"leave_base == 1.5, must be in \[0.0, 1.0\]"),
        ({"n_candidates": 1}, ValueError, r"n_candidates == 1"),
        ({"campaign": 2}, ValueError, r"campaign == 2, must be in \[0, 1\]"),
        ({"drift_rate": "fast"}, TypeError, r"drift_rate must be a number"),
        ({"fatigue": 1.0}, ValueError, r"unknown config key 'fatigue'; did you mean"),
    ],
)
def test_invalid_config_raises_at_construction(overrides, error, match):
    with pytest.raises(error, match=match):
        make_session_config("tiny", **overrides)


def test_bad_preset_and_actions_raise():
    with pytest.raises(ValueError, match="unknown preset 'fatigued'; did you mean 'fatigue'"):
        make_session_config("fatigued")
    env = AdSessionEnv(preset="tiny")
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action == 4, must be in \[0, 3\]"):
        env.step(4)


def test_single_env_is_deterministic_under_seed():
    def trace(seed):
        env = AdSessionEnv(preset="tiny")
        obs, info = env.reset(seed=seed)
        out = [obs["session"], info["click_probs"]]
        for t in range(40):
            obs, r, term, trunc, info = env.step(t % 3)
            out += [obs["session"], obs["context"], info["click_probs"], np.array([r, term, trunc])]
            if term or trunc:
                obs, info = env.reset()
        return out

    a, b, c = trace(3), trace(3), trace(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_vector_env_equals_single_envs_including_autoreset():
    n, seed = 3, 11
    venv = vec(n)
    singles = [AdSessionEnv(preset="tiny") for _ in range(n)]
    vobs, _ = venv.reset(seed=[seed + i for i in range(n)])  # sub-env i = a single env seeded s + i
    sobs = [e.reset(seed=seed + i)[0] for i, e in enumerate(singles)]
    for i, o in enumerate(sobs):
        for k in ("user", "context", "campaign", "candidates", "session"):
            assert np.array_equal(vobs[k][i], o[k]), (i, k)
    resets = 0
    for t in range(40):
        actions = np.array([(t * (i + 1)) % 4 for i in range(n)])
        vobs, vr, vterm, vtrunc, vinfo = venv.step(actions)
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(int(actions[i]))
            assert (r, term, trunc) == (vr[i], vterm[i], vtrunc[i])
            if term or trunc:  # same-step autoreset: final obs in info, new session's obs returned
                resets += 1
                assert vinfo["_final_obs"][i]
                assert np.array_equal(vinfo["final_obs"]["session"][i], o["session"])
                o, info = env.reset()
            for k in ("user", "context", "campaign", "candidates", "session"):  # ctr_estimate is shared
                assert np.array_equal(vobs[k][i], o[k]), (t, i, k)
            assert np.allclose(vinfo["click_probs"][i], info["click_probs"])
    assert resets >= 3


def test_vector_env_of_one_equals_the_single_env_including_the_ctr_estimate():
    venv, env = vec(1), AdSessionEnv(preset="tiny")
    vobs, _ = venv.reset(seed=2)
    obs, _ = env.reset(seed=2)
    for t in range(30):
        vobs, vr, vterm, vtrunc, _ = venv.step(np.array([t % 4]))
        obs, r, term, trunc, _ = env.step(t % 4)
        if term or trunc:
            obs, _ = env.reset()
        assert all(np.array_equal(vobs[k][0], obs[k]) for k in obs)
        assert (vr[0], vterm[0], vtrunc[0]) == (r, term, trunc)


def test_common_random_numbers_whatever_the_actions():
    """Episode e of sub-env i has the same user and uniforms under any policy."""

    def users(policy):
        env = vec(8)
        env.reset(seed=5)
        seen = {}
        for t in range(60):
            core = env.unwrapped.core
            for i in range(8):
                seen.setdefault((i, int(core.episode[i])), (int(core.user[i]), core.u_click[i].copy()))
            env.step(policy(t))
        return seen

    a = users(lambda t: np.zeros(8, dtype=np.int64))
    b = users(lambda t: np.arange(8) * (t + 1) % 4)
    common = set(a) & set(b)
    assert len(common) >= 30
    assert all(a[k][0] == b[k][0] and np.array_equal(a[k][1], b[k][1]) for k in common)


def test_repeating_one_creative_makes_users_leave_sooner():
    env = vec(256, preset="default")
    k = env.single_action_space.n
    same_ret, same_len = session_stats(env, lambda o, i, t: np.zeros(256, dtype=np.int64), 60)
    rot_ret, rot_len = session_stats(env, lambda o, i, t: np.full(256, t % k), 60)
    assert same_len < 0.6 * rot_len  # measured ≈ 3.8 vs 13.6 impressions
    assert same_ret < rot_ret


def test_without_annoyance_sessions_only_truncate():
    env = vec(64, leave_base=0.0, leave_gain=0.0)
    env.reset(seed=0)
    for _ in range(25):
        _, _, term, trunc, _ = env.step(np.zeros(64, dtype=np.int64))
        assert not term.any()
    assert env.unwrapped.core.episode.min() == 2  # horizon 10, 25 steps: every slot truncated twice


def test_myopic_oracle_info_and_regret():
    env = vec(16)
    obs, info = env.reset(seed=1)
    best = info["optimal_action"]
    assert np.array_equal(best, np.argmax(info["click_probs"], axis=1))
    _, _, _, _, step_info = env.step(best)
    assert np.allclose(step_info["regret"], 0.0)
    worst = np.argmin(step_info["click_probs"], axis=1)
    _, _, _, _, step_info2 = env.step(worst)
    assert (step_info2["regret"] >= 0).all() and step_info2["regret"].max() > 0


# ----------------------------------------------------------------------------- the SB3 adapter
def test_adapter_shapes_terminal_observation_and_seeding():
    n = 4
    venv = SB3VecEnv(vec(n), seed=7)
    obs = venv.reset()
    ref_obs, _ = vec(n).reset(seed=7)
    assert all(np.array_equal(obs[k], ref_obs[k]) for k in obs)
    assert obs["session"].shape == (n, venv.observation_space["session"].shape[0])
    finished = 0
    for t in range(30):
        venv.step_async(np.full(n, t % 2))
        obs, rewards, dones, infos = venv.step_wait()
        assert rewards.shape == (n,) and dones.shape == (n,) and len(infos) == n
        for i, info in enumerate(infos):
            assert ("terminal_observation" in info) == bool(dones[i])
            if dones[i]:
                finished += 1
                term = info["terminal_observation"]
                assert set(term) == set(obs) and venv.observation_space.contains(term)
                assert obs["session"][i][0] == 0.0  # the new session starts with no impressions
                assert term["session"][0] > 0.0
                if info["TimeLimit.truncated"]:  # truncation only at the horizon (t / H == 1)
                    assert term["session"][0] == 1.0
    assert finished >= 4


def test_adapter_infos_hold_the_keys_asked_for():
    n = 6
    full, none, some = (SB3VecEnv(vec(n), seed=3, info_keys=k) for k in (None, (), ("regret",)))
    for v in (full, none, some):
        v.reset()
    raw = vec(n)
    raw.reset(seed=3)
    for t in range(12):
        a = np.full(n, t % 4)
        _, _, term, trunc, info = raw.step(a)
        rows = [v.step(a)[3] for v in (full, none, some)]
        for i in range(n):
            timeout = bool(trunc[i] and not term[i])
            extra = {"terminal_observation"} if term[i] or trunc[i] else set()
            assert set(rows[0][i]) == {"click_probs", "expected_reward", "optimal_action", "regret", "clicked",
                                       "leave_prob", "reward_expected", "TimeLimit.truncated"} | extra
            assert all(np.array_equal(rows[0][i][k], info[k][i]) for k in info if not k.startswith(("_", "final")))
            assert set(rows[1][i]) == {"TimeLimit.truncated"} | extra and rows[1][i]["TimeLimit.truncated"] == timeout
            assert set(rows[2][i]) == {"regret", "TimeLimit.truncated"} | extra
            assert rows[2][i]["regret"] == info["regret"][i]
    masked = {"x": np.arange(n), "_x": np.arange(n) % 2 == 0, "y": np.ones(n)}  # x only where its mask is set
    infos = full._split(masked, np.zeros(n, bool), np.ones(n, bool))
    assert [("x" in r) for r in infos] == [True, False] * 3 and all(r["y"] == 1 for r in infos)
    assert all(r["TimeLimit.truncated"] is True for r in infos)
    with pytest.raises(TypeError, match="info_keys"):
        SB3VecEnv(vec(2), info_keys="regret")


def test_adapter_accepts_gymnasium_sync_vector_env_and_rejects_next_step():
    sync = SyncVectorEnv([lambda: AdSessionEnv(preset="tiny")] * 2, autoreset_mode=AutoresetMode.SAME_STEP)
    venv = SB3VecEnv(sync, seed=0)
    venv.reset()
    seen = 0
    for _ in range(25):
        _, _, dones, infos = venv.step(np.zeros(2, dtype=np.int64))
        seen += sum("terminal_observation" in infos[i] for i in np.flatnonzero(dones))
    assert seen >= 2
    nxt = SyncVectorEnv([lambda: AdSessionEnv(preset="tiny")], autoreset_mode=AutoresetMode.NEXT_STEP)
    with pytest.raises(ValueError, match="autoreset_mode"):
        SB3VecEnv(nxt)


# ----------------------------------------------------------------------------- SB3 agents
def evaluate(policy, seed: int = 100) -> float:
    env = vec(64)
    return session_stats(env, lambda o, i, t: policy.select(o, i), 120, seed=seed)[0]


def test_short_ppo_run_beats_random_on_tiny_sessions():
    ppo = make_policy("ppo", train_steps=8000, n_steps=16, n_epochs=10, learning_rate=2e-3, batch_size=128,
                      ignore_keys=("candidates", "campaign", "user", "context"))
    ppo.reset(4, seed=0)
    assert ppo.learn(vec(16), scenario_seed=0) >= 8000
    rand = RandomPolicy()
    rand.reset(4, seed=0)
    r_ppo, r_rand = evaluate(ppo), evaluate(rand)
    assert r_ppo > r_rand + 0.2, (r_ppo, r_rand)  # measured ≈ 1.03 vs 0.64 clicks per session


@pytest.mark.parametrize("name, margin", [("ppo", 0.2), ("a2c", 0.15), ("dqn", 0.08)])
def test_agents_learn_at_the_perf_suite_sizes(name, margin):
    """The sizes ``adsim perf --suite rl`` times (1024 envs, large updates) are honest RL settings:
    eight PPO rollouts' worth of steps beat the random policy by a margin."""
    from experiments.perf.rl import N_ENVS, SIZES

    pol = make_policy(name, train_steps=8 * 16 * N_ENVS, ignore_keys=("candidates", "campaign", "user", "context"),
                      **SIZES[name])
    pol.reset(4, seed=0)
    pol.learn(vec(N_ENVS), scenario_seed=0)
    rand = RandomPolicy()
    rand.reset(4, seed=0)
    r_pol, r_rand = evaluate(pol), evaluate(rand)
    assert r_pol > r_rand + margin, (r_pol, r_rand)  # measured ≈ 0.93 (PPO), 0.90 (A2C), 0.77 (DQN) vs 0.65


@pytest.mark.parametrize("name, extra", [("ppo", {}), ("dqn", {"learning_starts": 64, "train_freq": 1})])
def test_save_load_gives_same_actions(tmp_path, name, extra):
    pol = make_policy(name, train_steps=256, **extra)
    pol.reset(4, seed=1)
    pol.learn(vec(4), scenario_seed=0)
    obs, info = vec(32).reset(seed=9)
    before = pol.select(obs, info)
    path = pol.save(tmp_path / name)
    assert path.exists() and path.suffix == ".zip"
    other = make_policy(name)
    other.reset(4, seed=2)
    other.load(path)
    assert np.array_equal(other.select(obs, info), before)
    p = other.probabilities(obs, info)
    assert np.array_equal(np.argmax(p, axis=1), before) and np.allclose(p.sum(axis=1), 1.0)


def test_dqn_trains_on_a_single_env_and_acts_on_batches():
    dqn = make_policy("dqn", train_steps=300, learning_starts=100, train_freq=1)
    dqn.reset(4, seed=0)
    assert dqn.learn(AdSessionEnv(preset="tiny"), scenario_seed=0) == 300
    obs, info = vec(8).reset(seed=0)
    actions = dqn.select(obs, info)
    assert actions.shape == (8,) and ((0 <= actions) & (actions < 4)).all()


def test_training_is_reproducible_and_stochastic_probabilities_are_a_distribution():
    def trained(seed):
        pol = make_policy("a2c", train_steps=512, deterministic=False)
        pol.reset(4, seed=seed)
        pol.learn(vec(8), scenario_seed=0)
        return pol

    obs, _ = vec(32).reset(seed=3)
    p1, p2, p3 = (trained(s).probabilities(obs) for s in (5, 5, 6))
    assert np.array_equal(p1, p2) and not np.array_equal(p1, p3)
    assert np.allclose(p1.sum(axis=1), 1.0) and (p1 > 0).all()


def test_policy_hyperparameters_are_validated():
    with pytest.raises(ValueError, match="unknown hyperparameter 'n_step' for policy 'ppo'"):
        make_policy("ppo", n_step=3)
    with pytest.raises(ValueError, match="train_steps == -1"):
        make_policy("dqn", train_steps=-1)
    pol = make_policy("ppo", ignore_keys=("nope",))
    pol.reset(4, seed=0)
    with pytest.raises(ValueError, match="unknown observation key 'nope'"):
        pol.learn(vec(2))
    with pytest.raises(RuntimeError, match="no model"):
        pol.select(vec(2).reset(seed=0)[0])


# ----------------------------------------------------------------------------- the study
def test_linucb_on_arbitrary_observation_keys_learns_a_context_dependent_best_arm():
    from agents.linear import LinUCB

    pol = LinUCB(alpha=0.1, features=("x",))
    pol.reset(2, seed=0)
    rng = np.random.default_rng(0)
    def obs(x):  # the env's keys (unused here) plus a custom feature block "x"
        n = x.shape[0]
        return {"x": x, "user": np.zeros((n, 1)), "context": np.zeros((n, 1)), "campaign": np.zeros((n, 3)),
                "candidates": np.zeros((n, 18), dtype=np.int64), "ctr_estimate": np.zeros((n, 2))}

    for _ in range(50):  # arm 0 pays when x = 1, arm 1 when x = 0
        x = rng.integers(0, 2, size=(16, 1)).astype(np.float64)
        a = rng.integers(0, 2, size=16)
        pol.update(obs(x), a, ((a == 0) == (x[:, 0] == 1)).astype(float))
    assert pol.select(obs(np.array([[1.0], [0.0]]))).tolist() == [0, 1]
    no_x = obs(np.zeros((2, 1)))
    del no_x["x"]
    with pytest.raises(ValueError, match="observation has no key 'x'"):
        pol.select(no_x)


def test_perf_suite_training_rate_reports_what_it_timed():
    from experiments.perf.rl import train_rate

    out = train_rate("dqn", 64, 1024, batch_size=64, train_freq=1, learning_starts=128)
    assert out["env_steps"] == 1024 and out["num_envs"] == 64 and out["device"] == "cpu"
    assert out["torch_threads"] == 1 and out["sizes"]["batch_size"] == 64
    assert 0 < out["env_steps_per_s"] and 0 < out["env_steps_per_cpu_s"]
    assert abs(out["env_steps_per_s"] * out["seconds"] - 1024) < 1024 * 0.05


def test_a_ppo_run_under_bench_writes_tensorboard_event_files(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed in this environment (it is in the dev "
                                              "and rl extras: make install)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from experiments.cli import main

    cfg = tmp_path / "ppo.toml"
    cfg.write_text('seeds = [0]\nsteps = 6\nbatch_size = 4\n[scenarios.s]\nenv = "adsim/AdSession-v0"\n'
                   'preset = "fatigue"\nhorizon = 5\nn_users = 200\nn_products = 40\n'
                   '[policies.ppo]\ntrain_steps = 64\nn_steps = 8\nbatch_size = 16\nn_epochs = 1\n')
    out = tmp_path / "out"
    assert main(["bench", "--config", str(cfg), "--out", str(out), "--jobs", "1", "--no-progress"]) == 0
    run = out / "artifacts" / "s__ppo__seed0"
    events = sorted(run.glob("events.out.tfevents.*"))
    assert events and (run / "progress.csv").exists() and (run / "model.zip").exists()
    acc = EventAccumulator(str(run))
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    assert any(t.startswith("train/") for t in scalars) and "time/fps" in scalars, scalars
