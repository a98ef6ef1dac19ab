"""Policies named by configs: a registered policy, its hyperparameters and an optional ε-mixture.

A target (or logging) policy is a small TOML file::

    policy = "oracle"        # a name in agents.registry.POLICIES
    epsilon = 0.1            # optional: EpsilonMixture(policy, epsilon)
    seed = 0                 # optional: the policy's seed
    [hyperparameters]        # optional: keyword arguments of the policy
    # c = 2.0

or, on the command line, the short form ``name`` or ``name@epsilon`` (``oracle@0.3``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adsim.validation import check_float, check_int
from agents.base import Policy
from agents.mixture import EpsilonMixture
from agents.registry import POLICIES, make_policy

_KEYS = ("policy", "epsilon", "seed", "hyperparameters")


@dataclass(frozen=True)
class PolicySpec:
    """A registered policy with hyperparameters, optionally mixed with the uniform policy."""

    policy: str
    """Registered name (``agents.registry.POLICIES``)."""
    epsilon: float = 0.0
    """Weight of the uniform policy in an ε-mixture (0 = the policy itself)."""
    seed: int = 0
    """The policy's seed."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the policy's constructor."""

    def __post_init__(self):
        if not isinstance(self.policy, str):
            raise TypeError(f"policy must be a str, got {type(self.policy).__name__} {self.policy!r}")
        check_float("epsilon", self.epsilon, 0.0, 1.0)
        check_int("seed", self.seed, 0)
        if not isinstance(self.hyperparameters, dict):
            raise TypeError(f"hyperparameters must be a table, got {type(self.hyperparameters).__name__}")
        self.build()  # unknown names / hyperparameters fail here, at construction

    @property
    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.hyperparameters.items()))
        base = f"{self.policy}({extra})" if extra else self.policy
        return f"{base}@{self.epsilon:g}" if self.epsilon > 0 else base

    def build(self) -> Policy:
        """A fresh policy instance (call ``reset`` before use)."""
        policy = make_policy(self.policy, **self.hyperparameters)
        return EpsilonMixture(policy, self.epsilon) if self.epsilon > 0 else policy

    @classmethod
    def parse(cls, text: str) -> PolicySpec:
        """``"name"`` or ``"name@epsilon"``."""
        name, _, eps = text.partition("@")
        try:
            epsilon = float(eps) if eps else 0.0
        except ValueError:
            raise ValueError(f"policy spec {text!r}: epsilon {eps!r} is not a number; "
                             "use name or name@epsilon") from None
        return cls(name.strip(), epsilon)

    @classmethod
    def from_toml(cls, path: str | Path) -> PolicySpec:
        """Read a spec from a TOML file (see the module docstring)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no policy config at {str(path)!r}")
        with path.open("rb") as f:
            data = tomllib.load(f)
        unknown = [k for k in data if k not in _KEYS]
        if unknown:
            raise ValueError(f"{str(path)!r}: unknown key {unknown[0]!r}; allowed: {', '.join(_KEYS)}")
        if "policy" not in data:
            raise ValueError(f"{str(path)!r}: missing key 'policy' (one of {', '.join(sorted(POLICIES))})")
        return cls(**data)
