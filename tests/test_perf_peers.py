"""The peers suite (``adsim perf --suite peers``) on a short problem: structure, regrets, skips."""

from __future__ import annotations

import numpy as np

import experiments.perf.peers as peers


def test_peers_suite_reports_rates_ratios_and_skips(monkeypatch):
    monkeypatch.setattr(peers, "QUICK_ROUNDS", 150)
    real = peers._available
    absent = {"vw": "vowpalwabbit is not importable (test)", "mabwiser": "mabwiser is not importable (test)"}
    monkeypatch.setattr(peers, "_available", lambda lib: absent.get(lib) or real(lib))  # same result installed or not
    out = peers.run(quick=True)
    assert {k: v for k, v in out["skipped"].items() if k != "obp"} == absent
    assert "vw" not in out["epsilon_greedy"] and "mabwiser" not in out["epsilon_greedy"]
    for name in peers.PAIRS:
        adsim = out[name]["adsim"]
        assert adsim["wall_median"] > 0 and adsim["cpu_median"] > 0
        assert adsim["fixed_arm_regret"] <= adsim["regret"] + 1e-9  # the per-round best beats any fixed arm
        obp = out[name].get("obp")
        if isinstance(obp, dict):
            assert np.isclose(obp["adsim_over_peer_wall"], adsim["wall_median"] / obp["wall_median"])
            assert isinstance(obp["regrets_agree"], bool)
        assert isinstance(out[name]["computes"], str)  # what each side computes, said
    default = out["thompson"]["adsim_sampling_propensities"]  # adsim's default Thompson, timed beside
    assert default["cpu_median"] > 0 and default["regret"] > 0
    assert isinstance(out["ucb1"]["obp"], str)  # no OBP counterpart, said so
    assert set(out["meets_target"]) == {"epsilon_greedy", "thompson", "linucb", "lin_ts_arms"}


def test_problem_is_fixed_by_the_seed():
    a, b = peers.problem(50), peers.problem(50)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert a["p"].shape == (50, peers.K) and a["x1"].shape == (50, peers.D + 1)
    np.testing.assert_array_equal(a["x1"][:, -1], 1.0)
