"""The ``adsim`` command line.

Subcommands are plug-ins: every module in ``experiments.commands`` defines
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed args;
its return value is the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import experiments.commands as commands


EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 3
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("adsim")
    except PackageNotFoundError:  # a checkout run without installing
        __version__ = "0.1.0"
    parser = argparse.ArgumentParser(prog="adsim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"adsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{mod.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Bad input (``ValueError``, ``TypeError``, a missing file) is reported as one
    line on stderr with exit code 2; a run that fails once work has started exits 3 naming the run;
    an interrupt (Ctrl-C, SIGTERM) exits 130, finished runs kept. Set ``ADSIM_TRACEBACK=1`` to see
    the traceback instead."""
    from experiments.runner.backends import RunFailed

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RunFailed as err:
        if os.environ.get("ADSIM_TRACEBACK"):
            raise
        print(f"adsim {args.command}: run failed: {err}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except KeyboardInterrupt:
        out = getattr(args, "out", None)
        kept = f"; finished runs are kept in {out}/runs, rerun with --resume to finish" if out else ""
        print(f"adsim {args.command}: interrupted{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, FileNotFoundError) as err:
        if os.environ.get("ADSIM_TRACEBACK"):
            raise
        print(f"adsim {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
