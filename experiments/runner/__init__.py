"""The one runner of every study: scenarios × policies × scenario seeds, with common random numbers
(a benchmark), or scenarios × logging policies × log sizes × seeds (an OPE study, ``[ope]``).

``run_benchmark(load_config("experiments/configs/smoke.toml"), "results/smoke")`` runs every
(scenario, seed, policy) job (see :mod:`experiments.runner.run`), on the chosen backend
(:mod:`experiments.runner.backends`), and writes ``config.json``, ``metrics.csv``, ``arms.csv``
(pool scenarios), ``summary.csv``, ``summary.md``, ``regret.png`` and ``ctr.png``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from experiments.runner.backends import BACKENDS, RunFailed, make_units, run_jobs
from experiments.runner.run import Job, RunResult, run_job, run_stack
from experiments.runner.spec import BenchConfig, load_config, parse_config
from experiments.runner.store import RunStore

if TYPE_CHECKING:  # pandas is imported by the report, not by the runs (workers import this package)
    import pandas as pd


def make_jobs(config: BenchConfig, artifacts: str | None = None) -> list:
    """Every unit of work of a study: for a benchmark every (scenario, seed, policy) run, ordered so
    that runs sharing a world are adjacent (``artifacts`` is where RL agents leave their models and
    SB3 logs); for an OPE study (an ``[ope]`` table) every (scenario, logging policy, size, seed) log
    (``experiments.ope.study.OpeJob``)."""
    if config.ope is not None:
        from experiments.ope.study import make_ope_jobs

        return make_ope_jobs(config)
    return [Job(config, s, p, seed, artifacts) for s in range(len(config.scenarios)) for seed in config.seeds
            for p in config.policy_indices(s)]


def run_benchmark(config: BenchConfig, out: str | Path, workers: int = 1, backend: str = "local",
                  address: str | None = None, progress: bool = True, plots: bool = True,
                  stack: bool = True, resume: bool = False, overwrite: bool = False) -> pd.DataFrame:
    """Run a validated study (a benchmark, or an OPE study: ``config.ope``) and write its results
    folder; return the summary table.

    Each finished run is saved in ``out/runs/`` as it arrives (see :mod:`experiments.runner.store`);
    with ``resume`` the runs already there are not rerun. The final files are written to a staging
    folder and then renamed into ``out`` together, so a failure (a plot, a full disk) leaves the
    previous outputs as they were."""
    from experiments.runner.plots import plot_dir
    from experiments.runner.report import write_outputs

    store = RunStore(out, config)
    store.prepare(resume=resume, overwrite=overwrite)
    jobs = make_jobs(config, artifacts=str(Path(out) / "artifacts"))
    done = store.done(jobs) if resume else {}
    t0 = time.perf_counter()
    results = run_jobs(jobs, workers=workers, backend=backend, address=address, progress=progress, stack=stack,
                       done=done, on_result=lambda i, r: store.save(jobs[i], r))
    wall = time.perf_counter() - t0
    run_info = {"backend": backend, "workers": workers, "runs": len(jobs), "resumed_runs": len(done),
                "stacked_seeds": stack, "units": len(make_units(jobs, stack)), "wall_seconds": round(wall, 2)}
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
    try:
        if config.ope is not None:
            from experiments.ope.study import write_outputs as write_ope

            summary = write_ope(staging, config, jobs, results, run_info, plots=plots)
        else:
            summary = write_outputs(staging, config, jobs, results, run_info)
            if plots:
                plot_dir(staging)
        for name in ("arms.csv", "ctr_comparison.csv"):  # no pool scenario, no comparison: no stale file
            if not (staging / name).exists():
                (Path(out) / name).unlink(missing_ok=True)
        for path in sorted(staging.iterdir()):
            path.replace(Path(out) / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


__all__ = ["BACKENDS", "BenchConfig", "Job", "RunFailed", "RunResult", "RunStore", "load_config", "make_jobs", "parse_config",
           "make_units", "run_benchmark", "run_job", "run_jobs", "run_stack"]
