"""Every ``adsim`` subcommand end to end, in process, with tiny sizes: it exits 0 and writes or
prints what it promises. (``bench`` and ``plot``: tests/test_runner.py and tests/test_framework.py;
``demo``, ``scenario``, ``perf``: tests/test_cli.py; ``fidelity``, ``calibrate``: tests/test_fidelity.py.)"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from experiments.cli import build_parser, main

COVERED_ELSEWHERE = {"bench", "plot", "demo", "scenario", "perf", "fidelity", "calibrate"}


def test_every_subcommand_has_an_end_to_end_test():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    tested = COVERED_ELSEWHERE | {"train-generator", "generate", "train-ctr", "ctr-online", "ope-log", "ope",
                                  "ope-study", "ope-obd", "rl-study"}
    assert set(sub.choices) == tested


GENERATOR_USERS = 1500
"""The tiny run's world (``--set n_users=1500``): a smaller population than the preset's 4,000."""
GENERATOR_TINY = ["--corpus-size", "300", "--epochs", "1", "--eval-requests", "50", "--ft-steps", "1",
                  "--log-steps", "8", "--log-envs", "64", "--reward-model", "logistic"]


@pytest.fixture(scope="module")
def generator_run(tmp_path_factory):
    """One tiny train-generator run (default held-out user split, fine-tuned), recording the users of
    everything it trains on: the corpus, the reward model's fit and the fine-tuning requests."""
    import contextlib
    import io

    import adsim.generator.finetune as ft
    import adsim.generator.reward as rw
    import adsim.generator.train as tr

    out = tmp_path_factory.mktemp("gen")
    seen = {"corpus": [], "reward_fit": [], "finetune": []}
    pretrain, fit, sample = tr.pretrain, rw.LogisticCTR.fit, ft.sample_requests

    def rec_pretrain(corpus, *a, **k):
        seen["corpus"].append(corpus.user)
        return pretrain(corpus, *a, **k)

    def rec_fit(self, shown, clicks):
        seen["reward_fit"].append(shown.user_features)
        return fit(self, shown, clicks)

    def rec_sample(world, n, rng, *a, **k):
        req = sample(world, n, rng, *a, **k)
        seen["finetune"].append(req["user"])
        return req

    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(tr, "pretrain", rec_pretrain)
        mp.setattr(rw.LogisticCTR, "fit", rec_fit)
        mp.setattr(ft, "sample_requests", rec_sample)
        assert main(["train-generator", "--out", str(out), *GENERATOR_TINY, "--set", f"n_users={GENERATOR_USERS}"]) == 0
    return out, seen, err.getvalue()


@pytest.fixture(scope="module")
def generator(generator_run):
    return generator_run[0]


def test_train_generator_writes_model_and_report(generator):
    report = json.loads((generator / "report.json").read_text())
    assert report["pretrain"]["n_params"] > 0 and "pretrained_vs_template" in report
    assert {"finetuned_vs_template", "finetune_lift", "ctr_model"} <= set(report)
    assert (generator / "model.json").exists() and (generator / "training_curve.png").exists()
    lift, fair = report["personalisation_lift"], report["fair_baselines"]
    assert set(lift) == {"template", "pretrained", "finetuned"}
    assert set(lift["finetuned"]) == {"full", "env_source", "pool"}
    full = lift["finetuned"]["full"]
    assert full["ci95"][0] <= full["lift"] <= full["ci95"][1]
    t = fair["finetuned"]["true_ctr"]
    assert t["lexicon_best"] >= t["template_truth_pick"] >= max(t["template_mean"], t["template_model_pick"])
    assert "(d) best creative the lexicon allows" in (generator / "tables.md").read_text()


def test_train_generator_reports_held_out_users_and_never_trains_on_them(generator_run):
    import numpy as np

    from adsim import make_config
    from adsim.users import held_out_users
    from adsim.world import cached_world

    out, seen, err = generator_run
    report = json.loads((out / "report.json").read_text())
    users = report["users"]
    assert users["fraction"] == 0.2  # the default, as train-ctr's
    n = users["eval_requests"]
    assert n["seen"] + n["held_out"] == 50 and 0 < n["held_out"] < 25
    for split in ("seen", "held_out"):  # every evaluation figure again, per split, in the same layout
        for key in ("pretrained_vs_template", "finetuned_vs_template", "finetune_lift"):
            assert users[split][key].keys() == report[key].keys() == {"full", "env_source", "pool"}
        full = users[split]["pretrained_vs_template"]["full"]
        assert full["n_requests"] == n[split] and full.keys() == report["pretrained_vs_template"]["full"].keys()
    # the splits partition the evaluation requests: their means weight back to the overall one
    for key in ("pretrained_vs_template", "finetuned_vs_template"):
        for who in ("generated", "template", "oracle_creative"):
            parts = sum(n[s] * users[s][key]["full"]["true_ctr"][who] for s in ("seen", "held_out"))
            assert parts / 50 == pytest.approx(report[key]["full"]["true_ctr"][who], rel=1e-9)
    assert "held out (" in err and "fine-tuning lift" in err
    ctr = report["ctr_model"]["users"]
    assert ctr["test_impressions"]["held_out"] > 0 and 0 <= ctr["auc"]["seen"] <= 1
    # no held-out user reached the corpus, the reward model's fit or the fine-tuning requests ...
    world = cached_world(make_config("personalized", n_users=GENERATOR_USERS).world)
    held = held_out_users(world.user_features, 0.2, seed=0)
    assert 0.15 < held.mean() < 0.25
    for ids in (np.concatenate(seen["corpus"]), np.concatenate(seen["finetune"])):
        assert len(ids) > 0 and not held[ids].any()
        assert 1000 < ids.max() < GENERATOR_USERS  # the --set world's users (the preset has 4,000)
    assert json.loads((out / "config.json").read_text())["fields"] == {"n_users": GENERATOR_USERS}
    fitted = np.concatenate(seen["reward_fit"])
    assert len(fitted) > 0 and not held_out_users(fitted, 0.2, seed=0).any()
    assert len(np.unique(np.concatenate(seen["corpus"]))) > 100  # ... though the corpus drew many users
    doc = json.loads((out / "pretrained" / "training_users.json").read_text())
    assert doc == json.loads((out / "training_users.json").read_text())
    assert doc["held_out_users"] == 0.2 and doc["split_seed"] == 0 and doc["n_held_out"] == int(held.sum())


def test_train_generator_bad_held_out_users_stop_before_any_work(generator, tmp_path, capsys):
    for extra, message in ((["--held-out-users", "1.5"], "--held-out-users == 1.5, must be in [0.0, 0.9]"),
                           (["--held-out-users", "-0.1"], "--held-out-users == -0.1, must be in [0.0, 0.9]"),
                           (["--held-out-users", "nan"], "--held-out-users == nan, must be a finite number"),
                           (["--reward-model", str(generator / "ctr_model")], "whose training users are not known"),
                           (["--pretrained", str(generator / "pretrained"), "--seed", "1"],
                            "was trained with --held-out-users 0.2 --seed 0"),
                           (["--pretrained", str(generator / "pretrained"), "--held-out-users", "0.3"],
                            "was trained with --held-out-users 0.2 --seed 0"),
                           (["--eval-requests", "2"], "requests of held-out users"),
                           (["--set", "n_user=10"], "unknown config key 'n_user'"),
                           (["--set", "n_users"], "expected field=value")):
        out = tmp_path / "never"
        assert main(["train-generator", "--out", str(out), *GENERATOR_TINY, *extra]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()  # checked before the output folder is made
    from experiments.commands.train_generator import _check_options

    args = build_parser().parse_args(["train-generator", "--out", "x"])
    args.held_out_users = "0.2"  # programmatic callers: the type is checked too
    with pytest.raises(TypeError, match="--held-out-users must be a number, got str"):
        _check_options(args)


def test_train_generator_if_current_skips_its_own_recipe_and_retrains_another(generator, tmp_path, capsys, monkeypatch):
    # what `make install` runs: the second call finds config.json records this recipe and trains nothing
    import shutil

    import adsim.generator.train as tr

    out = tmp_path / "gen"
    shutil.copytree(generator, out)
    calls, pretrain = [], tr.pretrain
    monkeypatch.setattr(tr, "pretrain", lambda *a, **k: calls.append(1) or pretrain(*a, **k))
    cmd = ["train-generator", "--out", str(out), *GENERATOR_TINY, "--set", f"n_users={GENERATOR_USERS}", "--if-current"]
    weights, config = (out / "model.pt").read_bytes(), (out / "config.json").read_text()
    assert main(cmd) == 0 and calls == []
    assert "already holds a generator trained with this recipe" in capsys.readouterr().err
    assert (out / "model.pt").read_bytes() == weights and (out / "config.json").read_text() == config
    recipe = json.loads(config)["recipe"]
    assert recipe["finetune"]["steps"] == 1 and recipe["world"].startswith("world-") and recipe["code"].startswith("code-")
    # another recipe (no fine-tuning) trains; then it is current, also with another evaluation size
    assert main(cmd + ["--no-finetune"]) == 0 and calls == [1]
    assert json.loads((out / "config.json").read_text())["recipe"]["finetune"] is None
    pretrained_only = (out / "model.pt").read_bytes()
    assert pretrained_only != weights
    assert main(cmd + ["--no-finetune", "--eval-requests", "60"]) == 0 and calls == [1]
    # a generator whose weights are missing is not current: trained again, deterministically the same
    (out / "model.pt").unlink()
    assert main(cmd + ["--no-finetune"]) == 0 and calls == [1, 1]
    assert (out / "model.pt").read_bytes() == pretrained_only
    # a changed world is another recipe
    assert main(cmd[:-3] + ["--set", f"n_users={GENERATOR_USERS - 100}", "--no-finetune", "--if-current"]) == 0
    assert calls == [1, 1, 1]


def test_train_generator_defaults_are_the_default_recipe():
    from experiments.commands.train_generator import DEFAULT_RECIPE

    args = vars(build_parser().parse_args(["train-generator", "--out", "x"]))
    assert {k: args[k] for k in DEFAULT_RECIPE} == DEFAULT_RECIPE
    assert not args["if_current"] and not args["no_finetune"]  # the default generator is fine-tuned


def test_held_out_users_default_is_shared():
    from adsim.users import DEFAULT_HELD_OUT_USERS

    for cmd in ("train-ctr", "train-generator"):
        assert build_parser().parse_args([cmd, "--out", "x"]).held_out_users == DEFAULT_HELD_OUT_USERS


def test_generate_prints_parsed_candidates(generator, capsys):
    assert main(["generate", "--model", str(generator), "--goal", "promotion", "--tags", "1", "--n", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("    parse: ") == 3 and "goal=promotion" in out


def test_train_ctr_writes_metrics(tmp_path, capsys):
    out = tmp_path / "ctr"
    assert main(["train-ctr", "--model", "lr", "--impressions", "3000", "--epochs", "1", "--n-boot", "5",
                 "--selection-requests", "200", "--out", str(out)]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert 0.5 < doc["models"]["lr"]["auc"] <= 1 and doc["data"]["train"] > 0
    printed = capsys.readouterr().out
    assert (out / "reliability.png").exists() and "lr" in printed
    # the default held-out user split: a fifth of the users never reach training
    users = doc["users"]
    assert users["fraction"] == 0.2 and doc["data"]["train"] < 0.75 * 3000 * 0.9
    rows = users["test_rows"]
    assert rows["seen"] + rows["held_out"] == doc["data"]["test"] and 0.1 < rows["held_out"] / doc["data"]["test"] < 0.3
    assert 0 < users["held_out"]["models"]["lr"]["auc"] <= 1 and "held out" in printed
    assert main(["train-ctr", "--model", "lr", "--held-out-users", "1.5", "--out", str(out)]) == 2


def test_held_out_users_are_the_same_users_in_every_log():
    import numpy as np

    from adsim import make_config
    from adsim.ctr import log_impressions
    from adsim.rng import row_keys
    from adsim.users import held_out_users

    cfg = make_config("personalized")
    a, b = log_impressions(cfg, 4000, seed=1), log_impressions(cfg, 4000, seed=2)  # other request streams
    ha, hb = held_out_users(a.user, 0.2, seed=0), held_out_users(b.user, 0.2, seed=0)
    ka, kb = row_keys(a.user), row_keys(b.user)
    common = np.intersect1d(ka, kb)
    assert len(common) > 100  # the two logs share users ...
    for k in common[:100]:  # ... and each shared user is held out in both or in neither
        assert ha[ka == k].all() == hb[kb == k].all() and len(set(ha[ka == k])) == 1
    assert abs(ha.mean() - 0.2) < 0.04 and not held_out_users(a.user, 0.0).any()
    assert len(np.unique(ka)) == len(np.unique(a.user, axis=0))  # one key per distinct user vector


def test_ctr_online_prints_and_writes_buckets(tmp_path, capsys):
    out = tmp_path / "online.json"
    assert main(["ctr-online", "--model", "lr", "--warmup", "1000", "--refresh-every", "160", "--num-envs", "16",
                 "--steps", "20", "--buckets", "2", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["random"]) == 2 and doc["refresh"]["refreshes"] >= 1 and doc["static"]["refreshes"] == 0
    assert all(r <= o for r, o in zip(doc["random"], doc["oracle"]))
    assert "bucket" in capsys.readouterr().out


def test_ope_log_then_ope_with_a_name_and_a_toml_target(tmp_path, capsys):
    log = tmp_path / "log"
    assert main(["ope-log", "--rounds", "200", "--num-envs", "50", "--out", str(log)]) == 0
    assert json.loads(capsys.readouterr().out)["n_rounds"] == 200
    target = tmp_path / "t.toml"
    target.write_text('policy = "oracle"\nuniform_mix = 0.2\n')  # a [policies.<label>] table's keys
    reports = {}
    for spec in ("random", str(target), "oracle@0.2", "agents.base:OraclePolicy@0.2"):
        assert main(["ope", "--log", str(log), "--target", spec]) == 0
        reports[spec] = report = json.loads(capsys.readouterr().out)
        assert {"ips", "dr"} <= set(report["estimates"]) and 0 <= report["true_value"] <= 1
    # the same policy spelt three ways: the same estimates; the uniform policy: another value
    assert reports[str(target)]["estimates"] == reports["oracle@0.2"]["estimates"] == \
        reports["agents.base:OraclePolicy@0.2"]["estimates"]
    assert reports["random"]["true_value"] != reports["oracle@0.2"]["true_value"]


def test_ope_target_hyperparameters_and_bad_targets(tmp_path, capsys):
    log = tmp_path / "log"
    assert main(["ope-log", "--policy", "oracle", "--param", "uniform_mix=0.5", "--rounds", "300",
                 "--num-envs", "100", "--out", str(log)]) == 0
    assert json.loads(capsys.readouterr().out)["policy"] == "oracle@0.5"
    values = {}
    for eps in ("0.0", "1.0"):  # epsilon-greedy's hyperparameter reaches the trained policy (1.0: uniform)
        assert main(["ope", "--log", str(log), "--train-log", str(log), "--target", "epsilon_greedy",
                     "--param", f"epsilon={eps}", "--reward-model", "none"]) == 0
        values[eps] = json.loads(capsys.readouterr().out)["true_value"]
    assert main(["ope", "--log", str(log), "--target", "random", "--reward-model", "none"]) == 0
    assert values["1.0"] == pytest.approx(json.loads(capsys.readouterr().out)["true_value"], rel=1e-12)
    assert values["0.0"] != pytest.approx(values["1.0"])
    old = tmp_path / "old.toml"
    old.write_text('policy = "linucb"\n[hyperparameters]\nalpha = 0.5\n')
    for args, message in ((["--target", "lin_ucb"], "unknown policy 'lin_ucb'"),
                          (["--target", "oracle@x"], "'x' after '@' is not a number"),
                          (["--target", "oracle@2"], "uniform_mix == 2.0, must be in [0.0, 1.0]"),
                          (["--target", "ucb1", "--param", "speed=2"], "unknown hyperparameter 'speed'"),
                          (["--target", str(old)], "the [hyperparameters] table is gone")):
        assert main(["ope", "--log", str(log), *args]) == 2
        assert message in capsys.readouterr().err


OPE_TINY = ["--seeds", "2", "--set", "ope.sizes=[100, 200]", "--set", "scenarios.default.n_users=300",
            "--set", "scenarios.default.n_products=60", "--jobs", "1", "--no-progress"]


def test_ope_study_runs_on_the_runner_and_matches_a_direct_computation(tmp_path, capsys):
    from adsim.ope.estimators import ips, snips
    from experiments.ope.collect import collect_log, target_probabilities, true_value
    from experiments.options import load_study
    from experiments.cli import build_parser

    out = tmp_path / "ope"
    assert main(["ope-study", "--out", str(out), *OPE_TINY]) == 0  # the committed experiments/configs/ope.toml
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["n_rounds"]) == {100, 200} and (summary["seeds"] == 2).all()
    assert set(summary["logging"]) == {"random", "oracle@0.1"}
    # a target equal to the logging policy is skipped: random is a target of the oracle@0.1 logs only
    assert set(summary[summary.logging == "random"]["target"]) == {"oracle", "oracle@0.3"}
    assert set(summary["estimator"]) == {"dm", "ips", "snips", "dr", "dr_clip", "switch_dr", "dr_true_q"}
    assert (out / "rmse.png").read_bytes()[:4] == b"\x89PNG" and b"<svg" in (out / "rmse.svg").read_bytes()[:2000]
    assert len(list((out / "runs").glob("*.npz"))) == 2 * 2 * 2  # one file per log
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["kind"] == "ope" and meta["run"]["runs"] == 8
    # one log recomputed here: world seed = scenario seed, streams from the seed, the same numbers
    args = build_parser().parse_args(["ope-study", "--out", str(out), *OPE_TINY])
    config = load_study(args)
    raw = pd.read_csv(out / "estimates.csv.gz")
    truths = []
    for seed in (0, 1):
        env_config = config.scenarios[0].log_config(seed)
        assert env_config.world.seed == seed and env_config.campaign is None  # every campaign is logged
        log = collect_log(config.policies[2].make(), env_config, 200, num_envs=200, seed=seed)  # oracle@0.1
        probs = target_probabilities(config.policies[0].make(), log, seed=seed)  # the uniform policy
        rows = raw[(raw.logging == "oracle@0.1") & (raw.target == "random") & (raw.n_rounds == 200)
                   & (raw.seed == seed)].set_index("estimator")
        assert rows.loc["ips", "estimate"] == pytest.approx(ips(log.reward, log.action, log.pscore, probs).value,
                                                            rel=1e-9)
        assert rows.loc["snips", "estimate"] == pytest.approx(
            snips(log.reward, log.action, log.pscore, probs).value, rel=1e-9)
        assert rows.loc["ips", "truth"] == pytest.approx(true_value(log, probs), rel=1e-9)
        truths.append(true_value(log, probs))
    assert truths[0] != pytest.approx(truths[1])  # two seeds, two worlds
    # `adsim plot` redraws the OPE figure from estimates.csv.gz alone
    (out / "rmse.png").unlink()
    assert main(["plot", str(out)]) == 0 and (out / "rmse.png").read_bytes()[:4] == b"\x89PNG"
    # the finished logs' folder is protected; --dry-run prints the plan and runs nothing
    assert main(["ope-study", "--out", str(out), *OPE_TINY]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["ope-study", "--out", str(tmp_path / "dry"), *OPE_TINY, "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["runs"] == 8 and plan["units"] == 2 and plan["impressions"] == 2 * 2 * 300
    assert plan["estimated_seconds"] > 0 and not (tmp_path / "dry").exists()


@pytest.mark.parametrize(("sets", "message"), [
    (["ope.targets=[\"orcle\"]"], "unknown ope.targets entry 'orcle'; did you mean 'oracle'"),
    (["ope.sizes=[5]"], "ope.sizes[] == 5"),
    (["ope.estimators=[\"ipw\"]"], "unknown ope.estimators entry 'ipw'"),
    (["ope.clipp=3"], "unknown ope key 'clipp'; did you mean 'clip'"),
    (["ope.ci=\"exact\""], "unknown ope.ci 'exact'"),
    (["batch_size=8"], "batch_size is not used by an OPE study"),
    (["scenarios.default.env=\"adsim/AdSession-v0\""], "an OPE study logs 'adsim/CreativeSelection-v0' or 'adsim/SlateSelection-v0' scenarios only"),
    (["policies.random.uniform_mix=1.5"], "policies.random.uniform_mix == 1.5, must be in [0.0, 1.0]"),
])
def test_ope_study_bad_configs_exit_2_before_anything_runs(tmp_path, capsys, sets, message):
    out = tmp_path / "out"
    args = [a for s in sets for a in ("--set", s)]
    assert main(["ope-study", "--out", str(out), "--seeds", "2", *args, "--jobs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not out.exists()
    assert main(["ope-study", "--out", str(out), "--steps", "5"]) == 2
    assert "an OPE study has no steps" in capsys.readouterr().err


def test_rl_study_runs_bandits_and_rl_agents_and_saves_the_agents(tmp_path, capsys):
    out = tmp_path / "rl"
    small = [a for p in ("ppo", "dqn", "ppo_session", "a2c_session", "dqn_session", "ppo_session_user")
             for a in ("--set", f"policies.{p}.train_steps=32")]
    assert main(["rl-study", "--out", str(out), "--seeds", "1", "--steps", "10", "--set", "batch_size=4",
                 "--set", "policies.dqn.learning_starts=8", "--set", "policies.dqn_session.learning_starts=8",
                 *small, "--jobs", "1", "--no-progress"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["scenario"]) == {"creative_selection", "session_fatigue", "session_annoyance"}
    assert "# Episode returns" in (out / "episodes.md").read_text() and "## session_fatigue" in capsys.readouterr().out
    models = sorted(p.parent.name for p in (out / "artifacts").glob("*/model.zip"))
    assert "session_fatigue__ppo_session__seed0" in models and len(models) == 8
    assert all((out / "artifacts" / m / "progress.csv").exists() for m in models)
    # a saved agent is loadable and evaluated as is (model_path): same numbers as the trained run
    again = tmp_path / "again"
    path = out / "artifacts" / "session_fatigue__ppo_session__seed0" / "model.zip"
    assert main(["rl-study", "--out", str(again), "--seeds", "1", "--steps", "10", "--set", "batch_size=4",
                 "--set", 'scenarios.session_fatigue.policies=["ppo_session"]',
                 "--set", "scenarios.creative_selection.policies=[\"random\"]",
                 "--set", "scenarios.session_annoyance.policies=[\"random\"]",
                 "--set", f'policies.ppo_session.model_path="{path}"', "--jobs", "1", "--no-progress"]) == 0
    cols = ["cum_reward", "cum_regret", "cum_clicks"]
    first = pd.read_csv(out / "metrics.csv").query("policy == 'ppo_session' and scenario == 'session_fatigue'")[cols].reset_index(drop=True)
    loaded = pd.read_csv(again / "metrics.csv").query("policy == 'ppo_session' and scenario == 'session_fatigue'")[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, loaded, check_exact=True)


def test_ope_obd_validates_on_the_sample_and_reads_its_exported_slates_back(tmp_path, capsys):
    pytest.importorskip("obp")
    import numpy as np

    from adsim.fidelity import obd_sample_path, read_obd
    from adsim.ope.obd import bts_marginals

    out, exp = tmp_path / "obd.json", tmp_path / "exported"
    base = ["ope-obd", "--campaign", "men", "--target-propensity", "frequency", "prior", "--ci", "normal",
            "--n-sim", "2000"]
    assert main([*base, "--out", str(out), "--export", str(exp)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    freq, prior = printed["validations"]
    assert freq["target"]["source"] == "frequency" and prior["target"]["source"] == "prior"
    assert freq["on_policy"]["ctr"] == 69 / 10_000 and freq["logging"]["pages"]["complete_pages"] == 0
    # the per-row IPS by hand: mean over the random log's rows of π_bts(item | position) / (1/34) · click
    rnd, bts = read_obd(obd_sample_path("random", "men")), read_obd(obd_sample_path("bts", "men"))
    q = bts_marginals("men", 34, "frequency", bts)
    by_hand = float(np.mean(q[rnd.position, rnd.item] * 34 * rnd.click))
    ips = freq["per_position"]["ips"]
    assert ips["value"] == pytest.approx(by_hand, rel=1e-12)
    assert ips["relative_error"] == pytest.approx(by_hand / 0.0069 - 1, rel=1e-12)
    assert set(freq["slate"]) == {"sips", "iips", "rips", "cascade_dr", "pseudo_inverse"}
    # the exported OBD-format slate log, read back, gives the same slate estimates
    assert main([*base, "--campaign", "men", "--slates", str(exp / "men.csv")]) == 0
    again = json.loads(capsys.readouterr().out)["validations"]
    assert again[0]["slate"] == freq["slate"] and again[1]["slate"] == prior["slate"]
    assert again[0]["logging"]["slates_how"] == "pages"
    assert main([*base[:2], "mne"]) == 2 and "did you mean 'men'" in capsys.readouterr().err
