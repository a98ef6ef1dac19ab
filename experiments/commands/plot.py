"""``adsim plot DIR``: redraw a benchmark's regret.png and ctr.png from its metrics.csv."""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("plot", help="redraw regret.png and ctr.png of a results folder from metrics.csv")
    p.add_argument("dir", help="results folder written by `adsim bench`")
    p.set_defaults(func=run)


def run(args) -> int:
    from experiments.runner.plots import plot_dir

    try:
        paths = plot_dir(args.dir)
    except ValueError as err:
        print(f"adsim plot: error: {err}", file=sys.stderr)
        return 2
    print("wrote " + " ".join(str(p) for p in paths))
    return 0
