"""Bounds on sizes (issue 18, point 5): memory estimates checked at construction, before any work,
against ``ADSIM_MEMORY_LIMIT`` (default: a quarter of the machine's memory); default workers that
fit in memory; a Ray address that does not answer is an error, not a hang."""

from __future__ import annotations

import socket
import time

import pytest

from adsim import make_config
from adsim.config import WorldConfig
from adsim.ctr import LearnedCTR
from adsim.envs.creative_selection import CreativeSelectionVectorEnv
from adsim.memory import (DEFAULT_FRACTION, ENV_VAR, WORKER_BYTES, check_memory, default_workers, env_bytes,
                          machine_memory, memory_limit, parse_bytes, world_bytes)
from experiments.runner.backends import check_ray_address
from experiments.runner.spec import parse_config


@pytest.fixture
def limit_8gib(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "8GiB")


def test_limit_is_configurable(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert memory_limit() == int(DEFAULT_FRACTION * machine_memory())
    monkeypatch.setenv(ENV_VAR, "500MB")
    assert memory_limit() == 500 * 10**6
    assert parse_bytes("2GiB") == 2 * 2**30 and parse_bytes("1024") == 1024
    for bad in ("lots", "-3GB", "0", "5 parsecs"):
        with pytest.raises(ValueError, match=ENV_VAR):
            parse_bytes(bad)
    with pytest.raises(ValueError, match=r"x needs about 1.0 GiB of memory, more than the limit of 0.5 GiB "
                                         rf"\({ENV_VAR}\); reduce y"):
        monkeypatch.setenv(ENV_VAR, str(2**29))
        check_memory(2**30, "x", "y")


def _fast(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_huge_world_raises_before_work(limit_8gib):
    with pytest.raises(ValueError, match=r"a world with n_users == 100000000 .* reduce n_users or n_products"):
        WorldConfig(n_users=10**8)
    assert world_bytes(WorldConfig()) < 2**28  # the default world: ~130 MB planned


def test_huge_env_raises_before_work(limit_8gib):
    with pytest.raises(ValueError, match=r"an env with num_envs == 1048576, n_candidates == 8 .* reduce num_envs"):
        CreativeSelectionVectorEnv(2**20, preset="personalized")
    cfg = make_config(fatigue_strength=1.0, n_users=100_000)
    with pytest.raises(ValueError, match=r"fatigue on, n_users == 100000.*reduce num_envs"):
        CreativeSelectionVectorEnv(4096, config=cfg)
    assert env_bytes(make_config(), 1024) < 2**27


def test_huge_ctr_budget_raises_before_work(limit_8gib):
    with pytest.raises(ValueError, match=r"logging n_impressions == 1000000000 .* reduce n_impressions"):
        LearnedCTR.from_arg(make_config(), "deepfm:1000000000")
    with pytest.raises(ValueError, match="NAME:IMPRESSIONS"):
        LearnedCTR.from_arg(make_config(), "deepfm:1e9")


def test_huge_run_raises_when_the_config_is_read(limit_8gib):
    doc = {"steps": 10**7, "batch_size": 10**6, "seeds": [0],
           "scenarios": {"s": {"preset": "default"}}, "policies": {"random": {"policy": "random"}}}
    with pytest.raises(ValueError, match=r"scenario 's' with steps == 10000000, batch_size == 1000000 and 1 "
                                         r"seeds .* reduce steps, batch_size or the number of seeds"):
        parse_config(doc)


def test_default_workers_respect_memory(monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(2 * WORKER_BYTES))
    assert default_workers() == min(2, __import__("os").cpu_count() or 1)
    monkeypatch.setenv(ENV_VAR, str(WORKER_BYTES // 2))
    assert default_workers() == 1


def test_ray_address_that_does_not_answer_is_an_error():
    with socket.socket() as s:  # a port nobody listens on: bind, then close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError, match=rf"Ray address '127.0.0.1:{port}' does not answer within 1 s"):
        check_ray_address(f"127.0.0.1:{port}", timeout=1)
    with pytest.raises(ValueError, match="must be host:port"):
        check_ray_address("nonsense")
    with socket.socket() as srv:  # a listening port answers
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        check_ray_address(f"ray://127.0.0.1:{srv.getsockname()[1]}", timeout=1)


def test_workers_times_their_memory_is_checked_before_anything_runs(monkeypatch, tmp_path, capsys):
    from experiments.cli import main
    from experiments.runner import load_config
    from experiments.runner.checks import worker_bytes

    config = load_config("experiments/configs/smoke.toml")
    per = worker_bytes(config)  # the interpreter + 3 stacked worlds and runs: more than WORKER_BYTES
    assert WORKER_BYTES < per < 2 * WORKER_BYTES and worker_bytes(config, stack=False) < per
    monkeypatch.setenv(ENV_VAR, str(3 * per))
    argv = ["bench", "--config", "experiments/configs/smoke.toml", "--out", str(tmp_path / "out"), "--dry-run"]
    assert main(argv + ["--jobs", "8"]) == 2  # 4 units at once + the parent > 3 workers' worth
    err = capsys.readouterr().err
    assert "--jobs == 8 (4 workers at once" in err and "reduce --jobs" in err, err
    assert main(argv + ["--jobs", "2"]) == 0
    assert not (tmp_path / "out").exists()  # nothing ran, nothing written
    monkeypatch.setenv(ENV_VAR, str(2 * per + WORKER_BYTES))
    assert default_workers(per) == min(2, __import__("os").cpu_count() or 1)
