"""Tables and files of a benchmark: metrics.csv, arms.csv, summary.csv, summary.md, config.json."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.provenance import provenance
from experiments.runner.run import Job, RunResult
from experiments.runner.spec import BenchConfig
from experiments.runner.stats import ci95_halfwidth, loglog_slope

METRIC_COLUMNS = ("policy", "scenario", "seed", "step", "impressions", "cum_reward", "cum_expected_reward",
                  "cum_regret", "cum_fixed_regret", "lai_robbins", "cum_clicks", "ctr", "bucket_ctr",
                  "bucket_true_ctr", "decisions_per_s")
TIMING_COLUMNS = ("decisions_per_s",)
"""The only columns that depend on the machine and its load (everything else is reproducible)."""
def metrics_frame(jobs: list[Job], results: list[RunResult]) -> pd.DataFrame:
    """Tidy table: one row per (policy, scenario, seed, bucket)."""
    frames = []
    for job, r in zip(jobs, results):
        cfg = job.config
        with np.errstate(divide="ignore"):
            dps = np.where(r.policy_seconds > 0, r.impressions / r.policy_seconds, np.inf)
        frames.append(pd.DataFrame({
            "policy": cfg.policies[job.policy].label, "scenario": cfg.scenarios[job.scenario].name, "seed": job.seed,
            "step": r.step, "impressions": r.impressions, "cum_reward": r.cum_reward,
            "cum_expected_reward": r.cum_expected_reward, "cum_regret": r.cum_regret,
            "cum_fixed_regret": r.cum_fixed_regret, "lai_robbins": r.lai_robbins, "cum_clicks": r.cum_clicks,
            "ctr": r.cum_clicks / r.impressions, "bucket_ctr": r.bucket_ctr, "bucket_true_ctr": r.bucket_true_ctr,
            "decisions_per_s": dps,
        }))
    return pd.concat(frames, ignore_index=True)[list(METRIC_COLUMNS)]


def arms_frame(jobs: list[Job], results: list[RunResult]) -> pd.DataFrame:
    """Pool scenarios: each arm's population-mean expected reward per scenario seed (policy-free)."""
    rows, seen = [], set()
    for job, r in zip(jobs, results):
        key = (job.scenario, job.seed)
        if r.arm_means.size == 0 or key in seen:
            continue
        seen.add(key)
        best = int(np.argmax(r.arm_means))
        for k, mean in enumerate(r.arm_means):
            rows.append({"scenario": job.config.scenarios[job.scenario].name, "seed": job.seed, "arm": k,
                         "mean_reward": mean, "best": k == best})
    return pd.DataFrame(rows, columns=["scenario", "seed", "arm", "mean_reward", "best"])


def summary_frame(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, policy): final values with 95 % CIs over seeds, log-log slopes, decisions/s."""
    rows = []
    for (scenario, policy), g in metrics.groupby(["scenario", "policy"], sort=False):
        final = g[g["step"] == g["step"].max()]
        curve = g.groupby("impressions")[["cum_regret", "cum_fixed_regret"]].mean()
        row: dict[str, Any] = {"scenario": scenario, "policy": policy, "seeds": len(final),
                               "impressions": int(final["impressions"].iloc[0])}
        for col, name in (("cum_regret", "regret"), ("cum_fixed_regret", "fixed_regret"), ("ctr", "ctr")):
            row[f"{name}_mean"] = final[col].mean()
            row[f"{name}_ci95"] = ci95_halfwidth(final[col].to_numpy())
        row["regret_slope"] = loglog_slope(curve.index.to_numpy(), curve["cum_regret"].to_numpy())
        row["fixed_regret_slope"] = loglog_slope(curve.index.to_numpy(), curve["cum_fixed_regret"].to_numpy())
        row["decisions_per_s"] = final["decisions_per_s"].mean()
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(mean: float, ci: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f}" + (f" ± {ci:.{digits}f}" if np.isfinite(ci) else "")


def summary_markdown(summary: pd.DataFrame, title: str) -> str:
    """One Markdown table per scenario (GitHub pipe tables)."""
    lines = [f"# {title}", ""]
    head = ["policy", "regret (95% CI)", "fixed-arm regret", "CTR %", "regret slope", "fixed slope", "decisions/s"]
    for scenario, g in summary.groupby("scenario", sort=False):
        g = g.sort_values("regret_mean")
        lines += [f"## {scenario} — {int(g['impressions'].iloc[0]):,} impressions × {int(g['seeds'].iloc[0])} seeds",
                  "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for _, r in g.iterrows():
            cells = [r["policy"], _fmt(r["regret_mean"], r["regret_ci95"], 1),
                     _fmt(r["fixed_regret_mean"], r["fixed_regret_ci95"], 1),
                     _fmt(100 * r["ctr_mean"], 100 * r["ctr_ci95"], 3),
                     _fmt(r["regret_slope"], np.nan, 2), _fmt(r["fixed_regret_slope"], np.nan, 2),
                     f"{r['decisions_per_s']:,.0f}" if np.isfinite(r["decisions_per_s"]) else "–"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "Regret: cumulative pseudo-regret against the per-request oracle, in expected reward (clicks), "
        "mean ± 95 % t-interval over seeds. Fixed-arm regret (pool scenarios): against always showing "
        "the creative with the highest population-mean reward. CTR: clicks / impressions. Slopes: "
        "log-log slope of the mean regret curve over the last decade of impressions (1 = linear). "
        "Decisions/s: impressions per second of the policy's select + update.", ""]
    return "\n".join(lines)


def write_outputs(out: Path, config: BenchConfig, jobs: list[Job], results: list[RunResult],
                  run_info: dict[str, Any]) -> pd.DataFrame:
    """Write config.json, metrics.csv, arms.csv, summary.csv and summary.md; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = metrics_frame(jobs, results)
    metrics.to_csv(out / "metrics.csv", index=False)
    arms = arms_frame(jobs, results)
    if len(arms):
        arms.to_csv(out / "arms.csv", index=False)
    else:
        (out / "arms.csv").unlink(missing_ok=True)  # no pool scenario: no stale file from an older run
    summary = summary_frame(metrics)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(summary_markdown(summary, f"Benchmark {config.name!r}") + "\n")
    meta = {"config": config.to_dict(), "run": run_info, **provenance(),
            "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.platform()}
    (out / "config.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return summary
