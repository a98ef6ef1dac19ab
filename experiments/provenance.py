"""What produced a result: the git commit (and whether the tree was dirty) and package versions.

Every command that writes results saves :func:`provenance` beside them.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("numpy", "gymnasium", "pandas", "scipy", "matplotlib", "scikit-learn", "torch",
            "stable-baselines3", "ray", "tqdm")
_ROOT = Path(__file__).resolve().parents[1]


def git_state(root: Path = _ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout at ``root``."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD") or None,
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict[str, str | None]:
    """Python's and the main dependencies' versions (None when not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance() -> dict[str, Any]:
    """``{"git": git_state(), "versions": package_versions()}``."""
    return {"git": git_state(), "versions": package_versions()}
