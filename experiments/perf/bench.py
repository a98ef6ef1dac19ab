"""Wall time of a whole benchmark: the main job (``default.toml``), or ``smoke.toml`` when quick."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

SUITE = "bench"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def run(quick: bool = False) -> dict:
    from experiments.runner import load_config, make_jobs, run_benchmark

    name = "smoke" if quick else "default"
    config = load_config(CONFIGS / f"{name}.toml")
    workers = 1 if quick else min(2, os.cpu_count() or 1)
    jobs = make_jobs(config)
    impressions = sum(s * b for i in range(len(config.scenarios)) for s, b in [config.size(i)]) * len(config.policies) * len(config.seeds)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        t0, c0 = time.perf_counter(), _cpu()
        run_benchmark(config, out, workers=workers, progress=False)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return {"config": f"experiments/configs/{name}.toml", "runs": len(jobs), "workers": workers,
            "impressions": impressions, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "impressions_per_s": round(impressions / wall), "load_avg_1m_before": round(load, 2)}


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
