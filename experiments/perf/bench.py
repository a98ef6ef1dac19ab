"""Wall time of a whole benchmark: the main job (``default.toml``), or ``smoke.toml`` when quick —
with the scenario seeds stacked (the default) and, for comparison, one vector env per seed."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

SUITE = "bench"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def run(quick: bool = False) -> dict:
    from experiments.runner import load_config, make_jobs, make_units, run_benchmark

    name = "smoke" if quick else "default"
    config = load_config(CONFIGS / f"{name}.toml")
    workers = 1 if quick else min(2, os.cpu_count() or 1)
    jobs = make_jobs(config)
    impressions = sum(config.size(j.scenario)[0] * config.size(j.scenario)[1] for j in jobs)
    out = {"config": f"experiments/configs/{name}.toml", "runs": len(jobs), "workers": workers,
           "impressions": impressions}
    for stack in (True, False):
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as folder:
            t0, c0 = time.perf_counter(), _cpu()
            run_benchmark(config, folder, workers=workers, progress=False, stack=stack)
            wall, cpu = time.perf_counter() - t0, _cpu() - c0
        out["stacked" if stack else "unstacked"] = {
            "units": len(make_units(jobs, stack)), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "impressions_per_s": round(impressions / wall), "load_avg_1m_before": round(load, 2)}
    out["wall_s"] = out["stacked"]["wall_s"]  # the default way the main job runs
    out["unstacked_over_stacked_wall"] = round(out["unstacked"]["wall_s"] / out["stacked"]["wall_s"], 2)
    return {"main_job": out, "many_seeds": many_seeds(quick)}


def many_seeds(quick: bool = False) -> dict:
    """Many scenario seeds of small batches (online-style): where stacking the seeds pays.

    One process, serially; every cache (worlds, pools, envs) is cleared before each mode, so both
    build the same worlds."""
    from adsim.envs.creative_selection import CreativeSelectionVectorEnv
    from adsim.requests import clear_scenario_caches
    from experiments.runner import make_jobs, parse_config, run_jobs
    from experiments.runner.run import _vector_env

    seeds, steps = (4, 50) if quick else (20, 400)
    doc = {"seeds": list(range(seeds)), "steps": steps, "batch_size": 4, "delay": 1,
           "scenarios": {"pool": {"preset": "easy", "campaign": 0, "n_users": 2000}},
           "policies": {n: {} for n in ("random", "ucb1", "thompson", "linucb", "linucb_shared")}}
    jobs = make_jobs(parse_config(doc))
    out = {"seeds": seeds, "steps": steps, "batch_size": 4, "policies": list(doc["policies"]), "runs": len(jobs)}
    for stack in (True, False):
        clear_scenario_caches()
        _vector_env.cache_clear()
        t0 = time.perf_counter()
        run_jobs(jobs, workers=1, progress=False, stack=stack)
        out["stacked_wall_s" if stack else "unstacked_wall_s"] = round(time.perf_counter() - t0, 2)
    out["unstacked_over_stacked_wall"] = round(out["unstacked_wall_s"] / out["stacked_wall_s"], 2)
    clear_scenario_caches()
    t0 = time.perf_counter()  # what both modes spend building the worlds (pools, β0) of the seeds
    sc = parse_config(doc).scenarios[0]
    CreativeSelectionVectorEnv(4 * seeds, config=sc.env_config(0, steps), world_seeds=list(range(seeds)))
    build = time.perf_counter() - t0
    out["world_build_s"] = round(build, 2)
    out["unstacked_over_stacked_runs_only"] = round((out["unstacked_wall_s"] - build) / (out["stacked_wall_s"] - build), 2)
    return out


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
