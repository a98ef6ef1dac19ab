"""Figures of a benchmark, drawn from its ``metrics.csv`` alone (``adsim plot DIR`` redraws them).

* ``regret.png``: cumulative pseudo-regret against the per-request oracle vs impressions, one panel
  per scenario (mean over seeds, shaded 95 % t-interval); each pool scenario gets a second panel
  of fixed-arm regret with the Lai–Robbins asymptotic lower bound (mean over seeds).
* ``ctr.png``: true CTR of the shown creatives within each recording bucket vs impressions.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.runner.stats import ci95_halfwidth  # noqa: E402


def _band(g: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, mean and 95 % half-width over seeds of ``column`` at each impression count."""
    wide = g.pivot_table(index="impressions", columns="seed", values=column, aggfunc="first").sort_index()
    values = wide.to_numpy()
    half = ci95_halfwidth(values, axis=1) if values.shape[1] > 1 else np.zeros(len(wide))
    return wide.index.to_numpy(), values.mean(axis=1), np.nan_to_num(half)


LINESTYLES = ("-", "--", ":", "-.")


def _styles(policies: list[str]) -> dict[str, dict]:
    """Distinct (colour, line style) per policy: tab10 colours, then the same colours dashed, …"""
    cmap = plt.get_cmap("tab10")
    return {p: {"color": cmap(i % 10), "ls": LINESTYLES[(i // 10) % len(LINESTYLES)]} for i, p in enumerate(policies)}


def _curves(ax, metrics: pd.DataFrame, column: str, styles: dict[str, dict]) -> None:
    alpha = 0.2 if len(styles) <= 4 else 0.08
    for policy, g in metrics.groupby("policy", sort=False):
        x, mean, half = _band(g, column)
        ax.plot(x, mean, label=policy, lw=1.6, **styles[policy])
        ax.fill_between(x, mean - half, mean + half, color=styles[policy]["color"], alpha=alpha, lw=0)


def plot_regret(metrics: pd.DataFrame, path: Path) -> None:
    styles = _styles(list(dict.fromkeys(metrics["policy"])))
    panels = []
    for scenario, g in metrics.groupby("scenario", sort=False):
        panels.append((scenario, g, "cum_regret"))
        if g["cum_fixed_regret"].notna().any():
            panels.append((scenario, g, "cum_fixed_regret"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (scenario, g, column) in zip(axes[0], panels):
        _curves(ax, g, column, styles)
        if column == "cum_fixed_regret":
            ax.set_title(f"{scenario}: regret vs best fixed creative")
            if g["lai_robbins"].notna().any():
                bound = g.groupby("impressions")["lai_robbins"].mean()
                ax.plot(bound.index, bound.to_numpy(), "k--", lw=1.2, label="Lai–Robbins (asymptotic)")
                top = np.nanmax(g.groupby(["policy", "impressions"])[column].mean().to_numpy())
                ax.set_ylim(0, 1.05 * top)
        else:
            ax.set_title(f"{scenario}: regret vs per-request oracle")
        ax.set_xlabel("impressions")
        ax.set_ylabel("cumulative pseudo-regret (expected clicks)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0, -1].get_legend_handles_labels()
    for ax in axes[0, :-1]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle("Cumulative regret (mean over seeds, 95 % band)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_ctr(metrics: pd.DataFrame, path: Path) -> None:
    styles = _styles(list(dict.fromkeys(metrics["policy"])))
    scenarios = list(dict.fromkeys(metrics["scenario"]))
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5.2 * len(scenarios), 4.2), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios):
        g = metrics[metrics["scenario"] == scenario]
        _curves(ax, g, "bucket_true_ctr", styles)
        ax.set_xscale("log")
        ax.set_title(f"{scenario}: CTR over time")
        ax.set_xlabel("impressions (end of bucket)")
        ax.set_ylabel("true CTR of shown creatives, per bucket")
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_dir(out: str | Path) -> list[Path]:
    """Redraw ``regret.png`` and ``ctr.png`` in ``out`` from its ``metrics.csv``; return their paths."""
    out = Path(out)
    source = out / "metrics.csv"
    if not source.is_file():
        raise ValueError(f"no metrics.csv in {str(out)!r}; run `adsim bench --config FILE --out {out}` first")
    metrics = pd.read_csv(source)
    missing = {"policy", "scenario", "seed", "impressions", "cum_regret", "cum_fixed_regret", "lai_robbins",
               "bucket_true_ctr"} - set(metrics.columns)
    if missing:
        raise ValueError(f"{source} lacks columns {sorted(missing)}; was it written by `adsim bench`?")
    paths = [out / "regret.png", out / "ctr.png"]
    plot_regret(metrics, paths[0])
    plot_ctr(metrics, paths[1])
    return paths
