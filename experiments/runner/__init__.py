"""The benchmark runner: scenarios × policies × scenario seeds, with common random numbers.

``run_benchmark(load_config("experiments/configs/smoke.toml"), "results/smoke")`` runs every
(scenario, seed, policy) job (see :mod:`experiments.runner.run`), on the chosen backend
(:mod:`experiments.runner.backends`), and writes ``config.json``, ``metrics.csv``, ``arms.csv``
(pool scenarios), ``summary.csv``, ``summary.md``, ``regret.png`` and ``ctr.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from experiments.runner.backends import BACKENDS, make_units, run_jobs
from experiments.runner.run import Job, RunResult, run_job, run_stack
from experiments.runner.spec import BenchConfig, load_config, parse_config


def make_jobs(config: BenchConfig) -> list[Job]:
    """Every (scenario, seed, policy) run, ordered so that runs sharing a world are adjacent."""
    return [Job(config, s, p, seed) for s in range(len(config.scenarios)) for seed in config.seeds
            for p in config.policy_indices(s)]


def run_benchmark(config: BenchConfig, out: str | Path, workers: int = 1, backend: str = "local",
                  address: str | None = None, progress: bool = True, plots: bool = True,
                  stack: bool = True) -> pd.DataFrame:
    """Run a validated benchmark and write its results folder; return the summary table."""
    from experiments.runner.plots import plot_dir
    from experiments.runner.report import write_outputs

    jobs = make_jobs(config)
    t0 = time.perf_counter()
    results = run_jobs(jobs, workers=workers, backend=backend, address=address, progress=progress, stack=stack)
    wall = time.perf_counter() - t0
    run_info = {"backend": backend, "workers": workers, "runs": len(jobs), "stacked_seeds": stack,
                "units": len(make_units(jobs, stack)), "wall_seconds": round(wall, 2)}
    summary = write_outputs(Path(out), config, jobs, results, run_info)
    if plots:
        plot_dir(out)
    return summary


__all__ = ["BACKENDS", "BenchConfig", "Job", "RunResult", "load_config", "make_jobs", "parse_config",
           "make_units", "run_benchmark", "run_job", "run_jobs", "run_stack"]
