"""Figures of a study, drawn from its ``metrics.csv`` (or the compact ``metrics.csv.gz``) alone
(``adsim plot DIR`` redraws them); each is written as PNG and SVG.

* ``regret``: cumulative pseudo-regret against the per-request oracle vs impressions, one panel per
  scenario (mean over seeds, shaded 95 % percentile-bootstrap band: never below 0); each pool
  scenario gets a second panel of fixed-arm regret with the Lai–Robbins asymptotic lower bound.
* ``regret_loglog``: the same curves on log–log axes (the summary's slopes are read here).
* ``paired``: each policy's regret minus the scenario's reference policy's on the same seeds, with a
  paired 95 % bootstrap band (below 0: better than the reference).
* ``ctr``: true CTR (%) of the shown creatives within each recording bucket vs impressions.
* ``auction`` (studies with auction scenarios): the day's spend curve per policy (from ``days.csv.gz``)
  surplus and clicks per policy, and the final regret split into allocation, estimation,
  overbidding and underbidding regret.

At most three panels per row, one legend per figure, one colour and line style per policy.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.runner.stats import bootstrap_mean_ci  # noqa: E402

LINESTYLES = ("-", "--", "-.", ":")
COLS = 3
FORMATS = ("png", "svg")
REQUIRED = {"policy", "scenario", "seed", "impressions", "cum_regret", "cum_fixed_regret", "lai_robbins",
            "bucket_true_ctr"}


def _wide(g: pd.DataFrame, column: str) -> pd.DataFrame:
    return g.pivot_table(index="impressions", columns="seed", values=column, aggfunc="first").sort_index()


def _band(g: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, mean, and the 95 % percentile-bootstrap band over seeds of ``column`` at each impression count."""
    wide = _wide(g, column)
    values = wide.to_numpy()
    low, high = bootstrap_mean_ci(values, axis=1)
    return wide.index.to_numpy(), values.mean(axis=1), low, high


def styles(policies: list[str]) -> dict[str, dict]:
    """A distinct colour (20 of tab20, dark shades first) and line style (cycling) per policy."""
    cmap = plt.get_cmap("tab20")
    colours = [cmap(i) for i in range(0, 20, 2)] + [cmap(i) for i in range(1, 20, 2)]
    return {p: {"color": colours[i % 20], "ls": LINESTYLES[i % len(LINESTYLES)]} for i, p in enumerate(policies)}


def _grid(n: int, title: str):
    cols = min(COLS, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig, list(axes.flat[:n])


def _finish(fig, axes, path: Path) -> list[Path]:
    """One legend for the whole figure (every label of every panel), then PNG + SVG."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    paths = []
    for fmt in FORMATS:
        paths.append(path.with_suffix(f".{fmt}"))
        fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return paths


def _curves(ax, metrics: pd.DataFrame, column: str, style: dict[str, dict], scale: float = 1.0) -> None:
    alpha = 0.2 if len(style) <= 4 else 0.1
    for policy, g in metrics.groupby("policy", sort=False):
        x, mean, low, high = _band(g, column)
        ax.plot(x, scale * mean, label=policy, lw=1.6, **style[policy])
        ax.fill_between(x, scale * low, scale * high, color=style[policy]["color"], alpha=alpha, lw=0)


def _regret_panels(metrics: pd.DataFrame) -> list[tuple[str, pd.DataFrame, str]]:
    panels = []
    for scenario, g in metrics.groupby("scenario", sort=False):
        panels.append((scenario, g, "cum_regret"))
        if g["cum_fixed_regret"].notna().any():
            panels.append((scenario, g, "cum_fixed_regret"))
    return panels


def plot_regret(metrics: pd.DataFrame, path: Path, loglog: bool = False) -> list[Path]:
    style = styles(list(dict.fromkeys(metrics["policy"])))
    panels = _regret_panels(metrics)
    fig, axes = _grid(len(panels), "Cumulative regret (mean over seeds, 95 % bootstrap band)"
                      + (", log–log" if loglog else ""))
    for ax, (scenario, g, column) in zip(axes, panels):
        _curves(ax, g, column, style)
        if column == "cum_fixed_regret":
            ax.set_title(f"{scenario}: regret vs best fixed creative")
            if g["lai_robbins"].notna().any():
                bound = g.groupby("impressions")["lai_robbins"].mean()
                ax.plot(bound.index, bound.to_numpy(), "k--", lw=1.2, label="Lai–Robbins (asymptotic)")
                if not loglog:
                    top = np.nanmax(g.groupby(["policy", "impressions"])[column].mean().to_numpy())
                    ax.set_ylim(0, 1.05 * top)
        else:
            ax.set_title(f"{scenario}: regret vs per-request oracle")
        if loglog:
            ax.set_xscale("log")
            ax.set_yscale("log")  # a policy with zero regret (the oracle) has no points here
        ax.set_xlabel("impressions")
        ax.set_ylabel("cumulative pseudo-regret (expected clicks)")
        ax.grid(alpha=0.3, which="both" if loglog else "major")
    return _finish(fig, axes, path)


def plot_paired(metrics: pd.DataFrame, references: dict[str, str | None], path: Path) -> list[Path]:
    style = styles(list(dict.fromkeys(metrics["policy"])))
    scenarios = [s for s in dict.fromkeys(metrics["scenario"]) if references.get(s)]
    fig, axes = _grid(max(1, len(scenarios)), "Regret minus the reference policy's, same seeds (paired 95 % band)")
    for ax, scenario in zip(axes, scenarios):
        g = metrics[metrics["scenario"] == scenario]
        ref = _wide(g[g["policy"] == references[scenario]], "cum_regret")
        for policy, gp in g.groupby("policy", sort=False):
            if policy == references[scenario]:
                continue
            wide = _wide(gp, "cum_regret")
            seeds = wide.columns.intersection(ref.columns)
            diff = (wide[seeds] - ref[seeds]).to_numpy()
            low, high = bootstrap_mean_ci(diff, axis=1)
            ax.plot(wide.index, diff.mean(axis=1), label=policy, lw=1.6, **style[policy])
            ax.fill_between(wide.index, low, high, color=style[policy]["color"], alpha=0.12, lw=0)
        ax.axhline(0.0, color="k", lw=1.0)
        ax.set_xscale("log")
        ax.set_title(f"{scenario}: regret − {references[scenario]}")
        ax.set_xlabel("impressions")
        ax.set_ylabel("paired regret difference (expected clicks)")
        ax.grid(alpha=0.3)
    return _finish(fig, axes, path)


def plot_ctr(metrics: pd.DataFrame, path: Path) -> list[Path]:
    style = styles(list(dict.fromkeys(metrics["policy"])))
    scenarios = list(dict.fromkeys(metrics["scenario"]))
    fig, axes = _grid(len(scenarios), "CTR over time (mean over seeds, 95 % bootstrap band)")
    for ax, scenario in zip(axes, scenarios):
        _curves(ax, metrics[metrics["scenario"] == scenario], "bucket_true_ctr", style, scale=100.0)
        ax.set_xscale("log")
        ax.set_title(f"{scenario}: CTR over time")
        ax.set_xlabel("impressions (end of bucket)")
        ax.set_ylabel("true CTR of shown creatives, per bucket (%)")
        ax.grid(alpha=0.3)
    return _finish(fig, axes, path)


REGRET_PARTS = ("allocation", "estimation", "overbid", "underbid")


def plot_auction(metrics: pd.DataFrame, days: pd.DataFrame, path: Path) -> list[Path]:
    """Auction scenarios, three panels each: the day's spend curve (mean cumulative spend of a
    campaign-day after each request, as a share of the budget where there is one; mean over seeds
    and over the run's days; the dotted diagonal is uniform pacing), each policy's expected surplus
    and clicks per run, and the final regret split into its four parts (mean over seeds, one
    stacked bar per policy)."""
    style = styles(list(dict.fromkeys(metrics["policy"])))
    scenarios = [s for s, g in metrics.groupby("scenario", sort=False) if g["cum_spend"].notna().any()]
    fig, axes = _grid(3 * len(scenarios), "Auctions: spend over the day, surplus and clicks, the regret's parts")
    colours, twins = plt.get_cmap("tab10"), []
    for i, scenario in enumerate(scenarios):
        ax_spend, ax_value, ax_parts = axes[3 * i:3 * i + 3]
        d = days[days["scenario"] == scenario] if len(days) else days
        share = len(d) and d["spend_fraction"].notna().all()
        for policy, g in d.groupby("policy", sort=False) if len(d) else ():
            curve = g.groupby("day_fraction")["spend_fraction" if share else "cum_spend"].mean()
            ax_spend.plot(curve.index, (100.0 if share else 1.0) * curve.to_numpy(), label=policy, lw=1.6,
                          **style[policy])
        if share:
            ax_spend.plot([0, 1], [0, 100], color="0.5", ls=":", lw=1)
        ax_spend.set(title=f"{scenario}: spend over the day", xlabel="share of the day's requests",
                     ylabel="spend, % of the daily budget" if share else "spend per campaign-day")
        ax_spend.grid(alpha=0.3)
        final = metrics[metrics["scenario"] == scenario]
        final = final[final["step"] == final["step"].max()]
        per = final.groupby("policy", sort=False)[["cum_expected_reward", "cum_clicks"]].mean()
        x = np.arange(len(per))
        ax_value.bar(x - 0.2, per["cum_expected_reward"], 0.4, color="0.35", label="expected surplus")
        ax_clicks = ax_value.twinx()
        twins.append(ax_clicks)
        ax_clicks.bar(x + 0.2, per["cum_clicks"], 0.4, color="0.75", label="clicks")
        ax_value.set_xticks(x, per.index, rotation=30, ha="right")
        ax_value.set(title=f"{scenario}: surplus and clicks per run", ylabel="expected surplus (mean over seeds)")
        ax_clicks.set_ylabel("clicks (mean over seeds)")
        ax_value.grid(alpha=0.3, axis="y")
        means = final.groupby("policy", sort=False)[[f"cum_regret_{p}" for p in REGRET_PARTS]].mean()
        bottom = np.zeros(len(means))
        for j, part in enumerate(REGRET_PARTS):
            values = means[f"cum_regret_{part}"].to_numpy()
            ax_parts.bar(np.arange(len(means)), values, bottom=bottom, color=colours(j), label=f"{part} regret")
            bottom += values
        ax_parts.set_xticks(np.arange(len(means)), means.index, rotation=30, ha="right")
        ax_parts.set(title=f"{scenario}: regret decomposition", ylabel="cumulative regret (expected surplus)")
        ax_parts.grid(alpha=0.3, axis="y")
    return _finish(fig, axes + twins, path)


def read_metrics(folder: str | Path) -> pd.DataFrame:
    """A results folder's ``metrics.csv`` (or its compact ``metrics.csv.gz``), checked."""
    folder = Path(folder)
    source = next((folder / n for n in ("metrics.csv", "metrics.csv.gz") if (folder / n).is_file()), None)
    if source is None:
        raise ValueError(f"no metrics.csv or metrics.csv.gz in {str(folder)!r}; run "
                         f"`adsim bench --config FILE --out {folder}` first")
    metrics = pd.read_csv(source)
    missing = REQUIRED - set(metrics.columns)
    if missing:
        raise ValueError(f"{source} lacks columns {sorted(missing)}; was it written by `adsim bench`?")
    return metrics


def plot_dir(out: str | Path, dest: str | Path | None = None) -> list[Path]:
    """Redraw every figure of ``out`` from its metrics into ``dest`` (default ``out``); return the paths.
    An OPE study's folder (``estimates.csv.gz``, no metrics) gets its ``rmse`` figure.
    The reference policy of each scenario comes from ``summary.csv`` when present."""
    from experiments.runner.report import choose_references

    out = Path(out)
    dest = Path(dest) if dest is not None else out
    if (out / "estimates.csv.gz").is_file() and not any((out / n).is_file() for n in ("metrics.csv", "metrics.csv.gz")):
        from experiments.ope.study import plot_rmse, summarise  # an OPE study's folder

        return plot_rmse(summarise(pd.read_csv(out / "estimates.csv.gz")), dest / "rmse.png")
    metrics = read_metrics(out)
    references = choose_references(metrics)
    if (out / "summary.csv").is_file():
        summary = pd.read_csv(out / "summary.csv")
        if "reference" in summary:
            references = {s: (r if isinstance(r, str) else None)
                          for s, r in summary.groupby("scenario", sort=False)["reference"].first().items()}
    paths = [*plot_regret(metrics, dest / "regret.png"), *plot_regret(metrics, dest / "regret_loglog.png", True),
             *plot_paired(metrics, references, dest / "paired.png"), *plot_ctr(metrics, dest / "ctr.png")]
    if "cum_spend" in metrics and metrics["cum_spend"].notna().any():  # an auction study
        days = pd.read_csv(out / "days.csv.gz") if (out / "days.csv.gz").is_file() else pd.DataFrame()
        paths += plot_auction(metrics, days, dest / "auction.png")
    return paths
