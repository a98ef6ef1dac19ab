"""The ``device`` option of every torch component (CTR models, the generator, the SB3 agents).

On the CPU: the option is validated before work starts, reaches the module (its parameters are on
that device), and ``device="cpu"`` gives exactly the default's results. ``cuda`` where torch sees no
GPU is a clear error. With a GPU, the ``gpu`` tests also train and predict there.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import adsim  # noqa: F401  (registers the envs)
from adsim import make_config
from adsim.config import WorldConfig
from adsim.ctr import CTRPredictor, FeatureSpec, ModelConfig, TrainConfig, load, log_impressions, train_on_impressions
from adsim.ctr.learned import LearnedCTR
from adsim.generator.conditioning import build_corpus, request_values, sample_requests
from adsim.generator.generate import CreativeGenerator
from adsim.generator.model import CreativeTransformer, GeneratorConfig
from adsim.generator.train import TrainConfig as GenTrainConfig
from adsim.generator.train import pretrain
from adsim.validation import check_device
from adsim.world import cached_world
from agents.registry import make_policy

torch.set_num_threads(1)
GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="no GPU: torch.cuda.is_available() is False")
TINY_GEN = GeneratorConfig(n_interest_tags=4, d_model=32, n_heads=2, n_enc_layers=1, n_dec_layers=1, d_ff=64)
GEN_TRAIN = GenTrainConfig(corpus_size=600, epochs=1, batch_size=64, lr=5e-3)
CTR_TRAIN = TrainConfig(max_epochs=2, batch_size=512, seed=0)


def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def on(module: torch.nn.Module) -> set[str]:
    return {p.device.type for p in module.parameters()}


# ----------------------------------------------------------------------------- the check
def test_check_device_resolves_and_rejects(monkeypatch):
    assert check_device("cpu") == "cpu"
    with pytest.raises(ValueError, match=r"device == 'gpu', must be one of 'cpu', 'cuda', 'auto' or 'cuda:N'"):
        check_device("gpu")
    for bad in ("cuda:x", "cpu:0", "auto:1", ""):
        with pytest.raises(ValueError, match="must be one of"):
            check_device(bad)
    with pytest.raises(TypeError, match="device must be a str"):
        check_device(0)
    no_gpu(monkeypatch)
    assert check_device("auto") == "cpu"
    with pytest.raises(ValueError, match=r"train_device == 'cuda', but torch.cuda.is_available\(\) is False"):
        check_device("cuda", "train_device")
    with pytest.raises(ValueError, match="is_available"):
        check_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # resolution only: nothing runs there
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert check_device("auto") == "cuda" and check_device("cuda:0") == "cuda:0"
    with pytest.raises(ValueError, match="torch sees 1 GPU"):
        check_device("cuda:1")


# ----------------------------------------------------------------------------- CTR models
@pytest.fixture(scope="module")
def ctr_log():
    config = make_config("easy", mode="personalized", n_users=300, n_products=40, target_ctr=0.1)
    return config, log_impressions(config, 3000, num_envs=300, seed=1)


def test_ctr_device_is_validated_before_training(monkeypatch):
    no_gpu(monkeypatch)
    with pytest.raises(ValueError, match=r"device == 'cuda', but torch.cuda.is_available"):
        TrainConfig(device="cuda")
    with pytest.raises(ValueError, match=r"device == 'tpu', must be one of"):
        TrainConfig(device="tpu")
    spec = FeatureSpec()
    with pytest.raises(ValueError, match="device == 'cuda'"):
        CTRPredictor(spec, ModelConfig(name="lr"), device="cuda")
    with pytest.raises(ValueError, match="device == 'gpu'"):
        LearnedCTR(CTRPredictor(spec, ModelConfig(name="lr")), device="gpu")
    assert TrainConfig(device="auto").device == "cpu"  # stored resolved


def test_ctr_on_cpu_equals_the_default(ctr_log, tmp_path):
    config, imp = ctr_log
    default, _ = train_on_impressions(imp, "deepfm", CTR_TRAIN)
    cpu, _ = train_on_impressions(imp, "deepfm", TrainConfig(max_epochs=2, batch_size=512, seed=0, device="cpu"))
    assert cpu.device == "cpu" and on(cpu.model) == {"cpu"}
    for (k, a), b in zip(default.model.state_dict().items(), cpu.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert np.array_equal(default.predict_impressions(imp), cpu.predict_impressions(imp))
    loaded = load(default.save(tmp_path / "m"), device="cpu")
    assert loaded.device == "cpu" and np.array_equal(loaded.predict_impressions(imp), cpu.predict_impressions(imp))


@needs_gpu
def test_ctr_trains_and_predicts_on_the_gpu(ctr_log, tmp_path):
    config, imp = ctr_log
    cpu, _ = train_on_impressions(imp, "deepfm", CTR_TRAIN)
    gpu, _ = train_on_impressions(imp, "deepfm", TrainConfig(max_epochs=2, batch_size=512, seed=0, device="cuda"))
    assert on(gpu.model) == {"cuda"}
    assert np.allclose(gpu.predict_impressions(imp), cpu.predict_impressions(imp), atol=0.02)  # same init and batches
    est = LearnedCTR(tmp_path / "g" if gpu.save(tmp_path / "g") else None, device="cuda")
    assert est.model.device == "cuda" and on(est.model.model) == {"cuda"}
    assert np.allclose(est.model.predict_impressions(imp), gpu.predict_impressions(imp), atol=1e-5)


# ----------------------------------------------------------------------------- the generator
@pytest.fixture(scope="module")
def gen_world():
    return cached_world(WorldConfig(n_users=200, n_products=40, n_campaigns=4, n_interest_tags=4))


def test_generator_device_is_validated(monkeypatch, gen_world, tmp_path):
    no_gpu(monkeypatch)
    with pytest.raises(ValueError, match=r"device == 'cuda', but torch.cuda.is_available"):
        GenTrainConfig(device="cuda")
    with pytest.raises(ValueError, match="device == 'mps', must be one of"):
        GenTrainConfig(device="mps")
    model = CreativeTransformer(TINY_GEN)
    with pytest.raises(ValueError, match="device == 'cuda'"):
        CreativeGenerator(model, device="cuda")
    model.save(tmp_path / "g")
    with pytest.raises(ValueError, match="device == 'cuda'"):
        CreativeTransformer.load(tmp_path / "g", device="cuda")


def test_generator_on_cpu_equals_the_default(gen_world, tmp_path):
    corpus = build_corpus(gen_world, GEN_TRAIN.corpus_size, seed=0)
    default, curve_a = pretrain(corpus, TINY_GEN, GEN_TRAIN, progress=False)
    cpu, curve_b = pretrain(corpus, TINY_GEN, GenTrainConfig(corpus_size=600, epochs=1, batch_size=64, lr=5e-3,
                                                             device="cpu"), progress=False)
    assert on(cpu) == {"cpu"} and cpu.device.type == "cpu" and curve_a == curve_b
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), cpu.state_dict().values()))
    values = request_values(gen_world, sample_requests(gen_world, 20, np.random.default_rng(0)))
    want = CreativeGenerator(default).candidates(values, 4, seed=1)
    cpu.save(tmp_path / "g")
    loaded = CreativeGenerator.load(tmp_path / "g", device="cpu")
    assert on(loaded.model) == {"cpu"} and loaded.masks.device.type == "cpu"
    assert np.array_equal(loaded.candidates(values, 4, seed=1), want)
    assert np.array_equal(CreativeGenerator(cpu, device="cpu").candidates(values, 4, seed=1), want)


@needs_gpu
def test_generator_trains_and_decodes_on_the_gpu(gen_world):
    corpus = build_corpus(gen_world, GEN_TRAIN.corpus_size, seed=0)
    gpu, _ = pretrain(corpus, TINY_GEN, GenTrainConfig(corpus_size=600, epochs=1, batch_size=64, lr=5e-3,
                                                       device="cuda"), progress=False)
    assert on(gpu) == {"cuda"}
    values = request_values(gen_world, sample_requests(gen_world, 20, np.random.default_rng(0)))
    gen = CreativeGenerator(gpu)
    assert gen.masks.device.type == "cuda"
    assert gen.candidates(values, 4, seed=1).shape[:2] == (20, 4)
    assert gen.tokens(values, 3, spec=gen.spec.__class__(method="beam", beam_width=4)).shape[:2] == (20, 3)


# ----------------------------------------------------------------------------- RL agents
def tiny_vec(n: int):
    return gym.make_vec("adsim/AdSession-v0", num_envs=n, vectorization_mode="vector_entry_point", preset="tiny")


@pytest.mark.parametrize("name", ["ppo", "a2c", "dqn"])
def test_rl_device_is_validated_at_construction(monkeypatch, name):
    no_gpu(monkeypatch)
    with pytest.raises(ValueError, match=r"device == 'cuda', but torch.cuda.is_available"):
        make_policy(name, device="cuda")
    with pytest.raises(ValueError, match=r"device == 'gpu', must be one of"):
        make_policy(name, device="gpu")
    assert make_policy(name, device="auto").torch_device == "cpu"


@pytest.mark.parametrize("name, extra", [("ppo", {}), ("dqn", {"learning_starts": 64, "train_freq": 1})])
def test_rl_on_cpu_equals_the_default(name, extra):
    def trained(**kw):
        pol = make_policy(name, train_steps=256, **extra, **kw)
        pol.reset(4, seed=1)
        pol.learn(tiny_vec(4), scenario_seed=0)
        return pol

    default, cpu = trained(), trained(device="cpu")
    assert {p.device.type for p in cpu.model.policy.parameters()} == {"cpu"}
    for a, b in zip(default.model.policy.state_dict().values(), cpu.model.policy.state_dict().values()):
        assert torch.equal(a, b)
    obs, info = tiny_vec(32).reset(seed=9)
    assert np.array_equal(default.select(obs, info), cpu.select(obs, info))


@needs_gpu
def test_ppo_trains_on_the_gpu():
    pol = make_policy("ppo", train_steps=512, device="cuda")
    pol.reset(4, seed=1)
    pol.learn(tiny_vec(8), scenario_seed=0)
    assert {p.device.type for p in pol.model.policy.parameters()} == {"cuda"}
    obs, info = tiny_vec(16).reset(seed=2)
    assert pol.select(obs, info).shape == (16,)


# ----------------------------------------------------------------------------- the commands
@pytest.mark.parametrize("argv", [
    ["generate", "--goal", "promotion", "--tags", "1"],
    ["train-ctr", "--out", "OUT"],
    ["train-generator", "--out", "OUT"],
    ["ctr-online"],
])
def test_commands_reject_cuda_without_a_gpu_before_any_work(monkeypatch, tmp_path, capsys, argv):
    from experiments.cli import main

    no_gpu(monkeypatch)
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    assert main([*argv, "--device", "cuda"]) != 0
    assert "--device == 'cuda', but torch.cuda.is_available() is False" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing was written: the check came first
