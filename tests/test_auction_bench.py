"""The benchmark runner on auction scenarios (adsim/AdAuction-v0): exact bookkeeping against a hand
loop (regret, spend, wins and the regret's four parts, which sum to it), the oracle bidder's zero
regret, the day's spend curve, stacked ≡ unstacked, config checks, and `adsim bench` end to end.
Tiny sizes (seconds)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

from agents.registry import make_policy
from experiments.cli import main
from experiments.runner import parse_config, run_job
from experiments.runner.run import Job, RunResult, policy_seed, run_stack

WORLD = {"n_users": 300, "n_products": 50, "n_campaigns": 4}


def auction_doc(**changes) -> dict:
    doc = {"seeds": [1, 2], "steps": 30, "batch_size": 32, "delay": 1, "n_buckets": 6,
           "scenarios": {"day": {"env": "adsim/AdAuction-v0", "preset": "auction", "mode": "personalized",
                                 "budget": 20.0, "horizon": 10, **WORLD}},
           "policies": {"truthful": {}, "oracle_bidder": {}, "pid_pacer": {}, "learned_shader": {}}}
    doc.update(changes)
    return doc


def test_auction_run_matches_a_hand_loop_over_the_env():
    cfg = parse_config(auction_doc())
    result = run_job(Job(cfg, 0, 2, seed=2))  # pid_pacer
    env = gym.make_vec("adsim/AdAuction-v0", num_envs=cfg.batch_size, vectorization_mode="vector_entry_point",
                       config=cfg.scenarios[0].env_config(2, cfg.steps))
    policy = make_policy("pid_pacer")
    policy.reset(8, seed=policy_seed(2, "pid_pacer"))
    obs, info = env.reset(seed=cfg.stream_seed(2))
    sums = {k: [] for k in ("regret", "spend", "won", "reward", "regret_allocation", "regret_estimation",
                            "regret_overbid", "regret_underbid")}
    spend_by_step = []
    for _ in range(cfg.steps):
        action = policy.select_bids(obs)
        next_obs, reward, _, _, info = env.step(action)
        policy.update_bids(obs, action, info)
        obs = next_obs
        for k in sums:
            sums[k].append((reward if k == "reward" else info[k]).sum())
        spend_by_step.append(info["spend"].sum())
    at = result.step - 1
    np.testing.assert_array_equal(result.cum_regret, np.cumsum(sums["regret"])[at])
    np.testing.assert_array_equal(result.cum_reward, np.cumsum(sums["reward"])[at])
    np.testing.assert_array_equal(result.cum_spend, np.cumsum(sums["spend"])[at])
    np.testing.assert_array_equal(result.cum_wins, np.cumsum(sums["won"])[at])
    parts = sum(getattr(result, f"cum_regret_{p}") for p in ("allocation", "estimation", "overbid", "underbid"))
    np.testing.assert_allclose(parts, result.cum_regret, rtol=1e-9, atol=1e-9)
    assert result.cum_spend[-1] > 0 and np.isnan(result.cum_random_regret).all()
    # the day's curve: 3 days of 10 requests folded, per campaign-day, never above the budget
    day = np.cumsum(np.asarray(spend_by_step).reshape(3, 10).mean(axis=0)) / cfg.batch_size
    np.testing.assert_allclose(result.day_spend, day, rtol=1e-12)
    assert result.day_spend[-1] <= 20.0 + 1e-12 and np.all(np.diff(result.day_spend) >= 0)
    oracle = run_job(Job(cfg, 0, 1, seed=2))
    assert (oracle.cum_regret == 0.0).all() and oracle.cum_expected_reward[-1] > result.cum_expected_reward[-1]


def test_stacked_auction_runs_equal_each_seed_alone():
    cfg = parse_config(auction_doc(steps=12))
    for p in range(4):
        jobs = [Job(cfg, 0, p, seed=s) for s in cfg.seeds]
        for job, together in zip(jobs, run_stack(jobs)):
            alone = run_job(job)
            for name in RunResult._fields:
                if name != "policy_seconds":
                    np.testing.assert_array_equal(getattr(together, name), getattr(alone, name), err_msg=name)


@pytest.mark.parametrize("change, match", [
    ({"policies": {"truthful": {}, "ucb1": {}}}, r"policies\.ucb1 .* is not a bidding policy.*scenarios\.day"),
    ({"feedback": "expected"}, r"scenarios\.day\.feedback == 'expected'.*feedback = 'realised'"),
])
def test_bad_auction_configs_are_refused_before_running(change, match):
    doc = auction_doc()
    if "feedback" in change:
        doc["scenarios"]["day"]["feedback"] = change["feedback"]
    else:
        doc.update(change)
    with pytest.raises(ValueError, match=match):
        parse_config(doc)


def test_adsim_bench_writes_the_auction_outputs(tmp_path):
    path = tmp_path / "auction.toml"
    path.write_text('seeds = [0]\nsteps = 20\nbatch_size = 16\nn_buckets = 4\n'
                    '[scenarios.day]\nenv = "adsim/AdAuction-v0"\npreset = "auction"\nmode = "personalized"\n'
                    'budget = 20.0\nhorizon = 10\nn_users = 300\nn_products = 50\n'
                    '[policies.truthful]\n[policies.oracle_bidder]\n[policies.dual_pacer]\n')
    out = tmp_path / "out"
    assert main(["bench", "--config", str(path), "--out", str(out), "--no-progress"]) == 0
    text = (out / "summary.md").read_text()
    assert "| policy | expected surplus | spend per day (% of budget) |" in text and "underbid regret" in text
    days = pd.read_csv(out / "days.csv.gz")
    assert set(days["policy"]) == {"truthful", "oracle_bidder", "dual_pacer"} and len(days) == 3 * 10
    assert (days["spend_fraction"] <= 1 + 1e-9).all()
    assert (out / "auction.png").is_file()
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"cum_spend", "cum_wins", "cum_regret_underbid"} <= set(metrics.columns)
