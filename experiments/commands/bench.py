"""``adsim bench``: run a benchmark config (policies × scenarios × seeds) and write results/<name>/."""

from __future__ import annotations

import os
import sys


def register(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark config and write metrics, summary and plots")
    p.add_argument("--config", required=True, help="TOML file, e.g. experiments/configs/default.toml")
    p.add_argument("--out", required=True, help="results folder to write, e.g. results/default")
    p.add_argument("--jobs", type=int, default=None,
                   help="parallel workers (default: CPU count); 1 runs serially in this process")
    p.add_argument("--backend", default="local", help="'local' (process pool, default) or 'ray'")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--no-stack", action="store_true",
                   help="one vector env per (scenario, policy, seed) instead of the seeds of a (scenario, "
                        "policy) stacked in one; the results are identical, only the wall time differs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from adsim.validation import check_choice, check_int
    from experiments.runner import BACKENDS, load_config, make_jobs, make_units, run_benchmark

    try:  # everything is validated before anything runs
        config = load_config(args.config)
        check_choice("--backend", args.backend, BACKENDS)
        jobs = args.jobs if args.jobs is not None else os.cpu_count() or 1
        check_int("--jobs", jobs, 1, 1024)
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise ValueError(f"--out {args.out!r} is a file, must be a folder (created if missing)")
    except (TypeError, ValueError) as err:
        print(f"adsim bench: error: {err}", file=sys.stderr)
        return 2
    all_jobs = make_jobs(config)
    n, units = len(all_jobs), len(make_units(all_jobs, not args.no_stack))
    sizes = ", ".join(f"{sc.name} {s * b:,}" for i, sc in enumerate(config.scenarios) for s, b in [config.size(i)])
    print(f"{config.name}: {len(config.scenarios)} scenario(s) × {len(config.policies)} policies × "
          f"{len(config.seeds)} seeds = {n} runs; impressions per run: {sizes} "
          f"({args.backend}, {jobs} worker(s), {units} unit(s): "
          f"{'seeds stacked' if not args.no_stack else 'not stacked'})", file=sys.stderr)
    summary_path = os.path.join(args.out, "summary.md")
    run_benchmark(config, args.out, workers=jobs, backend=args.backend, address=args.ray_address,
                  progress=not args.no_progress, stack=not args.no_stack)
    with open(summary_path) as f:
        print(f.read())
    print(f"wrote {args.out}/: config.json metrics.csv summary.csv summary.md regret.png ctr.png", file=sys.stderr)
    return 0
