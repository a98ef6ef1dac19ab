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
from agents.base import Policy

SOURCES = ("ctr_estimate", "attraction")


class PlackettLuceSlates(Policy):
    """Plackett–Luce over a per-candidate score (module docstring); does not learn. Registered as
    ``plackett_luce`` (``agents.registry``), so a study config names it like any policy."""

    exact_slate_probabilities = True
    """Its slate probabilities are exact (closed form): usable as an OPE logger or target."""
    fixed = True
    """Does not learn: ``uniform_mix`` mixes it over ordered slates (``agents.mixture.mix``)."""

    def __init__(self, temperature: float = 1.0, source: str = "ctr_estimate", uniform_mix: float = 0.0,
                 name: str | None = None):
        check_float("temperature", temperature, 0.0, None, open_low=True)
        check_choice("source", source, SOURCES)
        check_float("uniform_mix", uniform_mix, 0.0, 1.0)
        self.temperature, self.source, self.uniform_mix = float(temperature), source, float(uniform_mix)
        self.name = name or f"pl_{source}_t{temperature:g}" + (f"_mix{uniform_mix:g}" if uniform_mix else "")
        self.reference = source == "attraction"  # reads the truth (info), as the oracle does

    @property
    def pi_logging(self) -> str | None:
        """``"uniform"`` when every ordered slate is equally likely (``uniform_mix == 1``): the logger form
        of the pseudo-inverse estimator (``adsim.ope.slate.pseudo_inverse``); otherwise ``None``."""
        return "uniform" if self.uniform_mix == 1.0 else None

    def reset(self, n_actions: int, seed: Any = None, group_seeds=None, slate_size: int = 1) -> None:
        """Show ``slate_size`` L of the ``n_actions`` K candidates; reseed the draws of :meth:`select_slate`
        (the signature of ``agents.slate.SlatePolicy.reset``)."""
        super().reset(n_actions, seed, group_seeds)
        check_int("slate_size", slate_size, 1, self.n_actions)
        self.slate_size = int(slate_size)
        self.n_slates = len(all_slates(self.n_actions, self.slate_size))

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

    def select_slate(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """(N, L) slates drawn from :meth:`slate_probabilities` with the policy's own generator."""
        p = self.slate_probabilities(obs, info)
        u = self.rng.random((p.shape[0], 1))
        index = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)
        return all_slates(self.n_actions, self.slate_size)[index]

    def select(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """(N,) candidates with L = 1, else the (N, L) slates of :meth:`select_slate`."""
        s = self.select_slate(obs, info)
        return s[:, 0] if self.slate_size == 1 else s

    def probabilities(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """(N, K) probability of each candidate at the first position (the one-slot view)."""
        p = self.slate_probabilities(obs, info)
        first = all_slates(self.n_actions, self.slate_size)[:, 0]
        return np.stack([p[:, first == k].sum(axis=1) for k in range(self.n_actions)], axis=1)

    def update(self, obs: dict, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Does not learn."""

    def update_slate(self, obs: dict, slates: np.ndarray, clicks: np.ndarray) -> None:
        """Does not learn."""


__all__ = ["PlackettLuceSlates", "SOURCES"]
