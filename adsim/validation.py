"""Argument checks shared by every module: each raises ``TypeError`` (wrong type) or ``ValueError``
(wrong value) naming the argument, the rule and the value, before any work starts.

``check_choice`` suggests the closest allowed value (``"unknown policy 'lin_ucb'; did you mean
'linucb'?"``), as Gymnasium's registry does with ``difflib.get_close_matches``.
"""

from __future__ import annotations

import difflib
import math
import numbers
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



DEVICES = ("cpu", "cuda", "auto")
"""Values of the ``device`` option of every torch component (``cuda:N`` names one GPU)."""


def check_device(device: Any, name: str = "device") -> str:
    """The torch device a component runs on, validated: ``"cpu"``, ``"cuda"`` / ``"cuda:N"``, or
    ``"auto"`` (``"cuda"`` when ``torch.cuda.is_available()``, else ``"cpu"``); returns the resolved
    name. Asking for CUDA where torch sees no GPU is a ``ValueError``, raised before any work starts.
    """
    if not isinstance(device, str):
        raise TypeError(f"{name} must be a str (one of {', '.join(map(repr, DEVICES))} or 'cuda:N'), "
                        f"got {type(device).__name__} {device!r}")
    base, _, index = device.partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        raise ValueError(f"{name} == {device!r}, must be one of {', '.join(map(repr, DEVICES))} or 'cuda:N'")
    if base == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if base == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise ValueError(f"{name} == {device!r}, but torch.cuda.is_available() is False (torch "
                         f"{torch.__version__}, no usable GPU); use 'cpu' or 'auto'")
    if index and int(index) >= torch.cuda.device_count():
        raise ValueError(f"{name} == {device!r}, but torch sees {torch.cuda.device_count()} GPU(s)")
    return device


def check_seed(seed: Any, name: str = "seed", *, many: bool = True, seed_sequence: bool = True):
    """Validate a seed: a non-negative integer (Python ``int`` or NumPy integer), returned as ``int``.

    With ``many``, a list, tuple, range or array of seeds is checked element by element and returned
    as a tuple of ints; with ``seed_sequence``, a ``numpy.random.SeedSequence`` is returned unchanged.
    Everything else — floats (even ``2.0``), strings, bools, ``None`` — is a ``TypeError``; a
    negative integer a ``ValueError``. Nothing is converted silently: ``[0.5, 1.5]`` is not ``[0, 1]``.
    """
    import numpy as np

    if seed_sequence and isinstance(seed, np.random.SeedSequence):
        return seed
    if many and isinstance(seed, (list, tuple, range, np.ndarray)):
        if len(seed) == 0:
            raise ValueError(f"{name} == {list(seed)!r}: a sequence of seeds needs at least one seed")
        return tuple(check_seed(s, f"{name}[{i}]", many=False, seed_sequence=seed_sequence)
                     for i, s in enumerate(seed))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        allowed = "a non-negative int (Python or NumPy integer)" + (" or a sequence of them" if many else "")
        raise TypeError(f"{name} must be {allowed}, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} == {seed}, must be >= 0")
    return int(seed)

__all__ = ["check_seed", "check_choice", "check_float", "check_int", "suggest"]
