"""``adsim rl-study``: bandits against RL agents on CreativeSelection and AdSession.

A thin command over the one runner: ``adsim bench`` with ``experiments/configs/rl_vs_bandits.toml``
as the default config (same schema, flags and outputs). Its summary adds, per scenario, the mean
return per finished episode (a session's clicks on AdSession) with the paired difference to the
reference policy, and how many impressions each RL agent trained for.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from experiments.options import add_study_options

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "rl_vs_bandits.toml"


def register(sub) -> None:
    p = sub.add_parser("rl-study", help="bandits vs RL agents (PPO/A2C/DQN) on both envs; the runner of adsim bench")
    add_study_options(p, default_config=os.path.relpath(DEFAULT_CONFIG) if DEFAULT_CONFIG.is_relative_to(Path.cwd())
                      else str(DEFAULT_CONFIG))
    p.set_defaults(func=run)


def episode_table(config, summary) -> str:
    """Markdown: return per episode (mean, paired Δ to the reference) and training budget per policy."""
    train = {p.label: 0 if p.hyper.get("model_path") else int(getattr(p.make(), "train_steps", 0))
             for p in config.policies}
    lines = ["# Episode returns", "",
             "Return: clicks per finished episode (AdSession: per session), mean over seeds; Δ: minus the "
             "reference policy's on the same seeds, paired 95 % bootstrap interval. Train: impressions an RL "
             "agent trained for before the evaluated run (other streams of the same world).", ""]
    for scenario, g in summary.groupby("scenario", sort=False):
        ref = g["reference"].iloc[0]
        lines += [f"## {scenario} (reference `{ref}`)", "", "| policy | return/episode | Δ return vs ref. | train |",
                  "|---|---|---|---|"]
        for _, r in g.sort_values("episode_return_mean", ascending=False).iterrows():
            diff = r.get("return_diff")
            cell = (f"{diff:+.3f} [{r['return_diff_low']:+.3f}, {r['return_diff_high']:+.3f}]"
                    if diff == diff else "–")
            lines.append(f"| {r['policy']} | {r['episode_return_mean']:.3f} | {cell} | {train.get(r['policy'], 0):,} |")
        lines.append("")
    return "\n".join(lines)


def run(args) -> int:
    from experiments.options import run_study
    from experiments.runner.store import atomic_text

    done = run_study(args)
    if isinstance(done, int):
        return done
    config, summary = done
    text = episode_table(config, summary)
    atomic_text(Path(args.out) / "episodes.md", text + "\n")
    print((Path(args.out) / "summary.md").read_text())
    print(text)
    print(f"wrote {args.out}/: the outputs of adsim bench, episodes.md, artifacts/ (RL models, SB3 logs)",
          file=sys.stderr)
    return 0
