"""Bounds on values (issue 18, point 4): the OPE propensity floor, finite results only, and seeds
that are non-negative integers everywhere a seed enters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adsim import make_config
from adsim.config import WorldConfig
from adsim.validation import check_seed
from adsim.ctr import TrainConfig, log_impressions
from adsim.envs.ad_session import AdSessionEnv, AdSessionVectorEnv
from adsim.envs.creative_selection import CreativeSelectionEnv, CreativeSelectionVectorEnv
from adsim.ope import PSCORE_FLOOR, BanditLog, estimate_all, importance_weights, ips, load_log, snips
from agents import RandomPolicy
from experiments.cli import main
from experiments.jsonout import dumps
from experiments.ope.collect import collect_log

SMALL = dict(n_users=200, n_products=40)


# ------------------------------------------------------------------ OPE propensity floor
def _rounds(n=50, K=4):
    rng = np.random.default_rng(0)
    action = rng.integers(0, K, n)
    return (rng.random(n), action, np.full(n, 1.0 / K), np.full((n, K), 1.0 / K))


def test_propensity_below_floor_refused_unless_clipping_asked_for():
    r, a, p, t = _rounds()
    p[3] = 1e-300  # the case: IPS == 6e295 before
    with pytest.raises(ValueError, match=r"pscore\[3\] == 1e-300 \(1 row\(s\) in all\) is below the propensity "
                                         r"floor 1e-06.*clip_pscore=True"):
        ips(r, a, p, t)
    with pytest.raises(ValueError, match="below the propensity floor"):
        importance_weights(a, p, t)
    est = ips(r, a, p, t, clip_pscore=True)
    assert est.n_clipped == 1 and np.isfinite(est.value)
    w = t[np.arange(50), a] / np.where(np.arange(50) == 3, PSCORE_FLOOR, p)
    assert est.value == pytest.approx(np.mean(w * r))  # clipped to exactly the floor
    q = np.zeros_like(t)
    ests = estimate_all(r, a, p, t, q, clip_pscore=True)
    assert {k: e.n_clipped for k, e in ests.items()} == {"ips": 1, "snips": 1, "dm": 0, "dr": 1, "dr_clip": 1,
                                                         "switch_dr": 1}
    assert ips(*_rounds()).n_clipped == 0
    with pytest.raises(TypeError, match="clip_pscore must be a bool"):
        ips(r, a, p, t, clip_pscore=1)


def test_non_finite_estimate_raises():
    r, a, p, t = _rounds()
    r[:] = 1e308  # the case: Infinity in the JSON before
    for est in (ips, snips):
        with pytest.raises(ValueError, match=r"the estimate is not finite \(inf\)"):
            est(r, a, p, t)


def test_json_refuses_non_finite_numbers():
    assert json.loads(dumps({"a": [1.5, 2]})) == {"a": [1.5, 2]}
    with pytest.raises(ValueError, match=r"result field estimates.ips.ci.1 is inf"):
        dumps({"estimates": {"ips": {"ci": [0.0, float("inf")]}}})
    with pytest.raises(ValueError, match=r"result field x is nan"):
        dumps({"x": float("nan")})


@pytest.fixture(scope="module")
def logged():
    return collect_log(RandomPolicy(), make_config(**SMALL), 300, num_envs=100, seed=0)


def _save_without_pi_b(log: BanditLog, path, **changes):
    cols = {k: getattr(log, k).copy() for k in ("context", "action_context", "ctr_estimate", "action", "reward",
                                                 "pscore", "position")}
    cols.update(changes)
    return BanditLog(**cols, obs_dims=log.obs_dims, meta=log.meta).save(path)


def test_cli_ope_floor_and_clipping(logged, tmp_path, capsys):
    p = logged.pscore.copy()
    p[7] = 1e-300
    path = _save_without_pi_b(logged, tmp_path / "tiny", pscore=p)
    (tmp_path / "t.toml").write_text('policy = "random"\n')
    args = ["ope", "--log", str(path), "--target", str(tmp_path / "t.toml"), "--reward-model", "none"]
    assert main(args) == 2
    assert "below the propensity floor" in capsys.readouterr().err
    assert main(args + ["--clip-pscore"]) == 0
    assert json.loads(capsys.readouterr().out)["pscore_rows_clipped"] == 1


def test_cli_ope_huge_reward_is_an_error_not_infinity(logged, tmp_path, capsys):
    path = _save_without_pi_b(logged, tmp_path / "huge", reward=np.full(logged.n_rounds, 1e308))
    (tmp_path / "t.toml").write_text('policy = "random"\n')
    assert main(["ope", "--log", str(path), "--target", str(tmp_path / "t.toml"), "--reward-model", "none"]) == 2
    out = capsys.readouterr()
    assert "not finite" in out.err and "Infinity" not in out.out
    assert load_log(path).reward.max() == 1e308


# ------------------------------------------------------------------ seeds
BAD_SEEDS = [(0.5, TypeError, "got float 0.5"), (2.0, TypeError, "got float 2.0"), ("3", TypeError, "got str"),
             (True, TypeError, "got bool True"), (np.bool_(False), TypeError, "got bool"),
             (-1, ValueError, r"seed == -1, must be >= 0"), (np.int64(-2), ValueError, "must be >= 0")]


def test_check_seed_accepts_python_and_numpy_integers():
    assert check_seed(3) == 3 and type(check_seed(np.int64(3))) is int and type(check_seed(np.uint8(3))) is int
    assert check_seed([0, np.int32(1)]) == (0, 1) and check_seed(np.arange(3)) == (0, 1, 2)
    ss = np.random.SeedSequence(1)
    assert check_seed(ss) is ss
    with pytest.raises(TypeError, match=r"seed\[1\] must be a non-negative int"):
        check_seed([0, 1.5])
    with pytest.raises(TypeError, match="got list"):
        check_seed([0], many=False)
    with pytest.raises(ValueError, match="needs at least one seed"):
        check_seed([])


@pytest.fixture(scope="module")
def envs():
    cfg = make_config(**SMALL)
    return {"single": CreativeSelectionEnv(config=cfg), "vector": CreativeSelectionVectorEnv(4, config=cfg),
            "session": AdSessionEnv(), "session_vector": AdSessionVectorEnv(4)}


@pytest.mark.parametrize("seed, error, match", BAD_SEEDS)
@pytest.mark.parametrize("entry", ["single", "vector", "session", "session_vector", "policy", "world", "train",
                                   "log"])
def test_bad_seed_rejected_at_every_entry_point(envs, entry, seed, error, match):
    calls = {"policy": lambda: RandomPolicy().reset(4, seed=seed), "world": lambda: WorldConfig(seed=seed),
             "train": lambda: TrainConfig(seed=seed),
             "log": lambda: log_impressions(make_config(**SMALL), 10, num_envs=10, seed=seed)}
    call = calls.get(entry) or (lambda: envs[entry].reset(seed=seed))
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("entry", ["vector", "session_vector"])
def test_vector_seed_lists_are_not_truncated(envs, entry):
    env = envs[entry]
    with pytest.raises(TypeError, match=r"seed\[0\] must be a non-negative int .* got float 0.5"):
        env.reset(seed=[0.5, 1.5, 2.5, 3.9])  # was silently [0, 1, 2, 3]
    a, _ = env.reset(seed=[0, 1, 2, 3])
    b, _ = env.reset(seed=np.arange(4))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_single_env_rejects_a_seed_list(envs):
    with pytest.raises(TypeError, match="got list"):
        envs["single"].reset(seed=[1])


def test_numpy_integer_seed_equals_python_int(envs):
    a, _ = envs["single"].reset(seed=np.int64(7))
    b, _ = envs["single"].reset(seed=7)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert WorldConfig(seed=np.int64(3)) == WorldConfig(seed=3) and type(WorldConfig(seed=np.int64(3)).seed) is int
