"""A Plackett–Luce slate policy with exact probabilities of every ordered slate, for slate logs.

Position by position, a candidate not yet shown is drawn with probability ∝ ``score^(1/temperature)``,
the score being the observation's CTR estimate (``source="ctr_estimate"``) or — a reference target
that reads the truth, as the oracle does — the candidates' true attractions (``"attraction"``, from
``info``). ``temperature → ∞`` is the uniform slate policy; ``uniform_mix`` mixes it in. Its
``slate_probabilities`` (N, S) cover every ordered slate (:func:`adsim.ope.slate.all_slates`), which
:func:`adsim.collect.collect_slate_log` draws from and the slate estimators read every propensity
from (:class:`adsim.ope.slate.SlatePscores`); small K only (S = K!/(K − L)!).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adsim.ope.slate import all_slates, plackett_luce_probs
from adsim.validation import check_choice, check_float, check_int

SOURCES = ("ctr_estimate", "attraction")


class PlackettLuceSlates:
    """Plackett–Luce over a per-candidate score (module docstring); does not learn."""

    def __init__(self, temperature: float = 1.0, source: str = "ctr_estimate", uniform_mix: float = 0.0,
                 name: str | None = None):
        check_float("temperature", temperature, 0.0, None, open_low=True)
        check_choice("source", source, SOURCES)
        check_float("uniform_mix", uniform_mix, 0.0, 1.0)
        self.temperature, self.source, self.uniform_mix = float(temperature), source, float(uniform_mix)
        self.name = name or f"pl_{source}_t{temperature:g}" + (f"_mix{uniform_mix:g}" if uniform_mix else "")

    def reset(self, n_actions: int, slate_size: int, seed: Any = None) -> None:
        check_int("n_actions", n_actions, 1)
        check_int("slate_size", slate_size, 1, n_actions)
        self.n_actions, self.slate_size = n_actions, slate_size
        self.n_slates = len(all_slates(n_actions, slate_size))

    def slate_probabilities(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """(N, S) probability of every ordered slate."""
        if self.source == "attraction":
            if info is None or "attraction" not in info:
                raise ValueError(f"policy {self.name!r} reads info['attraction'] (the truth); none was given")
            score = np.asarray(info["attraction"], dtype=np.float64)
        else:
            score = np.asarray(obs["ctr_estimate"], dtype=np.float64)
        logits = np.log(np.maximum(score, 1e-12)) / self.temperature
        p = plackett_luce_probs(logits, self.slate_size)
        return (1 - self.uniform_mix) * p + self.uniform_mix / self.n_slates if self.uniform_mix else p

    def update_slate(self, obs: dict, slates: np.ndarray, clicks: np.ndarray) -> None:
        """Does not learn."""


__all__ = ["PlackettLuceSlates", "SOURCES"]
