"""The benchmark runner: common random numbers, exact regret bookkeeping, delays, backends, config
validation, output files and plots. Tiny sizes throughout (seconds on 2 cores, plus ~20 s of Ray
start-up in the Ray test)."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

from agents import registry
from agents.base import Policy, RandomPolicy
from experiments.cli import main
from experiments.runner import RunFailed, load_config, make_jobs, parse_config, run_job, run_jobs
from experiments.runner.report import TIMING_COLUMNS, metrics_frame
from experiments.runner.run import Job, RunResult, _vector_env, bucket_steps, fixed_arm_regret, policy_seed
from experiments.runner.stats import bernoulli_kl, ci95_halfwidth, lai_robbins_constant, loglog_slope

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"
SMALL_WORLD = {"n_users": 200, "n_products": 40, "n_campaigns": 4}


def tiny(**changes) -> dict:
    """A tiny config document: one personalised and one pool scenario, random and oracle."""
    doc = {
        "seeds": [3, 4], "steps": 12, "batch_size": 8, "delay": 1, "n_buckets": 6,
        "scenarios": {"pers": {"preset": "personalized", **SMALL_WORLD},
                      "pool": {"preset": "easy", "campaign": 2, **SMALL_WORLD}},
        "policies": {"random": {}, "oracle": {}},
    }
    doc.update(changes)
    return doc


@pytest.fixture(scope="module")
def config():
    return parse_config(tiny())


@pytest.fixture(scope="module")
def serial_results(config):
    jobs = make_jobs(config)
    return jobs, run_jobs(jobs, workers=1, progress=False)


def _metrics(jobs, results) -> pd.DataFrame:
    return metrics_frame(jobs, results).drop(columns=list(TIMING_COLUMNS))


# ----------------------------------------------------------------------------- regret bookkeeping
def test_oracle_regret_is_exactly_zero(config, serial_results):
    m = _metrics(*serial_results)
    oracle = m[m["policy"] == "oracle"]
    assert len(oracle) > 0 and (oracle["cum_regret"] == 0.0).all()
    random = m[(m["policy"] == "random") & (m["step"] == config.steps)]
    assert (random["cum_regret"] > 0.2).all()  # 96 impressions of random choice lose real clicks (≥ 0.42 here)


def test_random_regret_matches_a_hand_loop_over_the_env(config):
    """Same seeds by hand: the runner's cumulative regret/reward are the sums of the env's info."""
    job = Job(config, 0, 0, seed=4)  # personalised scenario, random policy
    result = run_job(job)
    env = gym.make_vec("adsim/CreativeSelection-v0", num_envs=config.batch_size, vectorization_mode="vector_entry_point",
                       config=config.scenarios[0].env_config(4, config.steps))
    policy = RandomPolicy()
    policy.reset(env.single_action_space.n, seed=policy_seed(4, "random"))
    obs, info = env.reset(seed=config.stream_seed(4))
    regret, reward, expected = [], [], []
    for _ in range(config.steps):
        obs, r, _, _, info = env.step(policy.select(obs, info))
        regret.append(info["regret"].sum())
        reward.append(r.sum())
        expected.append(info["reward_expected"].sum())
    at = result.step - 1
    np.testing.assert_array_equal(result.cum_regret, np.cumsum(regret)[at])
    np.testing.assert_array_equal(result.cum_reward, np.cumsum(reward)[at])
    np.testing.assert_array_equal(result.cum_expected_reward, np.cumsum(expected)[at])
    assert result.cum_regret[-1] > 0 and np.all(np.diff(result.cum_regret) >= 0)


def test_a_reused_env_gives_the_same_run_as_a_fresh_one(config):
    job = Job(config, 1, 0, seed=3)
    first = run_job(job)
    _vector_env.cache_clear()
    run_job(Job(config, 1, 1, seed=4))  # another seed and policy in between
    for again in (run_job(job), run_job(job)):  # a fresh env for seed 3, then the reused one
        for name in RunResult._fields:
            if name != "policy_seconds":  # wall-clock timing
                np.testing.assert_array_equal(getattr(first, name), getattr(again, name), err_msg=name)


def test_reordering_the_policies_changes_no_run(config):
    swapped = parse_config(tiny(policies={"oracle": {}, "random": {}}))
    a, b = run_job(Job(config, 0, 0, seed=3)), run_job(Job(swapped, 0, 1, seed=3))  # both 'random'
    np.testing.assert_array_equal(a.cum_regret, b.cum_regret)


def test_arms_table_with_fatigue_does_not_depend_on_policy_order():
    """With fatigue the arms' means depend on what was shown: arms.csv lists them per policy, so the
    order of the policies in the config changes nothing (it used to take the first policy's)."""
    from experiments.runner.report import arms_frame

    def arms(policies):
        cfg = parse_config(tiny(scenarios={"pool": {"preset": "easy", "campaign": 2, "fatigue_strength": 1.0,
                                                    **SMALL_WORLD, "n_users": 20}}, policies=policies, seeds=[3],
                                steps=40))
        jobs = make_jobs(cfg)
        return arms_frame(jobs, run_jobs(jobs, workers=1, progress=False))

    a, b = arms({"random": {}, "oracle": {}}), arms({"oracle": {}, "random": {}})
    pd.testing.assert_frame_equal(a, b)
    assert set(a["policy"]) == {"random", "oracle"}  # fatigue: the two policies' means differ
    assert not np.array_equal(a[a["policy"] == "random"]["mean_reward"], a[a["policy"] == "oracle"]["mean_reward"])


def test_outputs_do_not_depend_on_the_order_of_seeds_or_policies(tmp_path):
    """Fatigue on, seeds stacked: listing the seeds and the policies in another order gives the same
    numbers in every output table, bit for bit (rows follow the config's order: it is the display
    order of tables and legends)."""
    from experiments.runner import run_benchmark

    def run(seeds, policies, out):
        cfg = parse_config(tiny(scenarios={"pool": {"preset": "easy", "campaign": 2, "fatigue_strength": 1.0,
                                                    **SMALL_WORLD}}, policies=policies, seeds=seeds, steps=20))
        run_benchmark(cfg, tmp_path / out, progress=False, plots=False)
        tables = {}
        for name in ("metrics.csv", "summary.csv", "arms.csv"):
            frame = pd.read_csv(tmp_path / out / name).drop(columns=list(TIMING_COLUMNS), errors="ignore")
            keys = [c for c in ("scenario", "policy", "seed", "step", "arm") if c in frame]
            tables[name] = frame.sort_values(keys).reset_index(drop=True)
        return tables

    a = run([3, 1, 2], {"ucb1": {}, "random": {}, "oracle": {}}, "a")
    b = run([2, 3, 1], {"oracle": {}, "ucb1": {}, "random": {}}, "b")
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
    assert len(a["metrics.csv"]) and a["summary.csv"]["policy"].nunique() == 3


def test_policies_of_a_seed_face_the_same_requests(serial_results):
    """Common random numbers: oracle reward = expected + regret is the same for every policy."""
    m = _metrics(*serial_results)
    m["oracle_expected"] = m["cum_expected_reward"] + m["cum_regret"]
    wide = m.pivot_table(index=["scenario", "seed", "step"], columns="policy", values="oracle_expected")
    np.testing.assert_allclose(wide["random"], wide["oracle"], rtol=1e-12)
    # ... and different seeds are different scenarios
    last = wide.groupby(level=["scenario", "seed"])["random"].last()
    assert last.loc["pers", 3] != last.loc["pers", 4]


def test_pool_fixed_arm_regret_and_bound(config, serial_results):
    jobs, results = serial_results
    for job, r in zip(jobs, results):
        if config.scenarios[job.scenario].mode == "personalized":
            assert r.arm_means.size == 0 and np.isnan(r.cum_fixed_regret).all() and np.isnan(r.lai_robbins).all()
            continue
        assert r.arm_means.shape == (8,) and np.all(np.diff(r.cum_fixed_regret) >= 0)
        np.testing.assert_allclose(r.lai_robbins, lai_robbins_constant(r.arm_means) * np.log(r.impressions))
    same_seed = [r.arm_means for j, r in zip(jobs, results) if j.scenario == 1 and j.seed == 3]
    np.testing.assert_array_equal(same_seed[0], same_seed[1])  # arm means do not depend on the policy


def test_fixed_arm_regret_by_hand():
    counts = np.array([[2, 0, 1], [0, 3, 0]])
    means = np.array([0.10, 0.04, 0.08])
    # step 0: 2 best + 1 × (0.10 − 0.08) = 0.02; step 1: 3 × (0.10 − 0.04) = 0.18
    np.testing.assert_allclose(fixed_arm_regret(counts, means), [0.02, 0.18])


# ----------------------------------------------------------------------------- delayed feedback
class Recorder(Policy):
    """Logs, at each select, which batches' feedback it has received so far."""

    name = "recorder"
    log: list = []

    def reset(self, n_actions, seed=None):
        super().reset(n_actions, seed)
        self.seen, self.t = [], 0
        Recorder.log = []

    def probabilities(self, obs, info=None):
        return np.full((self.batch_size(obs), self.n_actions), 1.0 / self.n_actions)

    def select(self, obs, info=None):
        Recorder.log.append(list(self.seen))
        self.t += 1
        return np.full(self.batch_size(obs), self.t % self.n_actions)  # batch t marks its actions

    def update(self, obs, actions, rewards):
        self.seen.append(int(actions[0]) - 1)


@pytest.mark.parametrize("delay", [1, 3])
def test_feedback_reaches_the_policy_after_delay_batches(monkeypatch, delay):
    monkeypatch.setitem(registry.POLICIES, "recorder", Recorder)
    cfg = parse_config(tiny(policies={"recorder": {}}, delay=delay, steps=6))
    run_job(Job(cfg, 0, 0, seed=3))
    # before choosing batch t the policy has the feedback of batches 0 .. t − delay, in order
    assert Recorder.log == [list(range(t - delay + 1)) for t in range(6)]


# ----------------------------------------------------------------------------- backends
def test_process_pool_gives_identical_metrics(serial_results):
    jobs, results = serial_results
    pooled = run_jobs(jobs, workers=2, progress=False)
    pd.testing.assert_frame_equal(_metrics(jobs, results), _metrics(jobs, pooled), check_exact=True)


@pytest.mark.ray
def test_ray_gives_identical_metrics(serial_results, monkeypatch):
    pytest.importorskip("ray")  # the 'ray' extra; installed with 'dev'
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local Ray, started and stopped here
    jobs, results = serial_results
    on_ray = run_jobs(jobs, workers=2, backend="ray", progress=False)
    pd.testing.assert_frame_equal(_metrics(jobs, results), _metrics(jobs, on_ray), check_exact=True)


# ----------------------------------------------------------------------------- config validation
def _scenario(**keys) -> dict:
    return {"scenarios": {"s": {"preset": "personalized", **keys}}}


BAD_CONFIGS = [
    ({"policies": {"randm": {}}}, ValueError, r"unknown policy 'randm'; did you mean 'random'\? Allowed: .*oracle, .*random"),
    ({"policies": {"eps": {"policy": "oracel"}}}, ValueError, r"policies\.eps: unknown policy 'oracel'; did you mean 'oracle'"),
    ({"policies": {"random": {"epsilon": 0.1}}}, ValueError, r"unknown hyperparameter 'epsilon' for policy 'random'"),
    ({"sedes": [1]}, ValueError, r"unknown config key 'sedes'; did you mean 'seeds'\? Allowed: 'name', 'seeds'"),
    (_scenario(n_candidate=4), ValueError, r"scenarios\.s: unknown config key 'n_candidate'; did you mean 'n_candidates'"),
    (_scenario(n_candidates=1), ValueError, r"scenarios\.s: n_candidates == 1, must be in \[2, 256\]"),
    (_scenario(mode="bandit"), ValueError, r"scenarios\.s: unknown mode 'bandit'.*Allowed: 'pool', 'personalized'"),
    (_scenario(target_ctr=0.9), ValueError, r"target_ctr == 0.9, must be in \[0.001, 0.3\]"),
    (_scenario(seed=3), ValueError, r"scenarios\.s\.seed is set by the runner"),
    (_scenario(env="adsim/Nope-v0"), ValueError, r"scenarios\.s\.env: unknown env 'adsim/Nope-v0'; did you mean 'adsim/AdSession-v0'"),
    (_scenario(env="adsim/AdSession-v0", preset="fatigue", ctr_model="lr:2000"), ValueError, r"scenarios\.s\.ctr_model: env 'adsim/AdSession-v0' takes no ctr_model"),
    ({"reference": "ucb1"}, ValueError, r"unknown reference 'ucb1'; Allowed: 'random', 'oracle'"),
    ({"scenarios": {"s": {"preset": "persnalized"}}}, ValueError, r"scenarios\.s: unknown preset 'persnalized'; did you mean 'personalized'"),
    ({"steps": 0}, ValueError, r"steps == 0, must be in \[1, 10000000\]"),
    ({"steps": "10"}, TypeError, r"steps must be an int, got str '10'"),
    ({"batch_size": 2.5}, TypeError, r"batch_size must be an int, got float 2.5"),
    ({"delay": 0}, ValueError, r"delay == 0, must be in \[1, 10000000\]"),
    ({"delay": 13}, ValueError, r"delay == 13, must be <= steps \(12 in scenario 'pers'\)"),
    (_scenario(steps=0), ValueError, r"scenarios\.s\.steps == 0, must be in \[1, 10000000\]"),
    (_scenario(batch_size="8"), TypeError, r"scenarios\.s\.batch_size must be an int, got str '8'"),
    ({"buckets": "logarithmic"}, ValueError, r"unknown buckets 'logarithmic'; Allowed: 'log', 'linear'"),
    ({"seeds": [1, 1]}, ValueError, r"seeds == \[1, 1\], must be distinct"),
    ({"seeds": [-1]}, ValueError, r"seeds\[0\] == -1, must be in \[0, "),
    ({"seeds": 5}, TypeError, r"seeds must be a list of ints, got int 5"),
    ({"seeds": []}, ValueError, r"seeds == \(\), must be a non-empty list"),
    ({"policies": {}}, ValueError, r"policies is empty; define at least one \[policies\.<name>\] table"),
    ({"scenarios": {"s": 3}}, TypeError, r"scenarios\.s must be a table, got int 3"),
    (_scenario(ctr_model="deepfm"), ValueError, r"scenarios\.s\.ctr_model == 'deepfm': expected a saved model's path"),
    (_scenario(ctr_model="xgb:5000"), ValueError, r"unknown scenarios\.s\.ctr_model model 'xgb'.*'deepfm'"),
    (_scenario(ctr_model=5), TypeError, r"scenarios\.s\.ctr_model must be a str, got int 5"),
    (_scenario(policies=["randm"]), ValueError, r"unknown scenarios\.s\.policies entry 'randm'; did you mean 'random'"),
    (_scenario(policies="random"), TypeError, r"scenarios\.s\.policies must be a non-empty list of policy labels"),
]


@pytest.mark.parametrize(("changes", "error", "match"), BAD_CONFIGS)
def test_bad_config_is_rejected_with_a_clear_message(changes, error, match):
    with pytest.raises(error, match=match):
        parse_config(tiny(**changes))


def test_cli_rejects_a_bad_config_before_running(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('seeds = [0]\n[scenarios.p]\n[policies.linucbb]\n')
    out = tmp_path / "out"
    assert main(["bench", "--config", str(bad), "--out", str(out)]) == 2
    assert "unknown policy 'linucbb'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["bench", "--config", str(tmp_path / "missing.toml"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["bench", "--config", str(CONFIGS / "smoke.toml"), "--out", str(out), "--backend", "dask"]) == 2
    assert "unknown --backend 'dask'" in capsys.readouterr().err
    assert not out.exists()
    out.write_text("not a folder")
    assert main(["bench", "--config", str(CONFIGS / "smoke.toml"), "--out", str(out)]) == 2
    assert "is a file, must be a folder" in capsys.readouterr().err


class Exploding(RandomPolicy):
    """Fails on its first update, like a buggy policy would."""

    def update(self, obs, actions, rewards):
        raise FloatingPointError("boom")


def test_a_failing_run_raises_instead_of_being_skipped(monkeypatch):
    monkeypatch.setitem(registry.POLICIES, "random", Exploding)
    jobs = make_jobs(parse_config(tiny(policies={"random": {}})))
    with pytest.raises(RunFailed, match=r"run pers/random/seeds\[3,4\] failed: FloatingPointError: boom"):
        run_jobs(jobs, workers=1, progress=False)


def test_a_scenario_can_override_the_run_size():
    cfg = parse_config(tiny(scenarios={"p": {"steps": 5, "batch_size": 3, **SMALL_WORLD}, "q": SMALL_WORLD}))
    assert cfg.size(0) == (5, 3) and cfg.size(1) == (12, 8)
    result = run_job(Job(cfg, 0, 0, seed=1))
    assert result.step[-1] == 5 and result.impressions[-1] == 15
    assert cfg.to_dict()["scenarios"]["p"]["impressions_per_run"] == 15


def test_pool_scenarios_fix_the_campaign():
    cfg = parse_config(tiny(scenarios={"p": {"preset": "default"}, "q": {"campaign": 3, **SMALL_WORLD}}))
    assert cfg.scenarios[0].overrides["campaign"] == 0 and cfg.scenarios[1].overrides["campaign"] == 3
    assert cfg.scenarios[0].env_config(7, 5).world.seed == 7 and cfg.scenarios[0].env_config(7, 5).horizon == 5


# ----------------------------------------------------------------------------- shipped configs
def test_smoke_config_is_valid():
    cfg = load_config(CONFIGS / "smoke.toml")
    assert {s.mode for s in cfg.scenarios} == {"pool", "personalized"}


def test_default_config_covers_the_main_job(tmp_path):
    from adsim import make_config
    from adsim.generator.model import CreativeTransformer, GeneratorConfig

    doc = tomllib.loads((CONFIGS / "default.toml").read_text())
    policies = {label: table.get("policy", label) for label, table in doc["policies"].items()}
    issue3 = {"random", "oracle", "greedy", "epsilon_greedy", "ucb1", "kl_ucb", "thompson", "exp3", "linucb",
              "linucb_shared", "lin_ts", "hybrid"}
    # and the structure-aware policy (issue 13), and the RL agents on generated candidates (issue 15)
    assert set(policies.values()) == issue3 | {"bilinear_ucb", "ppo", "dqn"}
    assert sum(1 for p in policies.values() if p == "epsilon_greedy") == 2  # fixed and decaying ε
    generated = doc["scenarios"]["personalized_generated"]
    assert generated["generator"] == "default" and generated["compare_ctr_to"] == "personalized_learned"
    assert {"ppo", "dqn", "linucb_shared", "bilinear_ucb"} <= set(generated["policies"])
    # set-up trains the default generator; here an untrained one of the world's shape stands in for it
    tags = make_config("personalized").world.n_interest_tags
    CreativeTransformer(GeneratorConfig(n_interest_tags=tags, d_model=16, n_heads=2, n_enc_layers=1, n_dec_layers=1,
                                        d_ff=16)).save(tmp_path)
    generated["generator"] = str(tmp_path)
    for table in doc["scenarios"].values():
        assert set(table.get("policies", [])) <= set(policies)
        table.pop("policies", None)
    cfg = parse_config({**doc, "policies": {"random": {}}})  # scenarios and run sizes validate
    assert len(cfg.seeds) >= 5 and {s.mode for s in cfg.scenarios} == {"pool", "personalized"}
    assert doc["scenarios"]["pool"]["preset"] == "default"  # close arms, not the teaching preset


def test_separation_sentence_orders_policies_and_marks_what_seeds_tell_apart():
    from experiments.runner.report import separation

    # per-seed final regrets: a is below b on every seed (distinguishable), b and c cross (not)
    final = {"a": [1.0, 2.0, 3.0, 4.0], "b": [5.0, 6.0, 7.0, 8.0], "c": [7.0, 4.0, 9.0, 6.0], "oracle": [0.0] * 4}
    rows = [{"scenario": "s", "policy": p, "seed": i, "step": 10, "cum_regret": v}
            for p, vals in final.items() for i, v in enumerate(vals)]
    sentence = separation(pd.DataFrame(rows), frozenset({"oracle"}))["s"]
    assert "over 4 seeds: `a` < `b` ≈ `c`" in sentence and "`oracle`" not in sentence
    assert sentence.endswith("`a` is distinguishable from every other policy.")
    rows = [r for r in rows if r["policy"] != "a"]
    assert separation(pd.DataFrame(rows), frozenset({"oracle"}))["s"].endswith("`b` is not distinguishable from `c`.")


def test_margin_share_worked_by_hand():
    from experiments.runner.report import margin_share

    # seed 0: regret 10 of a random regret 40 → 75 %; over the last decade (from 100 impressions on):
    # regret grew 10 − 6 = 4 while the random regret grew 40 − 20 = 20 → 80 %
    # seed 1: regret equal to the random regret → 0 % (and 0 % late)
    rows = [{"seed": s, "step": st, "impressions": 100 * st, "cum_regret": r, "cum_random_regret": q}
            for s, series in ((0, [(1, 6.0, 20.0), (2, 10.0, 40.0)]), (1, [(1, 5.0, 5.0), (2, 9.0, 9.0)]))
            for st, r, q in series]
    runs = pd.DataFrame(rows)
    np.testing.assert_allclose(margin_share(runs), [0.75, 0.0])
    np.testing.assert_allclose(margin_share(runs, 0.5), [0.8, 0.0])
    runs["cum_random_regret"] = 0.0  # no margin to recover: undefined, not 100 %
    assert np.isnan(margin_share(runs)).all()


def test_policies_are_measured_against_an_observable_bound_worked_by_hand():
    from experiments.runner.report import excess_regret_slope, summary_frame, summary_markdown

    # a bound that keeps 60 % of the margin has expected regret 0.4 · R_random on the same requests;
    # a policy whose regret is that plus 3 √t closes in on it with slope 1/2 (its slope against the
    # oracle stays near 1); its share of the bound is its margin recovered ÷ 0.6
    t = np.geomspace(1_000, 1_000_000, 30).round()
    rnd = 0.02 * t
    rows = [{"scenario": "s", "policy": p, "seed": seed, "step": i + 1, "impressions": x, "cum_regret": r,
             "cum_random_regret": q, "cum_fixed_regret": np.nan, "ctr": 0.03, "decisions_per_s": 1.0,
             "episode_return": 0.0}
            for seed in (0, 1) for p, reg in (("near", 0.4 * rnd + 3 * np.sqrt(t)), ("random", rnd))
            for i, (x, r, q) in enumerate(zip(t, reg, rnd))]
    metrics = pd.DataFrame(rows)
    near = metrics[metrics["policy"] == "near"]
    assert excess_regret_slope(near, 0.6) == pytest.approx(0.5, abs=1e-9)
    assert 0.5 < excess_regret_slope(near, 0.9) < 1.0  # against a stronger bound a linear part of the excess returns
    assert np.isnan(excess_regret_slope(near.assign(cum_regret=0.0), 0.6))  # the oracle: no excess at all
    summary = summary_frame(metrics, {"s": "random"}, {"s": 0.6}).set_index("policy")
    share = 1 - near["cum_regret"].iloc[-1] / near["cum_random_regret"].iloc[-1]
    assert summary.loc["near", "bound_share_mean"] == pytest.approx(share / 0.6)
    assert summary.loc["near", "bound_slope"] == pytest.approx(0.5, abs=1e-9)
    assert summary.loc["random", "bound_share_mean"] == 0.0
    md = summary_markdown(summary.reset_index(), "t")
    assert "Against the observable-feature bound (60.0 % of the oracle's margin over random)" in md
    assert f"| near | {100 * share / 0.6:.1f} ± 0.0 |" in md
    assert "observable-feature bound" not in summary_markdown(summary_frame(metrics, {"s": "random"}), "t")


def test_an_observable_bound_is_checked_and_changes_only_the_report():
    plain = parse_config(tiny())
    bounded = tiny()
    bounded["scenarios"]["pers"]["observable_bound"] = 0.69
    assert parse_config(bounded).fingerprint() == plain.fingerprint()  # results folders stay resumable
    assert parse_config(bounded).to_dict()["scenarios"]["pers"]["observable_bound"] == 0.69
    for bad, err in ((0.0, ValueError), (1.5, ValueError), ("high", TypeError)):
        bounded["scenarios"]["pers"]["observable_bound"] = bad
        with pytest.raises(err, match=r"scenarios\.pers\.observable_bound"):
            parse_config(bounded)


def test_random_regret_is_the_requests_and_not_the_policys():
    # every policy of a seed meets the same requests (no fatigue): the same random regret, bit for bit;
    # the oracle keeps all of the margin, the random policy about none of it
    cfg = parse_config(tiny(steps=60, batch_size=64, scenarios={"p": {"preset": "personalized", **SMALL_WORLD}},
                            policies={"random": {}, "oracle": {}, "greedy": {}}))
    runs = [run_job(Job(cfg, 0, p, seed=2)) for p in range(3)]
    assert all(np.array_equal(r.cum_random_regret, runs[0].cum_random_regret) for r in runs)
    rnd, orc, _ = runs
    assert orc.cum_regret[-1] == 0.0 and rnd.cum_random_regret[-1] > 0
    assert abs(1 - rnd.cum_regret[-1] / rnd.cum_random_regret[-1]) < 0.05  # 3,840 impressions: measured 0.006


def test_expected_feedback_gives_policies_the_true_expected_reward():
    doc = tiny(steps=8, scenarios={"p": {"preset": "personalized", **SMALL_WORLD, "feedback": "expected"},
                                   "q": {"preset": "personalized", **SMALL_WORLD}})
    cfg = parse_config(doc)
    seen: list[np.ndarray] = []

    class Recorder(RandomPolicy):
        def update(self, obs, actions, rewards):
            seen.append(np.array(rewards))

    registry.POLICIES["_recorder"] = Recorder
    try:
        cfg = parse_config({**doc, "policies": {"rec": {"policy": "_recorder"}}})
        expected = run_job(Job(cfg, 0, 0, seed=3))
        fed_expected, seen[:] = np.concatenate(seen), []
        realised = run_job(Job(cfg, 1, 0, seed=3))
        fed_realised = np.concatenate(seen)
    finally:
        del registry.POLICIES["_recorder"]
    assert not set(np.unique(fed_expected)) <= {0.0, 1.0} and set(np.unique(fed_realised)) <= {0.0, 1.0}
    # every step's feedback arrives (delay 1): what was fed sums to the expected reward the run earned
    assert math.isclose(fed_expected.sum(), expected.cum_expected_reward[-1], rel_tol=1e-12)
    assert math.isclose(fed_realised.sum(), realised.cum_reward[-1], rel_tol=1e-12)
    assert np.array_equal(expected.cum_regret, realised.cum_regret)  # measured the same way
    with pytest.raises(ValueError, match=r"scenarios\.p\.feedback"):
        parse_config(tiny(scenarios={"p": {"feedback": "clicks", **SMALL_WORLD}}))
    assert "feedback" not in parse_config(tiny()).to_dict()["scenarios"]["pers"]  # fingerprints kept
    assert parse_config(doc).to_dict()["scenarios"]["p"]["feedback"] == "expected"


# ----------------------------------------------------------------------------- outputs and plots
TINY_TOML = """
seeds = [3, 4]
steps = 12
batch_size = 8
delay = 1
n_buckets = 6
[scenarios.pers]
preset = "personalized"
n_users = 200
n_products = 40
n_campaigns = 4
[scenarios.pool]
preset = "easy"
campaign = 2
n_users = 200
n_products = 40
n_campaigns = 4
[policies.random]
[policies.oracle]
"""


def test_a_scenario_with_a_learned_ctr_model_and_a_subset_of_policies():
    from adsim.ctr.learned import LearnedCTR

    doc = tiny(policies={"random": {}, "oracle": {}, "greedy": {}})
    doc["scenarios"]["learned"] = {"preset": "personalized", **SMALL_WORLD, "ctr_model": "lr:2000",
                                   "policies": ["random", "greedy"]}
    cfg = parse_config(doc)
    jobs = make_jobs(cfg)
    learned = [j for j in jobs if cfg.scenarios[j.scenario].name == "learned"]
    assert sorted({cfg.policies[j.policy].label for j in learned}) == ["greedy", "random"]
    assert len(jobs) == 2 * (3 + 3 + 2)
    result = run_job(learned[0])
    assert result.cum_regret[-1] > 0
    sc = cfg.scenarios[learned[0].scenario]
    env = _vector_env(sc.env, sc.env_kwargs(learned[0].seed, cfg.size(learned[0].scenario)[0]), 8, "lr:2000")
    assert isinstance(env.unwrapped.core.estimator, LearnedCTR)
    assert cfg.to_dict()["scenarios"]["learned"]["policies"] == ["random", "greedy"]


def test_tiny_toml_is_the_tiny_config(config):
    assert parse_config(tomllib.loads(TINY_TOML)) == config


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    """The tiny benchmark through the command line, serially."""
    root = tmp_path_factory.mktemp("bench")
    (root / "tiny.toml").write_text(TINY_TOML)
    out = root / "tiny"
    assert main(["bench", "--config", str(root / "tiny.toml"), "--out", str(out), "--jobs", "1", "--no-progress"]) == 0
    return out


def test_output_files_are_written_and_consistent(results_dir, config):
    for name in ("config.json", "metrics.csv", "arms.csv", "summary.csv", "summary.md", "regret.png", "ctr.png"):
        assert (results_dir / name).stat().st_size > 0, name
    metrics = pd.read_csv(results_dir / "metrics.csv")
    assert len(metrics) == 2 * 2 * 2 * len(bucket_steps(config.steps, config.n_buckets, config.buckets))
    final = metrics[metrics["step"] == config.steps]
    np.testing.assert_allclose(final["ctr"], final["cum_clicks"] / (config.steps * config.batch_size))
    summary = pd.read_csv(results_dir / "summary.csv")
    assert len(summary) == 4
    for _, row in summary.iterrows():
        sel = final[(final["policy"] == row["policy"]) & (final["scenario"] == row["scenario"])]
        assert row["seeds"] == 2 and math.isclose(row["regret_mean"], sel["cum_regret"].mean(), rel_tol=1e-12)
        half = 12.706 * sel["cum_regret"].std(ddof=1) / math.sqrt(2)  # t(0.975, 1 dof) = 12.706
        assert math.isclose(row["regret_ci95"], half, rel_tol=1e-4, abs_tol=1e-12)
    assert summary["decisions_per_s"].gt(0).all()
    md = (results_dir / "summary.md").read_text()
    assert "## pers" in md and "## pool" in md and "| oracle | 0.0 ± 0.0 |" in md
    meta = json.loads((results_dir / "config.json").read_text())
    assert meta["config"]["scenarios"]["pool"]["resolved"]["campaign"] == 2
    assert meta["config"]["seeds"] == [3, 4] and meta["versions"]["numpy"] == np.__version__
    assert {"commit", "dirty"} <= set(meta["git"]) and meta["run"]["runs"] == 8
    arms = pd.read_csv(results_dir / "arms.csv")
    assert len(arms) == 2 * 8 and arms.groupby("seed")["best"].sum().eq(1).all()


def test_plot_redraws_from_metrics(results_dir, capsys):
    for name in ("regret.png", "ctr.png"):
        (results_dir / name).unlink()
    assert main(["plot", str(results_dir)]) == 0
    for name in ("regret.png", "ctr.png"):
        assert (results_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(results_dir / "nowhere")]) == 2
    assert "no metrics.csv" in capsys.readouterr().err


# ----------------------------------------------------------------------------- small statistics
def test_statistics_by_hand():
    # KL(0.25 ‖ 0.5) = 0.25 ln 0.5 + 0.75 ln 1.5 = 0.130812; gap 0.25 → 0.25 / 0.130812 = 1.911139
    assert math.isclose(float(bernoulli_kl(0.25, 0.5)), 0.1308120, rel_tol=1e-6)
    assert math.isclose(lai_robbins_constant(np.array([0.5, 0.25, 0.5])), 1.911139, rel_tol=1e-6)
    assert lai_robbins_constant(np.array([0.2, 0.2])) == 0.0
    x = np.geomspace(10, 1e4, 30)
    assert math.isclose(loglog_slope(x, 3 * x**0.5), 0.5, rel_tol=1e-9)
    assert math.isnan(loglog_slope(x, np.zeros_like(x)))
    # mean 2, sd 1, n 3: t(0.975, 2) = 4.302653 → 4.302653 / sqrt(3) = 2.484138
    assert math.isclose(float(ci95_halfwidth(np.array([1.0, 2.0, 3.0]))), 2.484138, rel_tol=1e-6)


def test_bucket_steps():
    log = bucket_steps(1000, 10, "log")
    assert log[0] == 1 and log[-1] == 1000 and np.all(np.diff(log) > 0) and len(log) == 10
    np.testing.assert_array_equal(bucket_steps(10, 5, "linear"), [2, 4, 6, 8, 10])
    np.testing.assert_array_equal(bucket_steps(3, 10, "log"), [1, 2, 3])


def test_an_rl_agent_trains_then_is_evaluated_like_a_bandit():
    """A registered SB3 agent in a bench config trains on its own stream, then runs the same
    evaluation as every other policy (same requests, same bookkeeping), reproducibly."""
    from experiments.runner.run import training_seed

    doc = tiny(policies={"random": {}, "ppo": {"train_steps": 64, "n_steps": 8, "batch_size": 16,
                                              "ignore_keys": ["candidates"]}})
    doc["scenarios"] = {"pool": doc["scenarios"]["pool"]}
    cfg = parse_config(doc)
    jobs = make_jobs(cfg)
    ppo = [j for j in jobs if cfg.policies[j.policy].label == "ppo"]
    first, again = run_job(ppo[0]), run_job(ppo[0])
    np.testing.assert_array_equal(first.cum_regret, again.cum_regret)
    assert first.cum_regret[-1] > 0 and np.isfinite(first.cum_reward).all()
    assert training_seed(3) != cfg.stream_seed(3)


def test_cli_no_stack_writes_the_same_metrics(results_dir, tmp_path):
    out = tmp_path / "unstacked"
    assert main(["bench", "--config", str(results_dir.parent / "tiny.toml"), "--out", str(out), "--jobs", "1",
                 "--no-progress", "--no-stack"]) == 0
    stacked, unstacked = (pd.read_csv(d / "metrics.csv").drop(columns=list(TIMING_COLUMNS)) for d in (results_dir, out))
    pd.testing.assert_frame_equal(stacked, unstacked, check_exact=True)
    runs = [json.loads((d / "config.json").read_text())["run"] for d in (results_dir, out)]
    assert [r["stacked_seeds"] for r in runs] == [True, False] and runs[0]["units"] < runs[1]["units"]
