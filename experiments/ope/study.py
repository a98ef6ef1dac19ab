"""The validation study: every estimator against the simulator's truth over a grid of
(logging policy, target policy, log size), repeated over scenario seeds.

For each (logging policy, log size, seed) one log is collected and one reward model fitted; every
target is then estimated from it. The truth of a (log, target) pair is the target's expected reward
on the logged requests under the simulator's ``expected_reward``
(:func:`experiments.ope.collect.true_value`). Over seeds: bias = mean(estimate − truth), sd of the
estimate error, RMSE, coverage = share of confidence intervals containing the truth, mean CI width.
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from adsim.config import EnvConfig, make_config
from adsim.ope.estimators import CI_METHODS, ESTIMATORS, dr, estimate_all
from adsim.ope.reward_model import predict_rewards
from adsim.validation import check_choice, check_int
from experiments.ope.collect import collect_log, target_probabilities, true_value
from experiments.ope.target import PolicySpec
from experiments.provenance import provenance

REFERENCE = "dr_true_q"
CI_LABEL = {"normal": "asymptotic-normal", "bootstrap": "percentile-bootstrap (200 replicates)"}
ORDER = (*ESTIMATORS, REFERENCE)


@dataclass(frozen=True)
class StudyConfig:
    """The grid of the validation study."""

    logging: tuple[str, ...] = ("random", "oracle@0.1")
    """Logging policies (``name`` or ``name@epsilon``)."""
    targets: tuple[str, ...] = ("oracle", "oracle@0.3", "random")
    """Target policies; a target equal to the logging policy is skipped."""
    sizes: tuple[int, ...] = (500, 2000, 8000)
    """Log sizes (rounds)."""
    n_seeds: int = 30
    """Scenario seeds per cell."""
    preset: str = "default"
    """Scenario preset (``adsim.make_config``)."""
    clip: float = 5.0
    """Weight cap of ``dr_clip``."""
    tau: float = 5.0
    """Switch threshold of ``switch_dr``."""
    alpha: float = 0.05
    """1 − confidence level of the intervals."""
    ci: str = "normal"
    """Intervals: ``"normal"`` (asymptotic) or ``"bootstrap"`` (percentile, 200 replicates)."""

    def __post_init__(self):
        for spec in (*self.logging, *self.targets):
            PolicySpec.parse(spec)
        for n in self.sizes:
            check_int("size", n, 10)
        check_int("n_seeds", self.n_seeds, 2)
        make_config(self.preset)
        check_choice("ci", self.ci, CI_METHODS)

    @property
    def env_config(self) -> EnvConfig:
        return make_config(self.preset)


def run_cell(study: StudyConfig, logging: str, size: int, seed: int) -> list[dict]:
    """One log of ``size`` rounds by ``logging`` on scenario ``seed``; rows for every target × estimator."""
    log = collect_log(PolicySpec.parse(logging).build(), study.env_config, size,
                      num_envs=min(size, 4096), seed=seed)
    q_hat = predict_rewards(log, n_folds=2, seed=seed)
    rows = []
    for target in study.targets:
        if PolicySpec.parse(target).label == PolicySpec.parse(logging).label:
            continue
        probs = target_probabilities(PolicySpec.parse(target).build(), log, seed=seed)
        truth = true_value(log, probs)
        ci = {"alpha": study.alpha, "ci": study.ci, "seed": seed}
        ests = estimate_all(log.reward, log.action, log.pscore, probs, q_hat, clip=study.clip, tau=study.tau, **ci)
        ests[REFERENCE] = dr(log.reward, log.action, log.pscore, probs, log.expected_reward, **ci)
        for name, est in ests.items():
            rows.append({"logging": logging, "target": target, "n_rounds": size, "seed": seed,
                         "estimator": name, "estimate": est.value, "truth": truth,
                         "ci_low": est.ci_low, "ci_high": est.ci_high})
    return rows


def _cell(args) -> list[dict]:
    return run_cell(*args)


def run_study(study: StudyConfig, workers: int = 1, progress: bool = True) -> pd.DataFrame:
    """All cells of the grid (in ``workers`` processes) as a tidy frame, one row per estimate."""
    check_int("workers", workers, 1)
    cells = [(study, lg, n, seed) for lg in study.logging for n in study.sizes for seed in range(study.n_seeds)]
    bar = tqdm(total=len(cells), desc="ope-study", disable=not progress)
    rows: list[dict] = []
    if workers == 1:
        for cell in cells:
            rows += _cell(cell)
            bar.update()
    else:
        with ProcessPoolExecutor(workers) as pool:
            for out in pool.map(_cell, cells):
                rows += out
                bar.update()
    bar.close()
    return pd.DataFrame(rows)


def summarise(raw: pd.DataFrame) -> pd.DataFrame:
    """Bias, sd, RMSE, coverage and mean CI width per (logging, target, n_rounds, estimator)."""
    df = raw.assign(error=raw.estimate - raw.truth,
                    covered=(raw.ci_low <= raw.truth) & (raw.truth <= raw.ci_high),
                    width=raw.ci_high - raw.ci_low)
    keys = ["logging", "target", "n_rounds", "estimator"]
    out = df.groupby(keys, sort=False).agg(
        truth=("truth", "mean"), bias=("error", "mean"), sd=("error", "std"),
        rmse=("error", lambda e: float(np.sqrt(np.mean(e**2)))), coverage=("covered", "mean"),
        ci_width=("width", "mean"), seeds=("seed", "nunique")).reset_index()
    rank = {k: {v: i for i, v in enumerate(raw[k].unique())} for k in keys}  # the grid's own order
    rank["n_rounds"] = {v: v for v in raw["n_rounds"].unique()}
    rank["estimator"] = {name: i for i, name in enumerate(ORDER)}
    return out.sort_values(keys, key=lambda col: col.map(rank[col.name])).reset_index(drop=True)


def plot_rmse(summary: pd.DataFrame, path: Path) -> None:
    """RMSE against log size, one panel per (logging, target), one line per estimator (log-log)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(summary.groupby(["logging", "target"], sort=False).groups)
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), sharey=True, squeeze=False)
    for ax in axes.flat[len(pairs):]:
        ax.set_visible(False)
    for ax, (logging, target) in zip(axes.flat, pairs):
        cell = summary[(summary.logging == logging) & (summary.target == target)]
        for name in ORDER:
            line = cell[cell.estimator == name]
            style = {"color": "black", "linestyle": ":"} if name == REFERENCE else {}
            ax.plot(line.n_rounds, line.rmse, marker="o", label=name, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = sorted(cell.n_rounds.unique())
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(f"log: {logging}\ntarget: {target}", fontsize=9)
        ax.set_xlabel("logged rounds")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("RMSE of the value estimate")
    axes.flat[len(pairs) - 1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(study: StudyConfig, summary: pd.DataFrame, out: Path, seconds: float) -> Path:
    """``summary.md`` (the table, with the study's settings) next to ``summary.csv`` and ``rmse.png``."""
    table = summary.copy()
    for col in ("truth", "bias", "sd", "rmse", "ci_width"):
        table[col] = table[col].map(lambda v: f"{v:.5f}")
    table["coverage"] = table["coverage"].map(lambda v: f"{v:.2f}")
    header = (f"# Off-policy evaluation against the simulator's truth\n\n"
              f"Preset `{study.preset}`; {study.n_seeds} scenario seeds per cell; clip = {study.clip:g}, "
              f"tau = {study.tau:g}; {100 * (1 - study.alpha):g} % {CI_LABEL[study.ci]} intervals; reward model: "
              f"cross-fitted logistic regression (2 folds). Truth = the target's expected reward on the logged "
              f"requests under the simulator's `expected_reward`. `{REFERENCE}` is DR with that truth as its reward "
              f"model (a reference, not an estimator). Run time {seconds:.0f} s.\n\n")
    glossary = ("Columns, over seeds of each cell: `truth` mean true value; `bias` mean(estimate − truth); "
                "`sd` standard deviation of that error; `rmse` root mean squared error; `coverage` share of "
                "intervals containing the truth; `ci_width` mean interval width; `seeds` logs per cell.\n\n")
    path = out / "summary.md"
    path.write_text(header + glossary + _markdown(table) + "\n\n![RMSE against log size](rmse.png)\n")
    (out / "config.json").write_text(json.dumps({**dataclasses.asdict(study), **provenance()},
                                                indent=2) + "\n")
    return path


def _markdown(df: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)
