"""The OPE validation study on the one runner: every estimator against the simulator's truth over
(scenario, logging policy, log size, seed) logs — a study config with an ``[ope]`` table
(:class:`experiments.runner.spec.OpeSpec`; ``experiments/configs/ope.toml``).

A unit of work is one :class:`OpeJob`: one log of ``size`` rounds by the logging policy in the
scenario's world of scenario seed ``seed`` (world seed = scenario seed; request streams, policy
and action draws from ``SeedSequence(seed)``), one cross-fitted reward model, then every target
estimated from it. The truth of a (log, target) pair is the target's expected reward on the
logged requests under the simulator's ``expected_reward``
(:func:`experiments.ope.collect.true_value`). The runner (``experiments.runner``) saves each
finished log's estimates in ``OUT/runs/`` as it arrives, so ``--resume`` and every backend work as
for a benchmark. Over seeds: bias = mean(estimate − truth), sd of the estimate error, RMSE,
coverage = share of confidence intervals containing the truth, mean CI width.

**Slates.** A study whose scenarios are ``adsim/SlateSelection-v0`` pages (``config.ope.slate``) is
the same study, unit for unit (:func:`run_slate_log`): a log of ``size`` pages by a slate logging
policy through the one logging path (:func:`experiments.ope.collect.collect_slate_log`, which also
records every target's probability of every ordered slate on the same pages), every slate estimator
(:func:`adsim.ope.slate.estimate_slate_all`) of every target, against the target's exact true value
on the logged pages (every ordered slate's expected clicks under the page's click model); the same
outputs, columns and writer (``n_rounds`` counts pages).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from experiments.runner.spec import OPE_REFERENCE, BenchConfig, describe
from experiments.threads import one_blas_thread

REFERENCE = OPE_REFERENCE
CI_LABEL = {"normal": "asymptotic-normal", "bootstrap": "percentile-bootstrap (200 replicates)",
            "bootstrap_t": "studentised-bootstrap (bootstrap-t, 200 replicates, order-statistic critical values)"}


class OpeResult(NamedTuple):
    """The estimates of one log: one entry per (target, estimator), arrays of equal length."""

    target: np.ndarray  # int: index into config.policies
    estimator: np.ndarray  # int: index into config.ope.reported
    estimate: np.ndarray
    truth: np.ndarray  # the target's true value on this log's requests
    ci_low: np.ndarray
    ci_high: np.ndarray


class OpeJob(NamedTuple):
    """One log of an OPE study: (scenario, logging policy, log size, seed)."""

    config: BenchConfig
    scenario: int  # index into config.scenarios
    logging: int  # index into config.policies
    size: int  # logged rounds
    seed: int  # scenario seed
    artifacts: str | None = None

    result_type = OpeResult  # what the runner's store saves and loads for this job

    @property
    def unit_key(self) -> tuple[int, int]:
        """Logs of one (scenario, seed) share a world: they form one unit, run in one worker, so the
        world is built once (the runner groups jobs by this key)."""
        return (self.scenario, self.seed)

    @property
    def name(self) -> str:
        """``scenario/logging/n<size>/seed<s>``: how outputs and messages name the log."""
        cfg = self.config
        return f"{cfg.scenarios[self.scenario].name}/{cfg.policies[self.logging].label}/n{self.size}/seed{self.seed}"

    def run(self) -> OpeResult:
        return run_log(self)


def make_ope_jobs(config: BenchConfig) -> list[OpeJob]:
    """Every log of the study, logs sharing a world adjacent (scenario, seed, logging policy, size)."""
    index = {p.label: i for i, p in enumerate(config.policies)}
    return [OpeJob(config, s, index[lg], n, seed) for s in range(len(config.scenarios)) for seed in config.seeds
            for lg in config.ope.logging for n in config.ope.sizes]


def targets_of(config: BenchConfig, logging: int) -> list[int]:
    """Indices of the targets estimated from a log of policy ``logging`` (not the logging policy itself)."""
    index = {p.label: i for i, p in enumerate(config.policies)}
    logger = config.policies[logging]
    return [index[t] for t in config.ope.targets if not config.policies[index[t]].same_policy(logger)]


def run_log(job: OpeJob) -> OpeResult:
    """Collect one log, fit one reward model, estimate every target; a pure function of the job
    (a slate study's log: :func:`run_slate_log`)."""
    if job.config.ope.slate:
        return run_slate_log(job)

    from adsim.ope.estimators import dr, estimate_all
    from adsim.ope.reward_model import predict_rewards
    from experiments.ope.collect import collect_log, target_probabilities, true_value

    cfg, ope = job.config, job.config.ope
    env_config = cfg.scenarios[job.scenario].log_config(job.seed)
    reported = ope.reported
    out: dict[str, list] = {k: [] for k in OpeResult._fields}
    with one_blas_thread(None):  # identical BLAS results wherever the log is processed
        log = collect_log(cfg.policies[job.logging].make(), env_config, job.size,
                          num_envs=min(job.size, ope.num_envs), seed=job.seed)
        q_hat = predict_rewards(log, n_folds=ope.n_folds, seed=job.seed)
        for t in targets_of(cfg, job.logging):
            probs = target_probabilities(cfg.policies[t].make(), log, seed=job.seed)
            truth = true_value(log, probs)
            ci = {"alpha": ope.alpha, "ci": ope.ci, "seed": job.seed}
            ests = estimate_all(log.reward, log.action, log.pscore, probs, q_hat, clip=ope.clip, tau=ope.tau, **ci)
            if REFERENCE in reported:
                ests[REFERENCE] = dr(log.reward, log.action, log.pscore, probs, log.expected_reward, **ci)
            _append_rows(out, t, truth, ests, reported)
    return _result(out)


def _append_rows(out: dict[str, list], target: int, truth: float, ests: dict, reported: tuple[str, ...]) -> None:
    """One row per reported estimator of ``target``'s estimates ``ests`` (estimator name → Estimate)."""
    for e, name in enumerate(reported):
        est = ests[name]
        for key, value in (("target", target), ("estimator", e), ("estimate", est.value), ("truth", truth),
                           ("ci_low", est.ci_low), ("ci_high", est.ci_high)):
            out[key].append(value)


def _result(out: dict[str, list]) -> OpeResult:
    ints = ("target", "estimator")
    return OpeResult(**{k: np.asarray(v, dtype=np.int64 if k in ints else np.float64) for k, v in out.items()})


def run_slate_log(job: OpeJob) -> OpeResult:
    """A slate study's log: ``job.size`` pages by the logging policy with every target's slate
    probabilities on the same pages, the cross-fitted per-position reward model of ``cascade_dr``
    (``adsim.ope.slate_position_model``), every reported slate estimator of every target; a pure
    function of the job."""
    from adsim.ope.reward_model import slate_position_model
    from adsim.ope.slate import SlatePscores, estimate_slate_all
    from experiments.ope.collect import collect_slate_log

    cfg, ope = job.config, job.config.ope
    env_config = cfg.scenarios[job.scenario].log_config(job.seed)
    reported = ope.reported
    targets = targets_of(cfg, job.logging)
    out: dict[str, list] = {k: [] for k in OpeResult._fields}
    with one_blas_thread(None):
        policy = cfg.policies[job.logging].make()
        record = collect_slate_log(policy, env_config, job.size, num_envs=min(job.size, ope.num_envs), seed=job.seed,
                                   targets=tuple(cfg.policies[t].make() for t in targets))
        logger = record.logger()
        q_hat = slate_position_model(record, ope.n_folds) if "cascade_dr" in reported else None
        pi_logging = getattr(policy, "pi_logging", None) if "pseudo_inverse" in reported else None
        for t, probs in zip(targets, record.pi_targets):
            truth = record.true_value(probs)
            ests = estimate_slate_all(record.clicks, record.action, logger,
                                      SlatePscores.from_slate_probs(probs, record.action), q_hat,
                                      pi_logging=pi_logging, alpha=ope.alpha, ci=ope.ci, seed=job.seed)
            _append_rows(out, t, truth, ests, reported)
    return _result(out)


def estimates_frame(jobs: list[OpeJob], results: list[OpeResult]) -> pd.DataFrame:
    """Tidy table: one row per (log, target, estimator)."""
    frames = []
    for job, r in zip(jobs, results):
        cfg = job.config
        frames.append(pd.DataFrame({
            "scenario": cfg.scenarios[job.scenario].name, "logging": cfg.policies[job.logging].label,
            "target": [cfg.policies[i].label for i in r.target], "n_rounds": job.size, "seed": job.seed,
            "estimator": [cfg.ope.reported[i] for i in r.estimator], "estimate": r.estimate, "truth": r.truth,
            "ci_low": r.ci_low, "ci_high": r.ci_high}))
    return pd.concat(frames, ignore_index=True)


KEYS = ["scenario", "logging", "target", "n_rounds", "estimator"]


def summarise(raw: pd.DataFrame) -> pd.DataFrame:
    """Bias, sd, RMSE, coverage and mean CI width per (scenario, logging, target, n_rounds, estimator),
    in the grid's order."""
    df = raw.assign(error=raw.estimate - raw.truth,
                    covered=(raw.ci_low <= raw.truth) & (raw.truth <= raw.ci_high),
                    width=raw.ci_high - raw.ci_low)
    out = df.groupby(KEYS, sort=False).agg(
        truth=("truth", "mean"), bias=("error", "mean"), sd=("error", "std"),
        rmse=("error", lambda e: float(np.sqrt(np.mean(e**2)))), coverage=("covered", "mean"),
        ci_width=("width", "mean"), seeds=("seed", "nunique")).reset_index()
    rank = {k: {v: i for i, v in enumerate(raw[k].unique())} for k in KEYS}  # the grid's own order
    rank["n_rounds"] = {v: v for v in raw["n_rounds"].unique()}
    return out.sort_values(KEYS, key=lambda col: col.map(rank[col.name])).reset_index(drop=True)


def plot_rmse(summary: pd.DataFrame, path: Path) -> list[Path]:
    """RMSE against log size, one panel per (scenario, logging, target), one line per estimator
    (log-log), at most three panels per row, one legend; written as PNG and SVG."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    several = summary["scenario"].nunique() > 1
    pairs = list(summary.groupby(["scenario", "logging", "target"], sort=False).groups)
    order = list(dict.fromkeys(summary["estimator"]))
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows + 0.6), sharey=True, squeeze=False)
    for ax in axes.flat[len(pairs):]:
        ax.set_visible(False)
    colours = plt.get_cmap("tab10")
    for ax, (scenario, logging, target) in zip(axes.flat, pairs):
        cell = summary[(summary.scenario == scenario) & (summary.logging == logging) & (summary.target == target)]
        for k, name in enumerate(order):
            line = cell[cell.estimator == name]
            style = ({"color": "black", "linestyle": ":"} if name == REFERENCE
                     else {"color": colours(k % 10), "linestyle": ("-", "--", "-.")[k % 3]})
            ax.plot(line.n_rounds, line.rmse, marker="o", label=name, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = sorted(cell.n_rounds.unique())
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title((f"{scenario}: " if several else "") + f"log: {logging}\ntarget: {target}", fontsize=9)
        ax.set_xlabel("logged rounds")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("RMSE of the value estimate")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (3.4 * rows + 0.6)))
    paths = [path.with_suffix(f".{fmt}") for fmt in ("png", "svg")]
    for p in paths:
        fig.savefig(p, dpi=110)
    plt.close(fig)
    return paths


def _markdown(df: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def summary_markdown(config: BenchConfig, summary: pd.DataFrame) -> str:
    """``summary.md``: the study's settings, a glossary and the table (no wall time: a resumed study's
    summary equals an uninterrupted one's)."""
    ope = config.ope
    table = summary.copy()
    for col in ("truth", "bias", "sd", "rmse", "ci_width"):
        table[col] = table[col].map(lambda v: f"{v:.5f}")
    table["coverage"] = table["coverage"].map(lambda v: f"{v:.3f}" if ope.slate else f"{v:.2f}")
    scenarios = ", ".join(f"`{sc.name}` (preset `{sc.preset}`)" for sc in config.scenarios)
    if ope.slate:
        return slate_markdown(config, table, scenarios)
    header = (f"# Off-policy evaluation against the simulator's truth ({config.name!r})\n\n"
              f"Scenarios {scenarios}; {len(config.seeds)} scenario seeds per cell (world seed = scenario seed); "
              f"clip = {ope.clip:g}, tau = {ope.tau:g}; {100 * (1 - ope.alpha):g} % {CI_LABEL[ope.ci]} intervals; "
              f"reward model: cross-fitted logistic regression ({ope.n_folds} folds). Truth = the target's expected "
              f"reward on the logged requests under the simulator's `expected_reward`. `{REFERENCE}` is DR with "
              f"that truth as its reward model (a reference, not an estimator).\n\n")
    glossary = ("Columns, over seeds of each cell: `truth` mean true value; `bias` mean(estimate − truth); "
                "`sd` standard deviation of that error; `rmse` root mean squared error; `coverage` share of "
                "intervals containing the truth; `ci_width` mean interval width; `seeds` logs per cell.\n\n")
    return header + glossary + _markdown(table) + "\n\n![RMSE against log size](rmse.png)\n"


def slate_markdown(config: BenchConfig, table: pd.DataFrame, scenarios: str) -> str:
    """``summary.md`` of a slate study: settings, glossary, the table."""
    ope = config.ope
    overrides = "; ".join(f"`{sc.name}`: " + ", ".join(f"{k} = {v}" for k, v in sc.overrides.items()
                                                       if not (k == "campaign" and sc._campaign_pinned))
                          for sc in config.scenarios)
    used = [p for p in config.policies if p.label in (*ope.logging, *ope.targets)]
    policies = ", ".join(f"`{p.label}` = {describe(p)}" for p in used)
    header = (f"# Slate off-policy evaluation against the simulator's truth ({config.name!r})\n\n"
              f"`adsim ope-study --config <{config.name}.toml> --out <dir>`. Scenarios {scenarios} of "
              f"`adsim/SlateSelection-v0` ({overrides}); {len(config.seeds)} scenario seeds per cell (world seed = "
              f"scenario seed); logging {', '.join(f'`{x}`' for x in ope.logging)}, targets "
              f"{', '.join(f'`{x}`' for x in ope.targets)} ({policies}); {100 * (1 - ope.alpha):g} % "
              f"{CI_LABEL[ope.ci]} intervals over pages; `cascade_dr`'s q̂: the CTR estimate scaled per position, "
              f"cross-fitted ({ope.n_folds} folds). Truth = the target's exact expected clicks per page on the "
              f"logged pages (every ordered slate's expected clicks under the page's click model). Values are "
              f"clicks per page (sum over the L positions); `n_rounds` counts pages.\n\n")
    glossary = ("Columns, over seeds of each cell: `truth` mean true value; `bias` mean(estimate − truth); "
                "`sd` standard deviation of that error; `rmse` root mean squared error; `coverage` share of "
                "intervals containing the truth (binomial SE over S seeds: sqrt(0.95 · 0.05 / S)); `ci_width` mean "
                "interval width; `seeds` logs per cell.\n\n")
    return header + glossary + _markdown(table) + "\n\n![RMSE against log size](rmse.png)\n"


def write_outputs(out: Path, config: BenchConfig, jobs: list[OpeJob], results: list[OpeResult],
                  run_info: dict[str, Any], plots: bool = True) -> pd.DataFrame:
    """Write estimates.csv.gz, summary.csv, summary.md, config.json and rmse.png/.svg into ``out`` (a
    staging folder: the runner moves its files into place); return the summary."""
    from experiments.provenance import provenance

    out.mkdir(parents=True, exist_ok=True)
    raw = estimates_frame(jobs, results)
    raw.to_csv(out / "estimates.csv.gz", index=False, float_format="%.10g",
               compression={"method": "gzip", "mtime": 0})
    summary = summarise(raw)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(summary_markdown(config, summary))
    meta = {"config": config.to_dict(), "fingerprint": config.fingerprint(), "run": run_info, **provenance(),
            "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.machine()}
    (out / "config.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    if plots:
        plot_rmse(summary, out / "rmse.png")
    return summary


def plan(config: BenchConfig, workers: int) -> dict[str, Any]:
    """Logs, logged rounds and an estimate of the wall time for ``--dry-run``: the first unit (every
    log of the first scenario's first seed: its world built, every logging policy and size) is
    processed and timed, and that time scaled to every unit, divided by the workers."""
    jobs = make_ope_jobs(config)
    units: dict[tuple[int, int], list[OpeJob]] = {}
    for job in jobs:
        units.setdefault(job.unit_key, []).append(job)
    first = next(iter(units.values()))
    t0 = time.perf_counter()
    for job in first:
        run_log(job)
    per_round = (time.perf_counter() - t0) / sum(j.size for j in first)
    rows = [{"scenario": sc.name, "env": sc.env, "logs": sum(j.scenario == i for j in jobs),
             "rounds": sum(j.size for j in jobs if j.scenario == i)} for i, sc in enumerate(config.scenarios)]
    rounds = sum(j.size for j in jobs)
    return {"runs": len(jobs), "units": len(units), "workers": workers, "impressions": rounds, "scenarios": rows,
            "estimated_seconds": round(per_round * rounds / max(1, min(workers, len(units))), 1),
            "estimate": f"the first unit ({len(first)} logs of seed {first[0].seed}) processed, timed and scaled "
                        f"by rounds to every unit"}
