"""``adsim perf``: run the performance suites and print JSON."""

from __future__ import annotations

import json
import platform
import sys


def register(sub) -> None:
    p = sub.add_parser("perf", help="measure throughput and latency; prints JSON")
    p.add_argument("--suite", action="append", help="run only these suites (repeatable)")
    p.add_argument("--quick", action="store_true", help="shorter measurements (for smoke tests)")
    p.add_argument("--out", help="also write the JSON to this file")
    p.add_argument("--generator-model", help="generator suite: use this trained generator directory "
                   "(adsim train-generator --out DIR); without it a small one is trained in the suite")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    import experiments.perf as perf

    available = perf.suites()
    chosen = args.suite or list(available)
    unknown = [s for s in chosen if s not in available]
    if unknown:
        print(f"unknown suite {unknown[0]!r}; allowed: {', '.join(available)}", file=sys.stderr)
        return 2
    report = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                          "processor": platform.processor() or platform.machine()}}
    for name in chosen:
        print(f"running suite {name} …", file=sys.stderr)
        if name == "generator" and getattr(args, "generator_model", None):
            report[name] = available[name](args.quick, model_dir=args.generator_model)
        else:
            report[name] = available[name](args.quick)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0
