"""Import cost of the packages: ``python -X importtime -c "import adsim"`` (and ``agents``), in fresh
interpreters, and which heavy libraries an import pulls in (there should be none: torch, SB3 and
scikit-learn load only when a component that needs them is used)."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys

SUITE = "imports"
PACKAGES = ("adsim", "agents", "experiments.cli")
HEAVY = ("torch", "stable_baselines3", "sklearn", "scipy", "pandas", "pyarrow")
_PROBE = "import sys; import {m}; print(','.join(k for k in {heavy!r} if k in sys.modules))"


def import_seconds(module: str) -> tuple[float, list[str]]:
    """Cumulative ``-X importtime`` of ``module`` in a fresh interpreter (s), and the heavy libraries
    it loaded."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", _PROBE.format(m=module, heavy=HEAVY)],
                          capture_output=True, text=True, check=True)
    cumulative = [int(m.group(1)) for m in re.finditer(rf"^import time:\s*\d+ \|\s*(\d+) \| {re.escape(module)}$",
                                                       proc.stderr, re.M)]
    if not cumulative:
        raise RuntimeError(f"no -X importtime line for {module!r} in:\n{proc.stderr[-2000:]}")
    loaded = [k for k in proc.stdout.strip().split(",") if k]
    return cumulative[-1] / 1e6, loaded


def run(quick: bool) -> dict:
    repeats = 3 if quick else 7
    out = {}
    for module in PACKAGES:
        times, loaded = [], []
        for _ in range(repeats):
            t, loaded = import_seconds(module)
            times.append(t)
        out[module] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                       "repeats": repeats, "heavy_modules_loaded": loaded}
    return out
