"""Argument checks shared by every module: each raises ``TypeError`` (wrong type) or ``ValueError``
(wrong value) naming the argument, the rule and the value, before any work starts.

``check_choice`` suggests the closest allowed value (``"unknown policy 'lin_ucb'; did you mean
'linucb'?"``), as Gymnasium's registry does with ``difflib.get_close_matches``.
"""

from __future__ import annotations

import difflib
import math
from typing import Any


def suggest(value: str, allowed) -> str:
    """`` did you mean …? Allowed: …`` for an unknown ``value`` among ``allowed``."""
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    hint = f" did you mean {close[0]!r}?" if close else ""
    return f"{hint} Allowed: {', '.join(map(repr, allowed))}"


def check_choice(name: str, value: Any, allowed) -> None:
    """``value`` must be a str in ``allowed``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r}")
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r};{suggest(value, allowed)}")


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> None:
    """``value`` must be an int (not a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} == {value}, must be in [{lo}, {hi}]")


def check_float(
    name: str, value: Any, low: float | None = None, high: float | None = None, *, open_low=False
) -> None:
    """``value`` must be a finite real number in [low, high] (``(low, high]`` with ``open_low``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} == {value}, must be a finite number")
    bad_low = low is not None and (value <= low if open_low else value < low)
    if bad_low or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} == {value}, must be in {'(' if open_low else '['}{lo}, {hi}]")


__all__ = ["check_choice", "check_float", "check_int", "suggest"]
