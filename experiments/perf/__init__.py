"""Performance suites for ``adsim perf``.

Every module here defines ``SUITE`` (a short name) and ``run(quick: bool) -> dict`` returning
JSON-serialisable measurements. ``adsim perf`` runs all suites (or those named with ``--suite``)
and prints one JSON document.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable


def suites() -> dict[str, Callable[[bool], dict]]:
    found = {}
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{mod.name}")
        found[module.SUITE] = module.run
    return found


def median_rate(fn: Callable[[], int], repeats: int = 5, min_time: float = 0.2) -> dict:
    """Median items/s of ``fn`` (which does some work and returns how many items it processed).

    ``median`` is wall-clock; ``cpu_median`` divides by this process's CPU time instead, which is
    what the code costs when the (shared, 2-core) machine is busy with other work.
    """
    rates, cpu_rates = [], []
    for _ in range(repeats):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            n += fn()
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        rates.append(n / dt)
        cpu_rates.append(n / max(time.process_time() - c0, 1e-9))
    rates.sort()
    cpu_rates.sort()
    return {"median": rates[len(rates) // 2], "min": rates[0], "max": rates[-1],
            "cpu_median": cpu_rates[len(cpu_rates) // 2], "repeats": repeats}
