"""The core CLI commands run and print what they promise (not timings)."""

import json

import pytest

from experiments.cli import main


def test_demo_prints_zero_regret_for_the_oracle(capsys):
    assert main(["demo", "--steps", "20", "--num-envs", "32"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"]["oracle"]["cumulative_regret"] == 0.0
    assert out["results"]["random"]["cumulative_regret"] > 0.0


def test_scenario_reports_calibrated_ctr_and_gaps(capsys):
    assert main(["scenario", "--preset", "hard", "--requests", "20000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["mean_ctr_random_policy"] - 0.03) < 0.004
    assert 1.0 < out["arm_ctr_p90_over_median"] < 1.15  # near-ties
    h = out["creative_headroom"]  # true CTRs on fresh requests: the mean template creative is the random policy's
    assert h["requests"] == 20000 and abs(h["mean_template_ctr"] - 0.03) < 0.004
    assert 1.0 < h["best_of_K_over_mean_template"] < h["lexicon_best_over_mean_template"]
    assert h["lexicon_best_over_mean_template"] == h["lexicon_best_ctr"] / h["mean_template_ctr"]


def test_default_world_keeps_the_best_creative_within_2x_and_set_overrides_a_field(capsys):
    assert main(["scenario", "--preset", "personalized", "--requests", "20000"]) == 0
    calibrated = json.loads(capsys.readouterr().out)["creative_headroom"]
    # issue 13: the best creative the lexicon allows at most ~2x the mean template (measured 1.96)
    assert 1.5 < calibrated["lexicon_best_over_mean_template"] <= 2.0
    assert 1.05 < calibrated["best_of_K_over_mean_template"] < 1.3  # tens of percent, not multiples
    assert main(["scenario", "--preset", "personalized", "--requests", "20000", "--set", "creative_scale=1.0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["overrides"] == {"creative_scale": 1.0}
    assert out["creative_headroom"]["lexicon_best_over_mean_template"] > 6  # the uncalibrated world: 8.1x


def test_perf_env_suite_prints_json(capsys, monkeypatch):
    import experiments.perf.env as env_perf

    monkeypatch.setattr(env_perf, "_vector", lambda mode, n: lambda: n)  # keep it short: a chunk doing nothing
    assert main(["perf", "--suite", "env", "--quick"]) == 0
    out = json.loads(capsys.readouterr().out)["env"]
    assert out["single_pool_steps_per_s"]["median"] > 0
    for mode in ("pool", "personalized"):  # every figure beside the floor timed in alternation with it
        ratios = out[f"floor_ratio_{mode}"]
        assert set(ratios) == {"single_N1", "vector_N1024", "vector_N4096"}
        assert all(r["wall"] > 0 and r["cpu"] > 0 for r in ratios.values())
        assert out[f"floor_N4096_impressions_per_s_{mode}_run"]["repeats"] == 3
    assert ratios["vector_N4096"]["cpu"] > 1  # a chunk that does nothing outruns the kernel


def test_unknown_perf_suite_is_rejected(capsys):
    assert main(["perf", "--suite", "nope"]) == 2
    assert "unknown suite 'nope'" in capsys.readouterr().err


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit):
        main(["frobnicate"])


@pytest.mark.parametrize("argv,message", [
    (["scenario", "--preset", "nope"], "adsim scenario: error: unknown preset 'nope'"),
    (["scenario", "--set", "creative_scale"], "expected field=value with an env or world field"),
    (["scenario", "--set", "creative_scal=0.5"], "unknown config key 'creative_scal'"),
    (["scenario", "--set", "creative_scale=-1"], "creative_scale == -1"),
    (["train-ctr", "--out", "/nonexistent/never-written", "--set", "creative_scal=1"], "unknown config key 'creative_scal'"),
    (["train-ctr", "--out", "/nonexistent/never-written", "--labels", "probs"], "unknown --labels 'probs'"),
    (["demo", "--preset", "eazy"], "adsim demo: error: unknown preset 'eazy'; did you mean 'easy'?"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
