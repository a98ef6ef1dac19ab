"""Memory estimates, checked before any work starts (issue 18, point 5).

Every world, env, logged-impression budget and benchmark run estimates the memory it will need
when it is constructed, and raises a ``ValueError`` naming the parameter to reduce if that is above
the limit: ``ADSIM_MEMORY_LIMIT`` (bytes, or with a unit: ``"8GiB"``, ``"500MB"``) or, by default,
:data:`DEFAULT_FRACTION` of this machine's physical memory. The estimates are upper bounds measured
with ``tracemalloc`` on the default scenarios (peak bytes per sub-env, per user × product …), not
exact figures; they never change a draw.
"""

from __future__ import annotations

import os
import re

DEFAULT_FRACTION = 0.25
"""Share of the machine's physical memory one adsim process may plan to use."""
ENV_VAR = "ADSIM_MEMORY_LIMIT"
WORKER_BYTES = 600 * 2**20
"""What one runner worker holds before its run: the interpreter with NumPy, torch, scikit-learn, SB3."""
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def machine_memory() -> int:
    """Physical memory of this machine in bytes (``os.sysconf``; 16 GiB where it is unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 * 2**30


def parse_bytes(text: str) -> int:
    """``"8GiB"`` → 8589934592; a plain number is bytes."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"{ENV_VAR} == {text!r}: expected bytes, optionally with a unit (e.g. 8GiB, 500MB)")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value <= 0:
        raise ValueError(f"{ENV_VAR} == {text!r}: must be > 0")
    return int(value)


def memory_limit() -> int:
    """The limit in bytes: ``ADSIM_MEMORY_LIMIT`` if set, else ``DEFAULT_FRACTION`` of the machine's memory."""
    text = os.environ.get(ENV_VAR)
    return parse_bytes(text) if text else int(DEFAULT_FRACTION * machine_memory())


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_memory(need: float, what: str, reduce: str) -> None:
    """Raise ``ValueError`` if ``need`` bytes exceed :func:`memory_limit`.

    Args:
        need: the estimate, bytes.
        what: what needs it, with the values that make it large (e.g. ``"a world with n_users == 10**8"``).
        reduce: the parameter(s) to reduce.
    """
    limit = memory_limit()
    if need > limit:
        source = f"{ENV_VAR}" if os.environ.get(ENV_VAR) else (
            f"{DEFAULT_FRACTION:.0%} of this machine's {_gib(machine_memory())}; set {ENV_VAR} to change it")
        raise ValueError(f"{what} needs about {_gib(need)} of memory, more than the limit of {_gib(limit)} "
                         f"({source}); reduce {reduce}")


def world_bytes(world_config) -> int:
    """Peak bytes of building a world: the behaviour history and its sampling dominate
    (at most about 80 bytes per user × product)."""
    c = world_config
    return int(c.n_users * c.n_products * 80 + c.n_users * (c.n_topics * 48 + 512) + 64 * 2**20)


def env_bytes(env_config, num_envs: int) -> int:
    """Peak bytes of a core of ``num_envs`` sub-envs (the world excluded): request blocks,
    observations and step outputs (measured: ≤ 1,000 + 900·K bytes per sub-env), and the fatigue
    memory (4 bytes per sub-env × user × visual attribute value) when fatigue is on."""
    K = getattr(env_config, "n_candidates", 8)
    need = num_envs * (2000 + 1000 * K) + 64 * 2**20
    if getattr(env_config, "fatigue_strength", 0) > 0 and hasattr(env_config, "world"):
        from adsim.creative.lexicon import LEXICON

        need += num_envs * env_config.world.n_users * (4 * LEXICON.n_attr_values + 8)
    return int(need)


def impressions_bytes(n_impressions: int, user_dim: int = 40) -> int:
    """Bytes of ``n_impressions`` logged impressions with their per-step buffers and the
    feature encoding a CTR model trains on (about 3× the Parquet row: ~1.5 KB per impression)."""
    return int(n_impressions * 3 * (4 * user_dim + 4 * 39 + 8 * 9 + 48))


def run_bytes(env_config, steps: int, batch_size: int, n_seeds: int = 1) -> int:
    """Bytes of one (stacked) benchmark run: the env of ``n_seeds × batch_size`` sub-envs and the
    per-step records (6 metrics and K arm counts per seed and step)."""
    K = getattr(env_config, "n_candidates", 8)
    return int(env_bytes(env_config, n_seeds * batch_size) + n_seeds * steps * 8 * (6 + K))


def default_workers(per_worker: int = WORKER_BYTES) -> int:
    """Default number of parallel workers: the CPU count, but no more than fit in the memory limit."""
    return max(1, min(os.cpu_count() or 1, memory_limit() // max(int(per_worker), 1)))


__all__ = ["DEFAULT_FRACTION", "ENV_VAR", "WORKER_BYTES", "check_memory", "default_workers", "env_bytes",
           "impressions_bytes", "machine_memory", "memory_limit", "parse_bytes", "run_bytes", "world_bytes"]
