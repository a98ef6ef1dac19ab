"""Safe loading and world fingerprints (issue 18, points 1 and 3).

Every saved model and log records the world it was made in; using it in another world raises
unless the caller opts in (``allow_other_world=True``, for transfer experiments). Reward models
are stored as JSON and arrays: nothing adsim loads is unpickled.
"""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pyarrow as pa
import pytest

from adsim import make_config
from adsim.ctr import load, log_impressions, save_impressions, train_on_impressions
from adsim.ctr.data import from_table, to_table
from adsim.ctr import LearnedCTR
from adsim.envs.creative_selection import CreativeSelectionVectorEnv
from adsim.generator.reward import LogisticCTR, load_reward_model, log_impressions as log_shown, save_reward_model
from adsim.ope import load_log
from adsim.world import check_world, world_fingerprint
from agents import RandomPolicy
from experiments.cli import main
from experiments.ope.collect import collect_log

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMALL = dict(mode="personalized", n_users=200, n_products=40, target_ctr=0.1)


@pytest.fixture(scope="module")
def world0():
    return make_config("easy", **SMALL)


@pytest.fixture(scope="module")
def world1():
    return make_config("easy", seed=1, **SMALL)


@pytest.fixture(scope="module")
def imp0(world0):
    return log_impressions(world0, 2000, num_envs=200, seed=0)


def test_fingerprint_identifies_the_world(world0, world1):
    assert world_fingerprint(world0.world) == world_fingerprint(make_config("easy", **SMALL).world)
    assert world_fingerprint(world0.world) != world_fingerprint(world1.world)
    assert world_fingerprint(world0.world) != world_fingerprint(world0.replace(creative_scale=2.9).world)
    assert re.fullmatch(r"world-[0-9a-f]{16}", world_fingerprint(world0.world))
    with pytest.raises(TypeError, match="World or WorldConfig"):
        world_fingerprint("world-0")


def test_check_world_messages(world0, world1):
    fp = world_fingerprint(world0.world)
    check_world(fp, world0.world, "x")  # same world: fine
    with pytest.raises(ValueError, match=r"model m comes from world world-.*seed == 1.*allow_other_world=True"):
        check_world(fp, world1.world, "model m")
    with pytest.raises(ValueError, match="records no world fingerprint"):
        check_world(None, world0.world, "old model")
    check_world(fp, world1.world, "x", allow_other_world=True)  # the explicit opt-in


# ------------------------------------------------------------------ CTR logs and models
def test_ctr_log_records_its_world_and_survives_parquet(imp0, world0, tmp_path):
    assert imp0.metadata["world"] == world_fingerprint(world0.world)
    from adsim.ctr import load_impressions

    back = load_impressions(save_impressions(imp0, tmp_path / "imp.parquet"))
    assert back.metadata["world"] == imp0.metadata["world"]


def test_ctr_log_action_outside_k_rejected(imp0):
    table = to_table(imp0)
    action = table.column("action").to_numpy().copy()
    action[5] = 99  # K == 8
    bad = table.set_column(table.schema.get_field_index("action"), "action", pa.array(action, pa.int32()))
    with pytest.raises(ValueError, match=r"column 'action' == 99 at row 5, must be in \[0, 7\]"):
        from_table(bad)


def test_ctr_model_in_another_world_raises(imp0, world0, world1, tmp_path):
    model, _ = train_on_impressions(imp0, "lr")
    assert model.meta["world"] == world_fingerprint(world0.world)
    model.save(tmp_path / "m")
    assert load(tmp_path / "m").meta["world"] == model.meta["world"]
    CreativeSelectionVectorEnv(4, config=world0, ctr_model=str(tmp_path / "m"))  # its own world
    with pytest.raises(ValueError, match=r"ctr model '.*m' comes from world .*\(seed == 1\)"):
        CreativeSelectionVectorEnv(4, config=world1, ctr_model=str(tmp_path / "m"))
    transfer = LearnedCTR(tmp_path / "m", allow_other_world=True)
    env = CreativeSelectionVectorEnv(4, config=world1, estimator=transfer)
    obs, _ = env.reset(seed=0)
    assert obs["ctr_estimate"].shape == (4, world1.n_candidates)
    with pytest.raises(TypeError, match="allow_other_world must be a bool"):
        LearnedCTR(model, allow_other_world="yes")


def test_ctr_model_without_world_record_raises(imp0, world0):
    model, _ = train_on_impressions(imp0, "lr")
    del model.meta["world"]  # as a model saved before fingerprints
    with pytest.raises(ValueError, match="records no world fingerprint"):
        CreativeSelectionVectorEnv(4, config=world0, estimator=LearnedCTR(model))


def test_train_ctr_data_from_another_world_is_rejected(tmp_path, capsys):
    imp = log_impressions(make_config("easy", seed=5), 300, num_envs=100, seed=0)
    path = save_impressions(imp, tmp_path / "w5.parquet")
    rc = main(["train-ctr", "--model", "lr", "--preset", "easy", "--data", str(path), "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "impressions file" in err and "comes from world" in err and "pass --allow-other-world" in err
    assert not (tmp_path / "o" / "lr").exists()  # rejected before any training


# ------------------------------------------------------------------ bandit logs
def test_bandit_log_records_its_world(world0, world1, tmp_path):
    log = collect_log(RandomPolicy(), world0, 200, num_envs=100, seed=0)
    assert log.meta["world"] == world_fingerprint(world0.world)
    path = log.save(tmp_path / "log")
    assert load_log(path, world=world0.world).n_rounds == 200
    with pytest.raises(ValueError, match=r"log '.*' comes from world"):
        load_log(path, world=world1.world)
    assert load_log(path, world=world1.world, allow_other_world=True).n_rounds == 200


# ------------------------------------------------------------------ reward models, no pickle
@pytest.fixture(scope="module")
def reward(world0):
    shown, clicks = log_shown(world0, 20, 100, 0)
    return LogisticCTR(world0.world.n_interest_tags).fit(shown, clicks), shown


def test_reward_model_round_trip_without_pickle(reward, world0, world1, tmp_path):
    ctr, shown = reward
    path = save_reward_model(ctr, tmp_path / "ctr_model", world0.world)
    assert sorted(p.name for p in path.iterdir()) == ["logistic.npz", "reward.json"]
    back = load_reward_model(path, world0.world)
    np.testing.assert_array_equal(back.estimate(shown), ctr.estimate(shown))
    with pytest.raises(ValueError, match="reward model .* comes from world"):
        load_reward_model(path, world1.world)
    assert load_reward_model(path, world1.world, allow_other_world=True).model is not None


def test_reward_model_refuses_a_pickle(tmp_path, world0):
    (tmp_path / "ctr_model.pkl").write_bytes(b"not read")
    with pytest.raises(ValueError, match="must be a directory with reward.json"):
        load_reward_model(tmp_path, world0.world)


def test_no_code_path_unpickles():
    # pickle / joblib / torch.load without weights_only / np.load with allow_pickle: none in adsim's code
    bad = []
    for path in (ROOT / d for d in ("adsim", "agents", "experiments")):
        for f in path.rglob("*.py"):
            text = f.read_text()
            for pattern in (r"\bimport pickle\b", r"\bpickle\.loads?\(", r"\bjoblib\b", r"allow_pickle=True",
                            r"torch\.load\((?![^)]*weights_only=True)"):
                if re.search(pattern, text):
                    bad.append(f"{f.relative_to(ROOT)}: {pattern}")
    assert not bad, bad
