"""``adsim bench``: run a study config (scenarios × policies × seeds) and write its results folder."""

from __future__ import annotations

import os
import sys

from experiments.options import add_study_options


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a study config and write metrics, summary and figures")
    add_study_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from experiments.options import run_study

    done = run_study(args)
    if isinstance(done, int):
        return done
    with open(os.path.join(args.out, "summary.md")) as f:
        print(f.read())
    print(f"wrote {args.out}/: config.json metrics.csv(.gz) summary.csv summary.md, figures regret, "
          f"regret_loglog, paired, ctr (.png, .svg); finished runs in runs/", file=sys.stderr)
    return 0
