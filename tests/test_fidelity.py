"""Fidelity against a real log (adsim.fidelity, ``adsim fidelity`` / ``adsim calibrate``): the OBD
reader, the statistics and their intervals, and calibration recovering a known world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adsim import make_config
from adsim.fidelity import (ClickLog, between_cv, calibrate, log_statistics, obd_sample_path, read_obd,
                            simulated_log)
from experiments.cli import main

SMALL = {"n_users": 400, "n_products": 60, "n_campaigns": 10}


def _write_obd(log: ClickLog, path) -> None:
    """A log in the Open Bandit Dataset's CSV layout (1-based positions, hashed user features)."""
    frame = pd.DataFrame({"timestamp": np.arange(len(log.click)), "item_id": log.item, "position": log.position + 1,
                          "click": log.click.astype(np.int64), "propensity_score": 0.0125})
    for i, codes in enumerate(log.groups.values()):
        frame[f"user_feature_{i}"] = [f"h{c:04x}" for c in codes]
    frame.to_csv(path)


def test_between_cv_known_answers():
    # equal CTRs: no spread beyond binomial noise
    assert between_cv(np.array([10, 10, 10]), np.array([1000, 1000, 1000])) == 0.0
    # two items at 1 % and 3 % (10^6 impressions each), pooled 2 %: Σnᵢ(p̂ᵢ − p̂)² = 200, binomial part
    # (I − 1)·p̂(1 − p̂) = 0.0196, denominator 2·10^6 − 10^6 = 10^6: τ² = 1.9998e-4 (the unbiased
    # variance of the items' CTRs, 2e-4, less the noise), CV = τ / 0.02
    cv = between_cv(np.array([10**4, 3 * 10**4]), np.array([10**6, 10**6]))
    assert abs(cv - np.sqrt((200 - 0.0196) / 1e6) / 0.02) < 1e-12


def test_statistics_of_a_hand_made_log():
    item = np.repeat([0, 1], 5000)
    position = np.tile([0, 1], 5000)
    click = np.zeros(10_000, dtype=np.int8)
    click[::50] = 1  # 200 clicks, all at position 0 (even rows)
    s = log_statistics(ClickLog(item, position, click, {"g": position.copy()}, "hand"))
    assert s["ctr"]["value"] == 0.02 and s["ctr"]["ci95"][0] < 0.02 < s["ctr"]["ci95"][1]
    top, second = s["positions"]
    assert top["ctr"] == 0.04 and second["ctr"] == 0.0 and top["share"] == second["share"] == 0.5
    assert "ctr_over_top" not in top and second["ctr_over_top"] == 0.0
    assert s["groups"]["g"]["spread"]["ci95"] is None  # two values: no bootstrap interval


def test_the_obd_sample_is_read_with_the_projects_own_reader():
    pytest.importorskip("obp")
    log = read_obd(obd_sample_path())
    assert len(log.click) == 10_000 and int(log.click.sum()) == 38  # the sample's 38 clicks
    assert set(np.unique(log.position)) == {0, 1, 2} and len(np.unique(log.item)) == 80
    assert sorted(log.groups) == ["hour_bucket"] + [f"user_feature_{i}" for i in range(4)]
    assert set(np.unique(log.groups["hour_bucket"])) == {0, 1, 2, 3}  # from the timestamps


@pytest.mark.parametrize("edit, match", [
    (lambda f: f.drop(columns="click"), r"missing OBD column\(s\) \['click'\]"),
    (lambda f: f.assign(click=2), "'click' must be 0 or 1"),
    (lambda f: f.assign(position=0), r"'position' must be >= 1 \(1 = top\)"),
    (lambda f: f.assign(propensity_score=0.0), r"'propensity_score' must be in \(0, 1\]"),
    (lambda f: f.assign(item_id=0.5), "'item_id' must hold integers"),
])
def test_a_bad_obd_file_is_rejected(tmp_path, edit, match):
    good = tmp_path / "good.csv"
    _write_obd(ClickLog(np.arange(6) % 2, np.arange(6) % 3, np.array([0, 1, 0, 0, 1, 0], np.int8), {}, "x"), good)
    edit(pd.read_csv(good, index_col=0)).to_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match=match):
        read_obd(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="is not a file"):
        read_obd(tmp_path / "none.csv")


def test_calibration_recovers_a_known_world(tmp_path):
    """A log the simulator wrote with slot factors (1, 0.6, 0.3), shares (0.5, 0.3, 0.2) and
    creative_scale 1: calibrate fits them back (within the log's intervals / the bisection's tolerance)."""
    truth = make_config("default", slot_factors=(1.0, 0.6, 0.3), slot_shares=(0.5, 0.3, 0.2), creative_scale=1.0,
                        target_ctr=0.05, **SMALL)
    path = tmp_path / "log.csv"
    _write_obd(simulated_log(truth, 200_000, seed=1), path)
    stats = log_statistics(read_obd(path))
    fit = calibrate(stats, make_config("default", **SMALL), n_impressions=50_000, seed=2, tol=0.03)
    assert all(fit["identified"].values())
    w = fit["world"]
    assert abs(w["target_ctr"] - 0.05) < 0.002
    np.testing.assert_allclose(w["slot_shares"], (0.5, 0.3, 0.2), atol=0.005)
    np.testing.assert_allclose(w["slot_factors"], (1.0, 0.6, 0.3), atol=0.06)
    assert 0.7 < w["creative_scale"] < 1.4 and abs(fit["evidence"]["simulated_item_cv"] - stats["item_spread"][
        "between_cv"]) <= 0.03


def test_fidelity_and_calibrate_commands(tmp_path, capsys):
    log = simulated_log(make_config("default", **SMALL), 20_000, seed=3)
    path = tmp_path / "log.csv"
    _write_obd(log, path)
    assert main(["fidelity", "--log", str(path), "--impressions", "5000"]) == 0
    out = capsys.readouterr().out
    assert "| CTR |" in out and "| position 2 ÷ top |" in out and "between-item CV" in out
    assert main(["calibrate", "--log", str(path), "--impressions", "5000", "--target-ctr", "0.0035"]) == 0
    out = capsys.readouterr().out
    assert "target_ctr = 0.0035" in out and "slot_shares = [" in out
    assert main(["calibrate", "--log", str(path), "--target-ctr", "0.9"]) == 2
    assert "--target-ctr == 0.9" in capsys.readouterr().err
    assert main(["fidelity", "--log", str(path), "--preset", "personalized"]) == 2
    assert "use a pool preset" in capsys.readouterr().err


def test_the_obd_preset_is_what_calibrate_fits_to_the_sample():
    pytest.importorskip("obp")
    fit = calibrate(log_statistics(read_obd(obd_sample_path())), make_config("default"), target_ctr=0.0035)
    assert fit["identified"] == {"target_ctr": True, "slot_shares": True, "slot_factors": False,
                                 "creative_scale": False}  # 38 clicks: no position effect, spread unknown
    preset = make_config("obd").world
    assert (fit["world"]["target_ctr"], tuple(fit["world"]["slot_factors"]), fit["world"]["creative_scale"]) == (
        preset.target_ctr, preset.slot_factors, preset.creative_scale)
    np.testing.assert_allclose(fit["world"]["slot_shares"], preset.slot_shares, atol=0.01)  # a third by design
    lo, hi = fit["evidence"]["log_item_cv_ci95"]
    sim = log_statistics(simulated_log(make_config("obd", **SMALL), 100_000))["item_spread"]["between_cv"]
    assert lo <= sim <= hi  # the preset's creative spread is one the sample cannot reject
