"""Where a study's results live while it runs: one file per finished run, written atomically.

``OUT/runs/plan.json`` records the config's fingerprint when the study starts; each finished run
is written to ``OUT/runs/<scenario>__<policy>__seed<s>.npz`` the moment the parent receives it
(write to a temporary name, then rename), so Ctrl-C, SIGTERM, SIGKILL or a failure in a later run
leave every finished run intact, and ``--resume`` runs only what is missing: its final outputs equal
an uninterrupted run's bit for bit (each run is a pure function of its job; tested). A non-empty
``OUT`` made by another config (or by nothing this runner knows) is refused unless ``--overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from experiments.runner.run import Job, RunResult
from experiments.runner.spec import BenchConfig

OUTPUTS = ("config.json", "metrics.csv", "metrics.csv.gz", "arms.csv", "summary.csv", "summary.md", "episodes.md",
           "regret.png",
           "regret.svg", "regret_loglog.png", "regret_loglog.svg", "ctr.png", "ctr.svg", "paired.png",
           "paired.svg", "estimates.csv.gz", "rmse.png", "rmse.svg", "days.csv.gz", "auction.png", "auction.svg")
"""Files the runner writes into ``OUT`` (``--overwrite`` removes exactly these, ``runs/`` and ``artifacts/``)."""


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``: readers see
    the old file or the whole new one, never a truncated one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


class RunStore:
    """The finished runs of one study in ``OUT/runs``."""

    def __init__(self, out: str | Path, config: BenchConfig):
        self.out, self.config = Path(out), config
        self.dir = self.out / "runs"
        self.fingerprint = config.fingerprint()

    def path(self, job: Job) -> Path:
        return self.dir / (job.name.replace("/", "__") + ".npz")

    def save(self, job: Job, result: RunResult) -> None:
        def write(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.savez(f, **result._asdict())

        atomic_write(self.path(job), write)

    def load(self, job: Job) -> RunResult | None:
        """The saved result of ``job``, or None if it has not finished (or its file is unreadable)."""
        path = self.path(job)
        if not path.is_file():
            return None
        try:
            kind = getattr(job, "result_type", RunResult)  # a benchmark run, or another study kind's result
            with np.load(path) as data:
                return kind(**{k: data[k] for k in kind._fields})
        except (OSError, ValueError, KeyError):
            return None

    def done(self, jobs: Sequence[Job]) -> dict[int, RunResult]:
        """Index -> result of every job already finished."""
        found = {i: self.load(j) for i, j in enumerate(jobs)}
        return {i: r for i, r in found.items() if r is not None}

    # ------------------------------------------------------------------ the folder
    def recorded_fingerprint(self) -> str | None:
        for path, key in ((self.dir / "plan.json", "fingerprint"), (self.out / "config.json", "fingerprint")):
            try:
                return json.loads(path.read_text())[key]
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return None

    def prepare(self, resume: bool = False, overwrite: bool = False) -> None:
        """Check ``OUT`` before anything runs and claim it for this config.

        Raises ``ValueError`` if ``OUT`` is a file, is not writable, or is non-empty and was made by
        another config (unless ``overwrite``) or by this one without ``resume``/``overwrite``."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {str(out)!r} is a file, must be a folder (created if missing)")
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            recorded = self.recorded_fingerprint()
            if recorded != self.fingerprint:
                what = "another config" if recorded else "something other than this runner"
                raise ValueError(f"--out {str(out)!r} is not empty and was made by {what}; choose another folder "
                                 f"or pass --overwrite to replace its results")
            if not resume:
                raise ValueError(f"--out {str(out)!r} already holds runs of this config; pass --resume to run only "
                                 f"what is missing, or --overwrite to start again")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_text(self.dir / ".write_test", "ok")
            (self.dir / ".write_test").unlink()
        except OSError as err:
            raise ValueError(f"--out {str(out)!r} is not writable: {err}") from None
        if overwrite:
            for name in OUTPUTS:
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(self.dir, ignore_errors=True)
            shutil.rmtree(out / "artifacts", ignore_errors=True)
            self.dir.mkdir(parents=True)
        atomic_text(self.dir / "plan.json", json.dumps({"fingerprint": self.fingerprint, "name": self.config.name},
                                                       indent=2) + "\n")
