"""Flags every study command shares, with one meaning each (``adsim bench``, ``adsim rl-study``,
``adsim ope-study``):

``--config FILE``, ``--out DIR`` (required: no command writes into a committed results folder by
default), ``--jobs N`` (parallel workers; 1 = serial in this process), ``--backend local|ray``,
``--seeds N`` (scenario seeds 0 … N−1), ``--steps N``, ``--set dotted.key=value`` (repeatable),
``--dry-run`` (print the resolved plan and an estimate of the time, run nothing; an OPE study
processes one pilot log for it), ``--resume``,
``--overwrite``, ``--progress/--no-progress``. Commands that train or run a torch model
(``train-ctr``, ``ctr-online``, ``train-generator``, ``generate``) share ``--device cpu|cuda|auto``;
those that train on the world's users and evaluate (``train-ctr``, ``train-generator``) share
``--held-out-users F`` (``adsim.users``); those built on one preset (``scenario``, ``train-ctr``,
``train-generator``) share ``--set field=value`` for the preset's env and world fields.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_common(p: argparse.ArgumentParser, jobs: bool = True) -> None:
    """``--jobs``, ``--seeds``, ``--progress/--no-progress``."""
    if jobs:
        p.add_argument("--jobs", type=int, default=None,
                       help="parallel workers (default: the CPU count, but no more than fit in the memory "
                            "limit ADSIM_MEMORY_LIMIT at ~600 MB each); 1 runs serially in this process")
    p.add_argument("--seeds", type=int, default=None, help="use scenario seeds 0 … N−1 (overrides the config)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")


def add_field_overrides(p: argparse.ArgumentParser) -> None:
    """``--set FIELD=VALUE`` (repeatable): override one env or world field of the command's preset."""
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="fields",
                   help="override one env or world field of the preset, TOML values: --set creative_scale=0.5 "
                        "--set slot_factors=[1.0,0.9,0.8] (repeatable)")


def field_overrides(args) -> dict:
    """``args.fields`` (``--set field=value`` items) as config-field overrides; a malformed item raises
    ``ValueError`` naming it (an unknown field or value raises where the config is built)."""
    from experiments.runner.spec import parse_value

    out = {}
    for item in args.fields:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or "." in key:
            raise ValueError(f"--set {item!r}: expected field=value with an env or world field, "
                             "e.g. creative_scale=0.5")
        value = parse_value(text.strip())
        out[key.strip()] = tuple(value) if isinstance(value, list) else value
    return out


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device``: the torch device of the command's models (``adsim.validation.check_device``)."""
    p.add_argument("--device", default="cpu",
                   help="torch device: cpu (default), cuda (or cuda:N), or auto (cuda when torch sees a GPU)")


def check_device_arg(args) -> str:
    """``args.device`` validated before any work starts (a clear error where there is no GPU)."""
    from adsim.validation import check_device

    return check_device(args.device, "--device")


HELD_OUT_USERS_DEFAULT = 0.2
"""``--held-out-users``'s default: ``adsim.users.DEFAULT_HELD_OUT_USERS`` (not imported here, so
building the parser loads no part of ``adsim``; a test checks they agree)."""


def add_held_out_users(p: argparse.ArgumentParser, reported: str) -> None:
    """``--held-out-users F``: the share of the world's users kept out of all training data; the
    command's evaluation is also reported for the users seen in training and for the held-out
    ones (``reported`` says what is reported)."""
    p.add_argument("--held-out-users", type=float, default=HELD_OUT_USERS_DEFAULT,
                   help=f"share of users kept out of training: {reported} are also reported for the users "
                        f"the models saw and for the users they never saw (0: no user split; at most 0.9; "
                        f"default %(default)s)")


def check_held_out_users_arg(args) -> float:
    """``args.held_out_users`` validated before any work starts (``adsim.users.check_held_out_fraction``)."""
    from adsim.users import check_held_out_fraction

    return check_held_out_fraction(args.held_out_users, "--held-out-users")


def add_study_options(p: argparse.ArgumentParser, default_config: str | None = None) -> None:
    """Every flag of a study command (see the module docstring)."""
    if default_config is None:
        p.add_argument("--config", required=True, help="study TOML, e.g. experiments/configs/default.toml")
    else:
        p.add_argument("--config", default=default_config, help="study TOML (default: %(default)s)")
    p.add_argument("--out", required=True, help="results folder to write (created if missing)")
    add_common(p)
    p.add_argument("--steps", type=int, default=None, help="vector-env steps per run (overrides the config)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                   help="override one config value, dotted keys, TOML values: --set scenarios.pool.batch_size=32 "
                        "--set policies.eps.epsilon=0.2 (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved plan (runs, impressions, time "
                                                          "estimate) and exit without running")
    p.add_argument("--resume", action="store_true", help="run only the runs missing from --out (same config)")
    p.add_argument("--overwrite", action="store_true", help="replace the results in a non-empty --out")
    p.add_argument("--backend", default="local", help="'local' (process pool, default) or 'ray'")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--no-stack", action="store_true",
                   help="one vector env per (scenario, policy, seed) instead of the seeds of a (scenario, "
                        "policy) stacked in one; the results are identical, only the wall time differs")


def load_study(args):
    """The validated config of a study command's flags (``ValueError``/``TypeError`` on bad input)."""
    from adsim.validation import check_int
    from experiments.runner.spec import apply_overrides, parse_config, read_toml

    sets = list(args.sets)
    if args.seeds is not None:
        check_int("--seeds", args.seeds, 1, 10**6)
        sets.append(f"seeds=[{', '.join(str(s) for s in range(args.seeds))}]")
    doc = read_toml(args.config)
    if args.steps is not None:
        check_int("--steps", args.steps, 1, 10**7)
        if "ope" in doc:
            raise ValueError(f"--steps {args.steps}: an OPE study has no steps; its logs have ope.sizes rounds "
                             f"(e.g. --set 'ope.sizes=[500, 2000]')")
        sets.append(f"steps={args.steps}")
    return parse_config(apply_overrides(doc, sets), default_name=Path(args.config).stem)


def run_study(args) -> tuple[object, object] | int:
    """Validate, check, then run a study from its flags; returns (config, summary) or an exit code."""
    from adsim.validation import check_choice, check_int
    from experiments.runner import BACKENDS, make_jobs, make_units, run_benchmark
    from experiments.runner.checks import check_all, plan

    config = load_study(args)  # everything is validated before anything runs
    check_choice("--backend", args.backend, BACKENDS)
    from adsim.memory import default_workers
    from experiments.runner.checks import worker_bytes

    all_jobs = make_jobs(config)
    units = len(make_units(all_jobs, not args.no_stack))
    # default: the CPUs, but no more workers than fit in memory with the study's largest unit each
    jobs = args.jobs if args.jobs is not None else default_workers(worker_bytes(config, not args.no_stack))
    check_int("--jobs", jobs, 1, 1024)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out!r} is a file, must be a folder (created if missing)")
    check_all(config, jobs, units, not args.no_stack)
    if args.dry_run:
        if config.ope is not None:
            from experiments.ope.study import plan as ope_plan

            resolved = ope_plan(config, jobs)
        else:
            resolved = plan(config, jobs, units)
        print(json.dumps({"config": config.name, "fingerprint": config.fingerprint(), "backend": args.backend,
                          **resolved}, indent=2))
        return 0
    if config.ope is not None:
        ope = config.ope
        print(f"{config.name}: OPE, {len(config.scenarios)} scenario(s) × {len(ope.logging)} logging policies × "
              f"{len(ope.sizes)} sizes × {len(config.seeds)} seeds = {len(all_jobs)} logs, {len(ope.targets)} "
              f"targets ({args.backend}, {jobs} worker(s))", file=sys.stderr)
    else:
        print(f"{config.name}: {len(config.scenarios)} scenario(s), {len(config.policies)} policies, "
              f"{len(config.seeds)} seeds = {len(all_jobs)} runs ({args.backend}, {jobs} worker(s), {units} unit(s): "
              f"{'seeds stacked' if not args.no_stack else 'not stacked'})", file=sys.stderr)
    summary = run_benchmark(config, args.out, workers=jobs, backend=args.backend, address=args.ray_address,
                            progress=args.progress, stack=not args.no_stack, resume=args.resume,
                            overwrite=args.overwrite)
    return config, summary
