"""The benchmark runner on slate scenarios (adsim/SlateSelection-v0): exact regret bookkeeping
against a hand loop, the random-slate baseline, learning slate policies beating it, stacked ≡
unstacked, and the config check that refuses one-slot policies on pages. Tiny sizes (seconds)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.registry import make_policy
from experiments.cli import main
from experiments.runner import parse_config, run_job
from experiments.runner.run import Job, RunResult, policy_seed, run_stack

WORLD = {"n_users": 300, "n_products": 50, "n_campaigns": 4}


def slate_doc(click_model: str = "cascade", mode: str = "pool", **changes) -> dict:
    doc = {"seeds": [1, 2], "steps": 40, "batch_size": 32, "delay": 1, "n_buckets": 8,
           "scenarios": {"page": {"env": "adsim/SlateSelection-v0", "preset": "slate", "mode": mode,
                                  "click_model": click_model, **WORLD}},
           "policies": {"random_slate": {}, "oracle_slate": {}, "cascade_klucb": {}, "top_thompson": {}}}
    doc.update(changes)
    return doc


def test_slate_run_matches_a_hand_loop_over_the_env():
    """The runner's cumulative regret, reward, clicks, expected clicks and random-slate regret are
    the sums of the env's info and of ClickModel.random_clicks, step by step; the oracle's regret is
    exactly 0 and it keeps the whole margin."""
    cfg = parse_config(slate_doc("dcm"))
    result = run_job(Job(cfg, 0, 0, seed=2))  # random_slate
    env = gym.make_vec("adsim/SlateSelection-v0", num_envs=cfg.batch_size, vectorization_mode="vector_entry_point",
                       config=cfg.scenarios[0].env_config(2, cfg.steps))
    policy = make_policy("random_slate")
    policy.reset(20, seed=policy_seed(2, "random_slate"), slate_size=3)
    obs, info = env.reset(seed=cfg.stream_seed(2))
    regret, reward, expected, random_regret = [], [], [], []
    for _ in range(cfg.steps):
        base = env.click_model.random_clicks(info["attraction"])
        obs, r, _, _, info = env.step(policy.select(obs, info))
        regret.append(info["regret"].sum())
        reward.append(r.sum())
        expected.append(info["reward_expected"].sum())
        random_regret.append((info["regret"] + info["reward_expected"] - base).sum())
    at = result.step - 1
    np.testing.assert_array_equal(result.cum_regret, np.cumsum(regret)[at])
    np.testing.assert_array_equal(result.cum_reward, np.cumsum(reward)[at])
    np.testing.assert_array_equal(result.cum_clicks, np.cumsum(reward)[at])  # a page's clicks
    np.testing.assert_array_equal(result.cum_expected_reward, np.cumsum(expected)[at])
    np.testing.assert_array_equal(result.cum_random_regret, np.cumsum(random_regret)[at])
    assert np.isnan(result.cum_fixed_regret).all()  # no fixed arm on pages
    oracle = run_job(Job(cfg, 0, 1, seed=2))
    assert (oracle.cum_regret == 0.0).all()
    np.testing.assert_array_equal(oracle.cum_random_regret, result.cum_random_regret)  # the requests', not the policy's


@pytest.mark.parametrize("click_model", ["cascade", "pbm"])
def test_learning_slate_policies_beat_random_and_random_keeps_no_margin(click_model):
    """6,400 pages in a pool with large creative gaps (creative_scale 1): the random slate's realised
    regret is its expected baseline within noise (measured |1 − ratio| ≤ 0.002), the learners keep a
    clear share of the margin (measured regret ÷ random: CascadeKL-UCB 0.62 / 0.55, top-L Thompson
    0.55 / 0.53, top-L bilinear UCB 0.45 / 0.43 under cascade / PBM clicks)."""
    doc = slate_doc(click_model, steps=200, seeds=[4], policies={"random_slate": {}, "cascade_klucb": {},
                                                                  "top_thompson": {}, "top_bilinear_ucb": {}})
    doc["scenarios"]["page"]["creative_scale"] = 1.0
    cfg = parse_config(doc)
    rnd, klucb, ts, bilinear = (run_job(Job(cfg, 0, p, seed=4)) for p in range(4))
    base = rnd.cum_random_regret[-1]
    assert abs(1 - rnd.cum_regret[-1] / base) < 0.03
    assert klucb.cum_regret[-1] < 0.72 * base and ts.cum_regret[-1] < 0.7 * base
    assert bilinear.cum_regret[-1] < 0.55 * base


def test_stacked_slate_runs_equal_each_seed_alone():
    cfg = parse_config(slate_doc("pbm", mode="personalized", steps=12,
                                 policies={"top_linucb": {}, "top_thompson": {}, "cascade_lints": {}}))
    for p in range(3):
        jobs = [Job(cfg, 0, p, seed=s) for s in cfg.seeds]
        stacked = run_stack(jobs)
        for job, together in zip(jobs, stacked):
            alone = run_job(job)
            for name in RunResult._fields:
                if name != "policy_seconds":
                    np.testing.assert_array_equal(getattr(together, name), getattr(alone, name), err_msg=name)


def test_expected_feedback_reaches_slate_policies_per_position(monkeypatch):
    """With feedback = "expected" a slate policy learns from each position's true click probability
    (info["slate_click_probs"]), never from the clicks."""
    seen = []
    from agents.slate import RandomSlate

    monkeypatch.setattr(RandomSlate, "update", lambda self, obs, slates, clicks: seen.append(np.array(clicks)))
    doc = slate_doc("dcm", steps=5, seeds=[1], policies={"random_slate": {}})
    doc["scenarios"]["page"]["feedback"] = "expected"
    run_job(Job(parse_config(doc), 0, 0, seed=1))
    assert len(seen) == 5 and seen[0].shape == (32, 3)
    assert ((seen[0] > 0) & (seen[0] < 1)).all()  # probabilities, not 0/1 clicks


def test_a_one_slot_policy_on_a_slate_scenario_is_refused_before_running():
    with pytest.raises(ValueError, match=r"policies\.ucb1 .* is not a slate policy.*scenarios\.page"):
        parse_config(slate_doc(policies={"random_slate": {}, "ucb1": {}}))
    ok = slate_doc(policies={"random_slate": {}, "ucb1": {}})
    ok["scenarios"]["page"]["policies"] = ["random_slate"]
    parse_config(ok)  # left out of the slate scenario: fine


def test_adsim_bench_writes_a_slate_summary(tmp_path, capsys):
    path = tmp_path / "slate.toml"
    path.write_text('seeds = [0]\nsteps = 6\nbatch_size = 8\nn_buckets = 3\n'
                    '[scenarios.page]\nenv = "adsim/SlateSelection-v0"\npreset = "slate"\nmode = "pool"\n'
                    'click_model = "cascade"\nn_users = 300\nn_products = 50\n'
                    '[policies.random_slate]\n[policies.oracle_slate]\n')
    assert main(["bench", "--config", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "## page — 48 pages of 3 positions × 1 seeds" in text and "clicks per page" in text
