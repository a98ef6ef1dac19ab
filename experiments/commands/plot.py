"""``adsim plot DIR``: redraw a results folder's figures (regret, regret_loglog, paired, ctr; PNG + SVG) from its
metrics.csv or the compact metrics.csv.gz; an OPE study's folder: rmse from estimates.csv.gz."""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("plot", help="redraw the figures of a results folder from metrics.csv(.gz)")
    p.add_argument("dir", help="results folder written by `adsim bench` (or `adsim ope-study`)")
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
