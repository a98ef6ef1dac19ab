"""Tables and files of a study: metrics.csv (+ metrics.csv.gz, compact, committed), arms.csv,
summary.csv, summary.md, config.json, and ctr_comparison.csv where a scenario compares its CTR with
another's (``compare_ctr_to``).

Paired statistics: every policy of a scenario seed meets the same world, users and coin flips
(common random numbers), so the difference between two policies is measured within seeds. Each
summary row reports the policy's difference to the scenario's *reference* policy (``reference``
in the config; default the strongest policy that does not read the truth, i.e. the lowest mean
final regret) with a paired 95 % percentile-bootstrap interval over seeds (``scipy.stats.bootstrap``
on the per-seed differences), beside the unpaired columns.
"""

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
from experiments.runner.stats import bootstrap_mean_ci, ci95_halfwidth, loglog_slope

METRIC_COLUMNS = ("policy", "scenario", "seed", "step", "impressions", "cum_reward", "cum_expected_reward",
                  "cum_regret", "cum_random_regret", "cum_fixed_regret", "lai_robbins", "cum_clicks", "ctr", "bucket_ctr",
                  "bucket_true_ctr", "cum_episodes", "cum_episode_return", "episode_return", "decisions_per_s")
AUCTION_COLUMNS = ("cum_spend", "cum_wins", "cum_regret_allocation", "cum_regret_estimation", "cum_regret_overbid",
                   "cum_regret_underbid")
"""Columns an auction study adds to ``metrics.csv`` (``experiments.runner.kinds.AUCTION_EXTRA``)."""
REGRET_PARTS = ("allocation", "estimation", "overbid", "underbid")
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
            "cum_random_regret": r.cum_random_regret,
            "cum_fixed_regret": r.cum_fixed_regret, "lai_robbins": r.lai_robbins, "cum_clicks": r.cum_clicks,
            "ctr": r.cum_clicks / r.impressions, "bucket_ctr": r.bucket_ctr, "bucket_true_ctr": r.bucket_true_ctr,
            "cum_episodes": r.cum_episodes, "cum_episode_return": r.cum_episode_return,
            "episode_return": np.divide(r.cum_episode_return, r.cum_episodes, out=np.full(r.step.shape, np.nan),
                                        where=r.cum_episodes > 0),
            "decisions_per_s": dps,
            **{c: getattr(r, c) for c in AUCTION_COLUMNS},
        }))
    metrics = pd.concat(frames, ignore_index=True)
    auctions = metrics["cum_spend"].notna().any()  # the auction columns only in studies with auctions
    return metrics[list(METRIC_COLUMNS) + (list(AUCTION_COLUMNS) if auctions else [])]


def days_frame(jobs: list[Job], results: list[RunResult]) -> pd.DataFrame:
    """Auction runs: one row per (policy, scenario, seed, request of the day) with the mean cumulative
    spend of a campaign-day after that request (``RunResult.day_spend``) and, where the scenario has
    a budget, as a share of it (``spend_fraction``); empty when no run is an auction."""
    frames = []
    for job, r in zip(jobs, results):
        if not r.day_spend.size:
            continue
        cfg = job.config
        budget = getattr(cfg.scenarios[job.scenario].env_config(job.seed, cfg.size(job.scenario)[0]), "budget", None)
        H = r.day_spend.size
        frames.append(pd.DataFrame({
            "policy": cfg.policies[job.policy].label, "scenario": cfg.scenarios[job.scenario].name, "seed": job.seed,
            "request": np.arange(1, H + 1), "day_fraction": np.arange(1, H + 1) / H, "cum_spend": r.day_spend,
            "spend_fraction": r.day_spend / budget if budget else np.nan}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def arms_frame(jobs: list[Job], results: list[RunResult]) -> pd.DataFrame:
    """Pool scenarios: each arm's population-mean expected reward per scenario seed.

    Without fatigue every policy of a (scenario, seed) meets the same requests and the means are
    policy-free: one set of rows. With fatigue the means depend on what was shown before, so the
    rows are per policy (a ``policy`` column, sorted by label): never "whichever policy came first".
    """
    groups: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for job, r in zip(jobs, results):
        if r.arm_means.size:
            groups.setdefault((job.scenario, job.seed), {})[job.config.policies[job.policy].label] = r.arm_means
    rows, per_policy = [], False
    for (scenario, seed), by_label in sorted(groups.items()):
        means = list(by_label.values())
        labels = [None] if all(np.array_equal(m, means[0]) for m in means) else sorted(by_label)
        per_policy |= labels != [None]
        for label in labels:
            m = means[0] if label is None else by_label[label]
            best = int(np.argmax(m))
            for k, mean in enumerate(m):
                rows.append({"scenario": jobs[0].config.scenarios[scenario].name, "seed": seed, "policy": label,
                             "arm": k, "mean_reward": mean, "best": k == best})
    columns = ["scenario", "seed"] + (["policy"] if per_policy else []) + ["arm", "mean_reward", "best"]
    return pd.DataFrame(rows, columns=columns)


def final_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The last recording point of every run."""
    last = metrics.groupby(["scenario", "policy", "seed"], sort=False)["step"].transform("max")
    return metrics[metrics["step"] == last]


def choose_references(metrics: pd.DataFrame, chosen: str | None = None,
                      truth: frozenset[str] = frozenset()) -> dict[str, str | None]:
    """Per scenario, the policy paired differences are taken to: ``chosen`` where it ran, else the
    policy with the lowest mean final regret among those not reading the truth (``truth``)."""
    final = final_rows(metrics)
    out: dict[str, str | None] = {}
    for scenario, g in final.groupby("scenario", sort=False):
        ran = list(dict.fromkeys(g["policy"]))
        if chosen is not None:
            out[scenario] = chosen if chosen in ran else None
            continue
        means = g[~g["policy"].isin(truth)].groupby("policy", sort=False)["cum_regret"].mean()
        if not truth:  # not told which policies read the truth: leave out those with zero regret
            means = means[means > 0]
        out[scenario] = str(means.idxmin()) if len(means) else None
    return out


def paired_seed_difference(values: pd.Series, baseline: pd.Series) -> tuple[float, float, float]:
    """Mean over the seeds both have of ``values − baseline`` (Series indexed by seed) and its paired
    95 % percentile-bootstrap interval (resampling seeds keeps each seed's pair together)."""
    diff = (values - baseline).dropna().to_numpy()
    low, high = bootstrap_mean_ci(diff)
    return (float(diff.mean()) if diff.size else np.nan, float(low), float(high))


def paired_difference(final: pd.DataFrame, policy: str, reference: str, column: str) -> tuple[float, float, float]:
    """Mean over seeds of ``policy − reference`` in ``column`` and its paired 95 % bootstrap interval."""
    wide = final[final["policy"].isin([policy, reference])].pivot_table(
        index="seed", columns="policy", values=column, aggfunc="first")
    if policy not in wide or reference not in wide:
        return (np.nan, np.nan, np.nan)
    return paired_seed_difference(wide[policy], wide[reference])


def run_true_ctr(metrics: pd.DataFrame) -> pd.Series:
    """Per run (scenario, policy, seed): the mean true CTR of what was shown over the whole run — the
    buckets' ``bucket_true_ctr`` weighted by their impressions (the expected clicks per impression:
    the truth, not the coin flips)."""
    m = metrics.sort_values(["scenario", "policy", "seed", "step"], kind="stable")
    runs = m.groupby(["scenario", "policy", "seed"], sort=False)
    window = m["impressions"] - runs["impressions"].shift(fill_value=0)
    clicks = (m["bucket_true_ctr"] * window).groupby([m["scenario"], m["policy"], m["seed"]], sort=False).sum()
    return clicks / runs["impressions"].max()


def ctr_comparison_frame(metrics: pd.DataFrame, pairs: dict[str, str]) -> pd.DataFrame:
    """For each scenario of ``pairs`` (scenario → the scenario its CTR is compared with,
    ``compare_ctr_to``) and each policy run on both: the CTR (clicks / impressions) and the true CTR
    (:func:`run_true_ctr`) in both, and the differences (this scenario − the other) over the seeds
    both ran, mean with a paired 95 % bootstrap interval (:func:`paired_seed_difference`: the
    same seed is the same world, users and click uniforms in both)."""
    final = final_rows(metrics).set_index(["scenario", "policy", "seed"])["ctr"].sort_index()
    true = run_true_ctr(metrics).sort_index()
    rows = []
    for scenario, other in pairs.items():
        ran = list(dict.fromkeys(metrics.loc[metrics["scenario"] == scenario, "policy"]))
        theirs = set(metrics.loc[metrics["scenario"] == other, "policy"])
        for policy in (p for p in ran if p in theirs):
            row: dict[str, Any] = {"scenario": scenario, "compared_to": other, "policy": policy}
            for name, values in (("ctr", final), ("true_ctr", true)):
                mine, base = values.loc[(scenario, policy)], values.loc[(other, policy)]
                row["seeds"] = int(mine.index.intersection(base.index).size)
                row[f"{name}"], row[f"{name}_compared"] = float(mine.mean()), float(base.mean())
                row[f"{name}_diff"], row[f"{name}_diff_low"], row[f"{name}_diff_high"] = \
                    paired_seed_difference(mine, base)
            rows.append(row)
    columns = ["scenario", "compared_to", "policy", "seeds"] + [
        f"{n}{s}" for n in ("ctr", "true_ctr") for s in ("", "_compared", "_diff", "_diff_low", "_diff_high")]
    return pd.DataFrame(rows, columns=columns)


def _comparison_table(c: pd.DataFrame, ran: list[str]) -> list[str]:
    """A scenario's CTR comparison (:func:`ctr_comparison_frame` rows) as Markdown lines; ``ran``: its policies."""
    other = c["compared_to"].iloc[0]
    head = ["policy", "seeds", "CTR % here", f"CTR % in {other}", "Δ CTR % (paired 95% CI)", "true CTR % here",
            f"true CTR % in {other}", "Δ true CTR % (paired 95% CI)"]
    lines = [f"CTR against `{other}` on the same seeds (same world, users and click uniforms; Δ = here − there):",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in c.iterrows():
        cells = [r["policy"], str(int(r["seeds"]))]
        for name in ("ctr", "true_ctr"):
            cells += [_fmt(100 * r[name], np.nan, 3), _fmt(100 * r[f"{name}_compared"], np.nan, 3),
                      _interval(100 * r[f"{name}_diff"], 100 * r[f"{name}_diff_low"], 100 * r[f"{name}_diff_high"], 3)]
        lines.append("| " + " | ".join(cells) + " |")
    missing = [p for p in ran if p not in set(c["policy"])]
    if missing:
        lines += ["", f"Not run in `{other}`, so not compared: " + ", ".join(f"`{p}`" for p in missing) + "."]
    return lines + [""]


def separation(metrics: pd.DataFrame, truth: frozenset[str] = frozenset()) -> dict[str, str]:
    """Per scenario, one sentence saying which policies the seeds tell apart.

    The policies that do not read the truth (``truth``: the oracle) are ordered by mean final
    regret; each neighbour pair is joined by ``<`` where the paired 95 % bootstrap interval of
    their difference in final regret (:func:`paired_difference`, common random numbers) excludes
    0, by ``≈`` where it does not. The best policy is then compared with every other one: the
    sentence names those it is not distinguishable from."""
    final = final_rows(metrics)
    out = {}
    for scenario, g in final.groupby("scenario", sort=False):
        g = g[~g["policy"].isin(truth)]
        means = g.groupby("policy", sort=False)["cum_regret"].mean().sort_values(kind="stable")
        order = list(means.index)
        if len(order) < 2:
            continue
        chain = f"`{order[0]}`"
        for a, b in zip(order, order[1:]):
            low = paired_difference(g, b, a, "cum_regret")[1]
            chain += (" < " if low > 0 else " ≈ ") + f"`{b}`"
        ties = [p for p in order[1:] if not paired_difference(g, p, order[0], "cum_regret")[1] > 0]
        best = (f"`{order[0]}` is distinguishable from every other policy" if not ties else
                f"`{order[0]}` is not distinguishable from " + ", ".join(f"`{p}`" for p in ties))
        seeds = g["seed"].nunique()
        out[scenario] = (f"Ordered by final regret over {seeds} seeds: {chain} (`<`: the paired 95 % interval of "
                         f"the neighbours' difference in final regret excludes 0; `≈`: it does not); {best}.")
    return out


LAST_FRACTION = 0.1
"""The window of the late columns: the last decade of impressions, as the regret slope's."""


def margin_share(runs: pd.DataFrame, last_fraction: float = 0.0) -> np.ndarray:
    """Per seed, the share of the oracle's margin over a uniformly random choice that the policy
    recovered: ``1 − R / R_random``, where ``R_random`` is the regret a uniform choice would have
    had on the same requests; with ``last_fraction`` > 0, over the impressions after the first
    recording point at or past that fraction of the run (the increments of both regrets from
    there), so a policy that is still learning shows its current rate, not its average.

    ``runs``: one (scenario, policy)'s metrics rows, every seed. NaN where the random regret does
    not grow (a scenario without a margin)."""
    out = []
    for _, g in runs.groupby("seed", sort=True):
        g = g.sort_values("step")
        imps, reg, rnd = (g[c].to_numpy(dtype=np.float64) for c in ("impressions", "cum_regret", "cum_random_regret"))
        start = np.flatnonzero(imps >= last_fraction * imps[-1])[0] if last_fraction > 0 else None
        base_reg, base_rnd = (reg[start], rnd[start]) if start is not None and start < len(imps) - 1 else (0.0, 0.0)
        gain = rnd[-1] - base_rnd
        out.append(1.0 - (reg[-1] - base_reg) / gain if gain > 0 else np.nan)
    return np.asarray(out)


def excess_regret_slope(runs: pd.DataFrame, bound: float) -> float:
    """The log-log slope, over the last decade, of the seeds' mean regret in excess of an
    observable-feature bound that keeps ``bound`` of the oracle's margin over random:
    ``R − (1 − bound) · R_random``, where ``(1 − bound) · R_random`` is the bound's expected regret on
    the same requests (NaN where the excess is not positive: the policy is at or past the bound)."""
    curve = runs.groupby("impressions")[["cum_regret", "cum_random_regret"]].mean()
    excess = curve["cum_regret"] - (1.0 - bound) * curve["cum_random_regret"]
    return loglog_slope(curve.index.to_numpy(), excess.to_numpy())


def summary_frame(metrics: pd.DataFrame, references: dict[str, str | None] | None = None,
                  bounds: dict[str, float] | None = None) -> pd.DataFrame:
    """Per (scenario, policy): final values with 95 % CIs over seeds, log-log slopes, decisions/s;
    then percentile-bootstrap intervals and the paired difference to the scenario's reference. With
    a scenario's observable-feature bound in ``bounds`` (``ScenarioSpec.observable_bound``): the
    shares of the bound (``bound_share``, ``bound_share_late``) and :func:`excess_regret_slope`."""
    bounds = bounds or {}
    references = references if references is not None else choose_references(metrics)
    final_all = final_rows(metrics)
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
        bound = bounds.get(scenario)
        for name, share in (("margin", margin_share(g, 0.0)), ("margin_late", margin_share(g, LAST_FRACTION))):
            row[f"{name}_mean"], row[f"{name}_ci95"] = share.mean(), ci95_halfwidth(share)
            if bound is not None:
                of_bound = share / bound
                key = "bound_share" + name[len("margin"):]
                row[f"{key}_mean"], row[f"{key}_ci95"] = of_bound.mean(), ci95_halfwidth(of_bound)
        if bound is not None:
            row["observable_bound"] = bound
            row["bound_slope"] = excess_regret_slope(g, bound)
        for col, name in (("cum_regret", "regret"), ("ctr", "ctr")):
            row[f"{name}_low"], row[f"{name}_high"] = map(float, bootstrap_mean_ci(final[col].to_numpy()))
        row["episode_return_mean"] = float(final["episode_return"].mean())
        if "cum_spend" in final and final["cum_spend"].notna().any():  # an auction scenario
            imps = final["impressions"].to_numpy(dtype=np.float64)
            for name, values in (("surplus", final["cum_expected_reward"]), ("spend", final["cum_spend"]),
                                 ("win_rate", final["cum_wins"] / imps),
                                 *((f"regret_{p}", final[f"cum_regret_{p}"]) for p in REGRET_PARTS)):
                row[f"{name}_mean"] = float(np.mean(values))
                row[f"{name}_ci95"] = ci95_halfwidth(np.asarray(values, dtype=np.float64))
        ref = references.get(scenario)
        row["reference"] = ref
        sc_final = final_all[final_all["scenario"] == scenario]
        for col, name in (("cum_regret", "regret"), ("ctr", "ctr"), ("episode_return", "return")):
            diff = paired_difference(sc_final, policy, ref, col) if ref is not None else (np.nan,) * 3
            row[f"{name}_diff"], row[f"{name}_diff_low"], row[f"{name}_diff_high"] = diff
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(mean: float, ci: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f}" + (f" ± {ci:.{digits}f}" if np.isfinite(ci) else "")


def _interval(mean: float, low: float, high: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def summary_markdown(summary: pd.DataFrame, title: str, sentences: dict[str, str] | None = None,
                     pages: dict[str, int] | None = None, auctions: dict[str, dict] | None = None,
                     comparisons: pd.DataFrame | None = None) -> str:
    """One Markdown table per scenario (GitHub pipe tables), each after its :func:`separation` sentence;
    ``pages`` maps slate scenarios to their positions per page L, ``auctions`` auction scenarios to
    their ``budget`` and ``horizon`` (a second table: surplus, spend, wins, the regret's parts);
    ``comparisons`` (:func:`ctr_comparison_frame`) adds a scenario's CTR against another's."""
    pages, auctions = pages or {}, auctions or {}
    comparisons = comparisons if comparisons is not None else pd.DataFrame(columns=["scenario"])
    lines = [f"# {title}", ""]
    head = ["policy", "regret (95% CI)", "fixed-arm regret", "CTR %", "regret slope", "fixed slope",
            "margin recovered %", "last decade %", "decisions/s",
            "Δ regret vs ref. (paired 95% CI)", "Δ CTR % vs ref."]
    for scenario, g in summary.groupby("scenario", sort=False):
        g = g.sort_values("regret_mean")
        ref = g["reference"].iloc[0]
        unit = f"pages of {pages[scenario]} positions" if scenario in pages else "impressions"
        lines += [f"## {scenario} — {int(g['impressions'].iloc[0]):,} {unit} × {int(g['seeds'].iloc[0])} seeds", ""]
        if (sentences or {}).get(scenario):
            lines += [sentences[scenario], ""]
        lines += [f"Reference policy of the paired differences: `{ref}`." if isinstance(ref, str) else "", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for _, r in g.iterrows():
            cells = [r["policy"], _fmt(r["regret_mean"], r["regret_ci95"], 1),
                     _fmt(r["fixed_regret_mean"], r["fixed_regret_ci95"], 1),
                     _fmt(100 * r["ctr_mean"], 100 * r["ctr_ci95"], 3),
                     _fmt(r["regret_slope"], np.nan, 2), _fmt(r["fixed_regret_slope"], np.nan, 2),
                     _fmt(100 * r["margin_mean"], 100 * r["margin_ci95"], 1),
                     _fmt(100 * r["margin_late_mean"], 100 * r["margin_late_ci95"], 1),
                     f"{r['decisions_per_s']:,.0f}" if np.isfinite(r["decisions_per_s"]) else "–",
                     _interval(r["regret_diff"], r["regret_diff_low"], r["regret_diff_high"], 1),
                     _interval(100 * r["ctr_diff"], 100 * r["ctr_diff_low"], 100 * r["ctr_diff_high"], 3)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if "observable_bound" in g and g["observable_bound"].notna().all():
            lines += _bound_table(g)
        if scenario in auctions:
            lines += _auction_table(g, **auctions[scenario])
        mine = comparisons[comparisons["scenario"] == scenario]
        if len(mine):
            lines += _comparison_table(mine, list(g["policy"]))
    lines += [
        "Regret: cumulative pseudo-regret against the per-request oracle, in expected reward (clicks), "
        "mean ± 95 % t-interval over seeds. Fixed-arm regret (pool scenarios): against always showing "
        "the creative with the highest population-mean reward. CTR: clicks / impressions. Slopes: "
        "log-log slope of the mean regret curve over the last decade of impressions (1 = linear). "
        "Margin recovered: the share of the oracle's margin over a uniformly random choice on the same "
        "requests that the policy kept, 1 − regret / random regret (100 % = the oracle, 0 % = random), "
        "over the whole run and over its last decade of impressions (the rate it has reached), mean ± "
        "95 % t-interval over seeds. "
        "Decisions/s: impressions per second of the policy's select + update. Δ vs ref.: the policy's "
        "value minus the reference policy's on the same seeds (common random numbers), mean over seeds "
        "with a paired 95 % percentile-bootstrap interval (negative Δ regret = better than the reference)."
        + (" Slate scenarios: an impression is a page of L ad positions; its reward, regret and CTR count "
           "the page's clicks (CTR: clicks per page), the oracle is the exact best slate under the click "
           "model and the random baseline a uniformly random slate; decisions/s counts pages." if pages else "")
        + (" CTR against another scenario (`compare_ctr_to`): each policy's CTR and true CTR (expected "
           "clicks per impression of what it showed) here and in the other scenario, and the difference on "
           "the same seeds, mean with a paired 95 % percentile-bootstrap interval over seeds." if len(comparisons) else "")
        + (" Observable-feature bound (`observable_bound`): the share of the oracle's margin over random "
           "that the best policy acting on observations alone keeps (`adsim train-ctr --labels truth`); a "
           "policy's share of the bound is its margin recovered divided by it, and the slope is that of its "
           "mean regret in excess of the bound's expected regret on the same requests, R − (1 − bound) · "
           "R_random, over the last decade (< 1: the policy closes in on the bound)."
           if "observable_bound" in summary and summary["observable_bound"].notna().any() else "")
        + (" Auction scenarios: the reward is the realised surplus (conversion value − payment), regret is "
           "in expected surplus against each request's hindsight-best (creative, bid) on the realised "
           "competition under the budget left (`adsim.auction`), and has no random baseline (no margin "
           "columns); their second table splits it exactly into allocation, estimation, overbidding and "
           "underbidding regret." if auctions else ""),
        ""]
    return "\n".join(lines)


def _bound_table(g: pd.DataFrame) -> list[str]:
    """A scenario's policies against its observable-feature bound (``observable_bound``): the share
    of the bound they reach, over the whole run and its last decade, and the slope of their regret
    in excess of the bound's (none where there is no excess: the oracle)."""
    bound = float(g["observable_bound"].iloc[0])
    lines = [f"Against the observable-feature bound ({100 * bound:.1f} % of the oracle's margin over random):", "",
             "| policy | share of the bound % | last decade % | slope of regret in excess of the bound |",
             "|---|---|---|---|"]
    for _, r in g.iterrows():
        lines.append(f"| {r['policy']} | {_fmt(100 * r['bound_share_mean'], 100 * r['bound_share_ci95'], 1)} | "
                     f"{_fmt(100 * r['bound_share_late_mean'], 100 * r['bound_share_late_ci95'], 1)} | "
                     f"{_fmt(r['bound_slope'], np.nan, 2)} |")
    return lines + [""]


def _auction_table(g: pd.DataFrame, budget: float | None, horizon: int) -> list[str]:
    """An auction scenario's second table: expected surplus, spend per campaign-day (and its share of
    the budget), win rate, the regret and its four parts (mean ± 95 % t-interval over seeds)."""
    head = ["policy", "expected surplus", "spend per day" + (" (% of budget)" if budget else ""), "wins %",
            "regret", *(f"{p} regret" for p in REGRET_PARTS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in g.iterrows():
        days = r["impressions"] / horizon  # campaign-days of a run (every sub-env's, summed)
        spend = _fmt(r["spend_mean"] / days, r["spend_ci95"] / days, 2)
        if budget:
            spend += f" ({100 * r['spend_mean'] / days / budget:.1f} %)"
        lines.append("| " + " | ".join([r["policy"], _fmt(r["surplus_mean"], r["surplus_ci95"], 1), spend,
                                         _fmt(100 * r["win_rate_mean"], 100 * r["win_rate_ci95"], 1),
                                         _fmt(r["regret_mean"], r["regret_ci95"], 1),
                                         *(_fmt(r[f"regret_{p}_mean"], r[f"regret_{p}_ci95"], 1) for p in REGRET_PARTS)])
                     + " |")
    return lines + [""]


def write_outputs(out: Path, config: BenchConfig, jobs: list[Job], results: list[RunResult],
                  run_info: dict[str, Any]) -> pd.DataFrame:
    """Write config.json, metrics.csv (+ .gz), arms.csv, summary.csv and summary.md into ``out``; return
    the summary. ``out`` is a staging folder: the caller moves its files into place."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = metrics_frame(jobs, results)
    metrics.to_csv(out / "metrics.csv", index=False)
    metrics.to_csv(out / "metrics.csv.gz", index=False, float_format="%.10g",
                   compression={"method": "gzip", "mtime": 0})
    arms = arms_frame(jobs, results)
    if len(arms):
        arms.to_csv(out / "arms.csv", index=False)
    truth = frozenset(p.label for p in config.policies if p.make().reference)
    bounds = {sc.name: sc.observable_bound for sc in config.scenarios if sc.observable_bound is not None}
    summary = summary_frame(metrics, choose_references(metrics, config.reference, truth), bounds)
    summary.to_csv(out / "summary.csv", index=False)
    sentences = separation(metrics, truth)
    pages = {sc.name: sc.slate_size for sc in config.scenarios if sc.slate_size is not None and not sc.auctions}
    auctions = {}
    for i, sc in enumerate(config.scenarios):
        if sc.auctions:
            env_cfg = sc.env_config(config.seeds[0], config.size(i)[0])
            auctions[sc.name] = {"budget": env_cfg.budget, "horizon": env_cfg.horizon}
    days = days_frame(jobs, results)
    if len(days):
        days.to_csv(out / "days.csv.gz", index=False, float_format="%.10g", compression={"method": "gzip", "mtime": 0})
    pairs = {sc.name: sc.compare_ctr_to for sc in config.scenarios if sc.compare_ctr_to is not None}
    comparisons = ctr_comparison_frame(metrics, pairs) if pairs else None
    if comparisons is not None:
        comparisons.to_csv(out / "ctr_comparison.csv", index=False)
    (out / "summary.md").write_text(summary_markdown(summary, f"Benchmark {config.name!r}", sentences, pages,
                                                     auctions, comparisons) + "\n")
    generators = config.generators()
    meta = {"config": config.to_dict(), "fingerprint": config.fingerprint(), "run": run_info, **provenance(),
            **({"generators": generators} if generators else {}),
            "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.machine()}
    (out / "config.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return summary
