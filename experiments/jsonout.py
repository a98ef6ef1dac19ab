"""JSON output without non-finite numbers: ``NaN`` and ``Infinity`` are not JSON, and a result that
holds one is wrong, not a number to print."""

from __future__ import annotations

import json
import math
from typing import Any


def _first_non_finite(obj: Any, path: str = "") -> tuple[str, float] | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return path or "<root>", obj
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for key, value in items:
        hit = _first_non_finite(value, f"{path}.{key}" if path else str(key))
        if hit:
            return hit
    return None


def dumps(doc: Any, **kwargs) -> str:
    """``json.dumps(doc, allow_nan=False)``; a ``ValueError`` naming the first non-finite field."""
    hit = _first_non_finite(doc)
    if hit is not None:
        raise ValueError(f"result field {hit[0]} is {hit[1]}: a non-finite number is not written as JSON; "
                         "check the inputs that produced it (rewards, propensities, number of rows)")
    return json.dumps(doc, allow_nan=False, **kwargs)


__all__ = ["dumps"]
