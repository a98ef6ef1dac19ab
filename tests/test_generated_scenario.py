"""The generator in the loop: a benchmark scenario whose candidates the Transformer writes for each
request, on the template scenario's world and β0, with its CTR compared seed by seed with the
template-candidate scenario (``generator`` / ``compare_ctr_to``). A tiny generator is trained once
for the module (seconds); the runs are tiny too."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

import adsim  # noqa: F401  (registers the envs)
from adsim import make_config
from adsim.config import WorldConfig
from adsim.generator.conditioning import build_corpus
from adsim.generator.model import GeneratorConfig
from adsim.generator.scenario import DEFAULT_DIR, generator_source
from adsim.generator.train import TrainConfig, pretrain
from adsim.requests import scenario_intercept
from adsim.world import cached_world
from experiments.cli import main
from experiments.runner import make_jobs, parse_config, run_job, run_jobs
from experiments.runner.report import TIMING_COLUMNS, metrics_frame
from experiments.runner.run import Job, run_stack

torch.set_num_threads(1)
WORLD = dict(n_users=300, n_products=50, n_campaigns=5, n_interest_tags=4)
TINY = GeneratorConfig(n_interest_tags=4, d_model=32, n_heads=2, n_enc_layers=1, n_dec_layers=1, d_ff=64)


def _train(seed: int):
    corpus = build_corpus(cached_world(WorldConfig(**WORLD)), 1500, seed=seed)
    model, _ = pretrain(corpus, TINY, TrainConfig(corpus_size=1500, epochs=2, batch_size=64, lr=5e-3, seed=seed),
                        progress=False)
    return model


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory) -> Path:
    """A tiny generator written as `adsim train-generator` writes one (model.pt, model.json, config.json)."""
    out = tmp_path_factory.mktemp("generator")
    _train(0).save(out)
    (out / "config.json").write_text(json.dumps({"preset": "personalized", "train": {"corpus_size": 1500}}))
    return out


def doc(gen_dir: Path, **changes) -> dict:
    """A study: a template-candidate scenario and the generated one on the same world and size."""
    d = {"seeds": [3, 4], "steps": 12, "batch_size": 8, "n_buckets": 5,
         "scenarios": {"template": {"preset": "personalized", **WORLD, "policies": ["random", "oracle", "greedy"]},
                       "generated": {"preset": "personalized", **WORLD, "generator": str(gen_dir),
                                     "compare_ctr_to": "template",
                                     "policies": ["random", "oracle", "greedy", "linucb_shared"]}},
         "policies": {"random": {}, "oracle": {}, "greedy": {}, "linucb_shared": {}}}
    for key, value in changes.items():
        d["scenarios"]["generated"][key] = value
        if value is None:
            del d["scenarios"]["generated"][key]
    return d


@pytest.fixture(scope="module")
def config(gen_dir):
    return parse_config(doc(gen_dir))


@pytest.fixture(scope="module")
def results(config):
    jobs = make_jobs(config)
    return jobs, run_jobs(jobs, workers=1, progress=False)


def _metrics(jobs, results) -> pd.DataFrame:
    return metrics_frame(jobs, results).drop(columns=list(TIMING_COLUMNS))


# ----------------------------------------------------------------------------- validation, before any work
@pytest.mark.parametrize("change,error,match", [
    ({"generator": "nowhere/generator"}, ValueError,
     r"scenarios\.generated\.generator == 'nowhere/generator': no generator in .*adsim train-generator --out"),
    ({"generator": 3}, TypeError, r"scenarios\.generated\.generator must be 'default' or a directory"),
    ({"preset": "default", "compare_ctr_to": None}, ValueError,
     r"scenarios\.generated\.generator == .* needs mode == 'personalized'.*got mode == 'pool'"),
    ({"mode": "pool", "compare_ctr_to": None}, ValueError, r"scenarios\.generated\.generator .*needs mode == 'personalized'"),
    ({"env": "adsim/AdSession-v0", "preset": "default", "compare_ctr_to": None, "n_users": None, "n_products": None,
      "n_campaigns": None, "n_interest_tags": None}, ValueError,
     r"scenarios\.generated\.generator: env 'adsim/AdSession-v0' takes no candidate source"),
    ({"env": "adsim/SlateSelection-v0", "compare_ctr_to": None}, ValueError,
     r"scenarios\.generated\.generator: env 'adsim/SlateSelection-v0' takes no candidate source"),
    ({"n_interest_tags": 6, "compare_ctr_to": None}, ValueError,
     r"scenarios\.generated\.generator == .* reads 4 interest tags, the scenario's world has n_interest_tags == 6"),
    ({"compare_ctr_to": "nothing"}, ValueError, r"scenarios\.generated\.compare_ctr_to"),
    ({"compare_ctr_to": "generated"}, ValueError, r"compare_ctr_to == 'generated' names the scenario itself"),
    ({"compare_ctr_to": 1}, TypeError, r"scenarios\.generated\.compare_ctr_to must be a scenario name"),
    ({"steps": 10}, ValueError, r"compare_ctr_to == 'template': its steps × batch_size \(12, 8\) is not this "
                                r"scenario's \(10, 8\)"),
    ({"n_users": 301}, ValueError, r"compare_ctr_to == 'template' lives in another world \(world fields \['n_users'\]"),
    ({"n_candidates": 6}, ValueError, r"compare_ctr_to == 'template': its n_candidates == 8 is not this scenario's 6"),
    ({"policies": ["linucb_shared"]}, ValueError, r"the two scenarios run no policy in common"),
])
def test_bad_generated_scenarios_raise_naming_the_field(gen_dir, change, error, match):
    with pytest.raises(error, match=match):
        parse_config(doc(gen_dir, **change))


def test_default_generator_missing_says_how_to_make_it(gen_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no models/generator here
    with pytest.raises(ValueError, match=r"generator == 'default': no generator in 'models/generator'.*make install"):
        parse_config(doc(gen_dir, generator="default"))
    (tmp_path / DEFAULT_DIR).parent.mkdir()
    (tmp_path / DEFAULT_DIR).symlink_to(gen_dir)
    assert parse_config(doc(gen_dir, generator="default")).scenarios[1].generator_dir == str(gen_dir.resolve())


def test_an_ope_study_rejects_a_generator(gen_dir):
    d = {"seeds": [0], "scenarios": {"g": {"preset": "personalized", **WORLD, "generator": str(gen_dir)}},
         "policies": {"random": {}}, "ope": {"logging": ["random"], "targets": ["random"], "sizes": [100]}}
    with pytest.raises(ValueError, match=r"scenarios\.g\.generator is not used by an OPE study"):
        parse_config(d)


# ----------------------------------------------------------------------------- the same world and β0
def test_same_seed_same_world_and_beta0_as_the_template_scenario(config):
    """The generated env of a seed has the template env's world (the same cached object) and β0 (the
    template sampler's calibration, not one on the generated candidates); stacked seeds too; the
    users and contexts are the same, the candidates are the generator's."""
    tpl, gen = config.scenarios
    for seed in config.seeds:
        kw = dict(vectorization_mode="vector_entry_point", **dict(tpl.env_kwargs(seed, 12)))
        t = gym.make_vec(tpl.env, num_envs=4, **kw).unwrapped
        g = gym.make_vec(gen.env, num_envs=4, generator=gen.generator_dir, **kw).unwrapped
        assert g.core.world is t.core.world
        assert g.core.beta0 == t.core.beta0 == scenario_intercept(t.core.world.config, 8, "personalized")
        (ot, it), (og, ig) = t.reset(seed=seed), g.reset(seed=seed)
        for key in ("user", "context", "campaign"):
            assert np.array_equal(ot[key], og[key]), key
        assert not np.array_equal(ot["candidates"], og["candidates"])
        assert not np.allclose(it["click_probs"], ig["click_probs"])
    stacked = gym.make_vec(gen.env, num_envs=8, vectorization_mode="vector_entry_point", generator=gen.generator_dir,
                           world_seeds=list(config.seeds), **dict(gen.env_kwargs(config.seeds[0], 12))).unwrapped
    assert [c.beta0 for c in stacked.core.cores] == [
        scenario_intercept(WorldConfig(**WORLD, seed=s), 8, "personalized") for s in config.seeds]
    assert stacked.core.cores[0].beta0 != stacked.core.cores[1].beta0  # each world its own


def test_single_generated_env_is_the_batch_of_one(gen_dir):
    kw = dict(preset="personalized", **WORLD, seed=3, horizon=6, generator=str(gen_dir))
    single = gym.make("adsim/CreativeSelection-v0", **kw).unwrapped
    vec = gym.make_vec("adsim/CreativeSelection-v0", num_envs=3, vectorization_mode="vector_entry_point", **kw)
    (o1, i1), (ov, iv) = single.reset(seed=5), vec.reset(seed=5)
    for t in range(5):
        for key in o1:  # the running CTR estimate is one platform model shared by the slots
            assert key == "ctr_estimate" and t > 0 or np.array_equal(o1[key], ov[key][0]), (t, key)
        assert np.array_equal(i1["click_probs"], iv["click_probs"][0]), t
        action = int(t % 8)
        o1, r1, _, _, i1 = single.step(action)
        ov, rv, _, _, iv = vec.step(np.full(3, action))
        assert r1 == rv[0] and i1["regret"] == iv["regret"][0]


def test_the_generated_world_differs_from_one_calibrated_on_its_candidates(gen_dir):
    """Without the template β0, the core would calibrate β0 on the (weak) generated candidates and
    lift every click probability: the hook is what keeps the scenarios comparable."""
    from adsim.selection import SelectionCore

    cfg = make_config("personalized", **WORLD, seed=3)
    own = SelectionCore(cfg, 2, candidate_source=generator_source(gen_dir, cfg.world))
    assert own.beta0 > scenario_intercept(cfg.world, 8, "personalized") + 0.1


def test_generator_sources_are_seeded_by_the_world(gen_dir):
    a = generator_source(gen_dir, WorldConfig(**WORLD, seed=3))
    assert generator_source(gen_dir, WorldConfig(**WORLD, seed=3)) is a  # one per world and process
    assert generator_source(gen_dir, WorldConfig(**WORLD, seed=4)) is not a


# ----------------------------------------------------------------------------- regret, determinism
def test_oracle_regret_is_exactly_zero_over_the_generated_candidates(results):
    m = _metrics(*results)
    g = m[m["scenario"] == "generated"]
    assert (g.loc[g["policy"] == "oracle", "cum_regret"] == 0.0).all()
    assert (g.loc[g["policy"] == "random", "cum_regret"] > 0).groupby(g["seed"]).any().all()
    # the oracle's CTR is the best generated candidate's, not the best template one's
    final = m[m["step"] == m["step"].max()].set_index(["scenario", "policy", "seed"])["cum_expected_reward"].sort_index()
    assert not np.allclose(final.loc[("generated", "oracle")], final.loc[("template", "oracle")])


def test_a_generated_run_is_deterministic_and_stacked_seeds_equal_each_seed_alone(config, results):
    jobs, res = results
    gen_jobs = [(j, r) for j, r in zip(jobs, res) if j.scenario == 1 and config.policies[j.policy].label == "greedy"]
    again = run_job(Job(config, 1, gen_jobs[0][0].policy, gen_jobs[0][0].seed))
    for field in again._fields:
        assert np.array_equal(getattr(again, field), getattr(gen_jobs[0][1], field), equal_nan=True) or \
            field == "policy_seconds", field
    stacked = run_stack([j for j, _ in gen_jobs])
    for (_, alone), s in zip(gen_jobs, stacked):
        assert np.array_equal(alone.cum_regret, s.cum_regret) and np.array_equal(alone.cum_clicks, s.cum_clicks)


def test_a_process_pool_warms_each_generated_world_once_and_gives_the_serial_results(config, results, gen_dir):
    # the pool first warms each generated world in the generator's store (one task per world), then
    # runs the units, generated ones last; the results are the serial run's exactly
    import shutil

    from adsim.generator.scenario import STORE
    from experiments.runner.run import generator_worlds

    jobs, serial = results
    worlds = generator_worlds(jobs)
    assert [(d, c.world.seed) for d, c in worlds] == [(str(gen_dir), 3), (str(gen_dir), 4)]
    shutil.rmtree(gen_dir / STORE, ignore_errors=True)
    pooled = run_jobs(jobs, workers=2, progress=False)
    pd.testing.assert_frame_equal(_metrics(jobs, pooled), _metrics(jobs, serial))
    assert len(list((gen_dir / STORE).glob("*.npz"))) == len(worlds)


# ----------------------------------------------------------------------------- the bench, end to end
def test_bench_writes_the_ctr_comparison_and_names_the_generator(gen_dir, tmp_path):
    d = doc(gen_dir)
    d["scenarios"]["generated"]["policies"].append("dqn")
    d["policies"]["dqn"] = {"train_steps": 64, "learning_starts": 16, "ignore_keys": ["candidates"]}
    path = tmp_path / "study.toml"
    path.write_text(_toml(d))
    out = tmp_path / "out"
    assert main(["bench", "--config", str(path), "--out", str(out), "--jobs", "1", "--no-progress"]) == 0
    comp = pd.read_csv(out / "ctr_comparison.csv")
    assert list(comp["policy"]) == ["random", "oracle", "greedy"] and (comp["seeds"] == 2).all()
    assert (comp["compared_to"] == "template").all()
    metrics = pd.read_csv(out / "metrics.csv")
    last = metrics[metrics["step"] == metrics["step"].max()].set_index(["scenario", "policy", "seed"]).sort_index()
    for _, r in comp.iterrows():  # the table's differences are the per-seed differences' means
        diff = (last.loc[("generated", r["policy"]), "ctr"] - last.loc[("template", r["policy"]), "ctr"]).mean()
        assert r["ctr_diff"] == pytest.approx(diff) and r["ctr_diff_low"] <= r["ctr_diff"] <= r["ctr_diff_high"]
        true = {s: last.loc[(s, r["policy"]), "cum_expected_reward"] / last.loc[(s, r["policy"]), "impressions"]
                for s in ("generated", "template")}  # reward = click: expected reward is the true CTR
        assert r["true_ctr_diff"] == pytest.approx((true["generated"] - true["template"]).mean())
    summary = (out / "summary.md").read_text()
    assert "CTR against `template` on the same seeds" in summary
    missing = next(line for line in summary.splitlines() if line.startswith("Not run in `template`"))
    assert sorted(missing.split(": ")[1].rstrip(".").split(", ")) == ["`dqn`", "`linucb_shared`"]
    meta = json.loads((out / "config.json").read_text())
    sha = hashlib.sha256((gen_dir / "model.pt").read_bytes()).hexdigest()
    assert meta["config"]["scenarios"]["generated"]["generator"]["weights_sha256"] == sha
    assert meta["generators"]["generated"]["training"] == {"preset": "personalized", "train": {"corpus_size": 1500}}
    assert meta["generators"]["generated"]["given"] == str(gen_dir)
    assert "generator" not in meta["config"]["scenarios"]["template"]


def test_the_fingerprint_names_the_generator(gen_dir, tmp_path):
    other = tmp_path / "other"
    _train(1).save(other)
    a, b = parse_config(doc(gen_dir)), parse_config(doc(other))
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == parse_config(doc(gen_dir)).fingerprint()
    copy = tmp_path / "copy"  # the same weights elsewhere: the same numbers, the same fingerprint
    copy.mkdir()
    for name in ("model.pt", "model.json"):
        (copy / name).write_bytes((gen_dir / name).read_bytes())
    assert parse_config(doc(copy)).fingerprint() == a.fingerprint()
    without = parse_config(doc(gen_dir, generator=None, compare_ctr_to=None))  # plain configs keep theirs
    assert "generator" not in json.dumps(without.to_dict()["scenarios"])


def _toml(d: dict) -> str:
    """A TOML file of a study document (tables and scalar/list values only)."""
    def value(v):
        return json.dumps(v) if not isinstance(v, bool) else str(v).lower()

    lines = [f"{k} = {value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for top in ("scenarios", "policies"):
        for name, table in d[top].items():
            lines += ["", f"[{top}.{name}]"] + [f"{k} = {value(v)}" for k, v in table.items()]
    text = "\n".join(lines) + "\n"
    assert tomllib.loads(text)["scenarios"] == d["scenarios"]
    return text
