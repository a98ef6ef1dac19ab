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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adsim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{mod.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Bad input (``ValueError``, ``TypeError``, a missing file) is reported as one
    line on stderr with exit code 2; set ``ADSIM_TRACEBACK=1`` to see the traceback instead."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `adsim scenario | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 0
    except (ValueError, TypeError, FileNotFoundError) as err:
        if os.environ.get("ADSIM_TRACEBACK"):
            raise
        print(f"adsim {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
