"""Tables, learning curves and the summary of an RL-vs-bandits study (from ``run_study``'s runs).

Glossary of the metrics written:

* ``return`` — mean return of the episodes that *ended* in a window (AdSession: clicks per
  session; CreativeSelection: clicks per ``horizon``-impression episode);
* ``ctr`` — clicks per impression in a window;
* ``regret`` — pseudo-regret per impression (CreativeSelection: against the true best candidate;
  AdSession: against the *myopic* optimum, a reference only);
* ``final_*`` — over the last ``final_fraction`` of the budget; ``overall_ctr`` — over the whole
  budget, training included (what a policy earns while it learns);
* ``steps_to_90`` — first env step at which the seed-mean learning curve reaches 90 % of the best
  learning policy's final return (reference policies ``random`` / ``oracle`` excluded from "best");
* CIs are 95 % Student-t intervals over scenario seeds; paired differences use the same seeds (CRN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

REFERENCE = ("random", "oracle")


def ci95(x: np.ndarray) -> tuple[float, float]:
    """Mean and 95 % half-width (Student t over the first axis; NaNs ignored)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float("nan")
    return float(x.mean()), float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))


def run_metrics(run: dict[str, Any], steps: int, num_envs: int, bins: int, final_fraction: float) -> dict:
    """Curve (per bin) and final metrics of one run."""
    edges = np.linspace(0, steps, bins + 1)
    step_end = num_envs * np.arange(1, run["reward"].size + 1)
    ep_bin = np.clip(np.searchsorted(edges, run["episode_end"], side="left") - 1, 0, bins - 1)
    st_bin = np.clip(np.searchsorted(edges, step_end, side="left") - 1, 0, bins - 1)
    ret = np.array([run["episode_return"][ep_bin == b].mean() if np.any(ep_bin == b) else np.nan
                    for b in range(bins)])
    imps = np.bincount(st_bin, minlength=bins) * num_envs
    ctr = np.bincount(st_bin, weights=run["reward"], minlength=bins) / np.maximum(imps, 1)
    regret = np.bincount(st_bin, weights=run["regret"], minlength=bins) / np.maximum(imps, 1)
    start = steps * (1 - final_fraction)
    fe, fs = run["episode_end"] > start, step_end > start
    return {
        "edges": edges, "return": ret, "ctr": ctr, "regret": regret,
        "final_return": run["episode_return"][fe].mean() if fe.any() else np.nan,
        "final_ctr": run["reward"][fs].sum() / (fs.sum() * num_envs),
        "final_regret": run["regret"][fs].sum() / (fs.sum() * num_envs),
        "final_length": run["episode_length"][fe].mean() if fe.any() else np.nan,
        "overall_ctr": run["reward"].sum() / (run["reward"].size * num_envs),
    }


def summarise(cfg, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per env: a final-metrics table, seed-mean curves with CIs, sample efficiency, paired diffs."""
    out = {}
    for env in cfg.envs:
        order = [p.display for p in cfg.policies if p.runs_on(env.name)]
        m = {(r["policy"], r["seed"]): run_metrics(r, env.steps, env.num_envs, cfg.bins, cfg.final_fraction)
             for r in runs if r["env"] == env.name}
        trained = {r["policy"]: r["trained"] for r in runs if r["env"] == env.name}
        rows, curves, paired_curves = [], {}, {}
        for pol in order:
            per_seed = [m[(pol, s)] for s in cfg.seeds]
            row = {"policy": pol, "train_steps": trained.get(pol, 0)}
            for key in ("final_return", "final_ctr", "final_regret", "final_length", "overall_ctr"):
                row[key], row[key + "_ci"] = ci95(np.array([x[key] for x in per_seed]))
            rows.append(row)
            curve = np.stack([x["return"] for x in per_seed])
            curves[pol] = [ci95(curve[:, b]) for b in range(cfg.bins)]
            base = [p.display for p in cfg.policies if p.name == "random" and p.runs_on(env.name)]
            if base:  # paired with random on the same seeds: CRN removes the users' common noise
                diff = curve - np.stack([m[(base[0], s)]["return"] for s in cfg.seeds])
                paired_curves[pol] = [ci95(diff[:, b]) for b in range(cfg.bins)]
        table = pd.DataFrame(rows)
        reference = [p.display for p in cfg.policies if p.name in REFERENCE and p.runs_on(env.name)]
        learners = table[~table.policy.isin(reference)]
        best = learners.loc[learners.final_return.idxmax()]
        edges = m[(order[0], cfg.seeds[0])]["edges"]
        reach = {}
        for pol in order:
            means = np.array([c[0] for c in curves[pol]])
            hit = np.flatnonzero(means >= 0.9 * best.final_return)
            reach[pol] = int(edges[hit[0] + 1]) if hit.size else None
        table["steps_to_90"] = [reach[p] for p in order]
        paired = {}
        for pol in order:
            diffs = [m[(pol, s)]["final_return"] - m[(best.policy, s)]["final_return"] for s in cfg.seeds]
            paired[pol] = ci95(np.array(diffs))
        table["diff_vs_best"] = [paired[p][0] for p in order]
        table["diff_vs_best_ci"] = [paired[p][1] for p in order]
        out[env.name] = {"table": table, "curves": curves, "paired_curves": paired_curves, "edges": edges,
                         "best": best.policy,
                         "best_return": float(best.final_return)}
        out[env.name]["reference"] = reference
    return out


def plot(summary: dict[str, Any], out: Path) -> list[Path]:
    """Learning curves with 95 % bands, one column per env (top: episode return; bottom: return
    minus the random policy's on the same seeds); a bar chart of final returns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    names = list(summary)
    fig, axes = plt.subplots(2, len(names), figsize=(5.5 * len(names), 7.5), squeeze=False, sharex="col")
    for col, name in enumerate(names):
        s = summary[name]
        mid = 0.5 * (s["edges"][:-1] + s["edges"][1:])
        for row, key, ylabel in ((0, "curves", "episode return"), (1, "paired_curves", "return − random (paired)")):
            ax = axes[row][col]
            for pol, pts in s[key].items():
                mean, half = np.array(pts).T
                ax.plot(mid, mean, marker=".", label=pol, linestyle="--" if pol in s["reference"] else "-")
                ax.fill_between(mid, mean - half, mean + half, alpha=0.15)
            ax.set(ylabel=ylabel)
            ax.grid(alpha=0.3)
        axes[0][col].set_title(name)
        axes[1][col].set_xlabel("environment steps (impressions, training included)")
        axes[0][col].legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "learning_curves.png")
    fig.savefig(paths[-1], dpi=65)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        t = summary[name]["table"]
        ax.bar(t.policy, t.final_return, yerr=t.final_return_ci, capsize=3, color="tab:blue", alpha=0.7)
        ax.set(title=f"{name}: final return (95 % CI)", ylabel="episode return")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    paths.append(out / "final_return.png")
    fig.savefig(paths[-1], dpi=65)
    plt.close(fig)
    return paths


def _fmt(v: float, ci: float, digits: int = 3) -> str:
    if np.isnan(v):
        return "–"
    return f"{v:.{digits}f}" if np.isnan(ci) else f"{v:.{digits}f} ± {ci:.{digits}f}"


def markdown(cfg, summary: dict[str, Any], header: str) -> str:
    """The tables of ``summary.md``."""
    lines = [header, ""]
    for name, s in summary.items():
        env = next(e for e in cfg.envs if e.name == name)
        lines += [f"## {name} (`{env.id}`, {env.config}, {env.num_envs} sub-envs, {env.steps} steps, "
                  f"{len(cfg.seeds)} seeds)", "",
                  "| policy | trained steps | final return | final CTR | final regret / imp. | final episode length "
                  "| CTR over whole budget | steps to 90 % of best | return − best (paired) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in s["table"].itertuples():
            reach = "not reached" if r.steps_to_90 is None or pd.isna(r.steps_to_90) else f"{int(r.steps_to_90)}"
            lines.append(
                f"| {r.policy} | {r.train_steps} | {_fmt(r.final_return, r.final_return_ci)} | "
                f"{_fmt(r.final_ctr, r.final_ctr_ci, 4)} | {_fmt(r.final_regret, r.final_regret_ci, 4)} | "
                f"{_fmt(r.final_length, r.final_length_ci, 2)} | {_fmt(r.overall_ctr, r.overall_ctr_ci, 4)} | {reach} | "
                f"{_fmt(r.diff_vs_best, r.diff_vs_best_ci)} |")
        lines += ["", f"Best learning policy (final return): **{s['best']}** ({s['best_return']:.3f}).", ""]
    return "\n".join(lines)
