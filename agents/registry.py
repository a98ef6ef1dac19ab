"""Policies by name, so configs can name them: ``make_policy("ucb1", c=2.0)``.

Entries are classes or ``"package.module:ClassName"`` import paths; a path is imported the first
time its entry is read. The Stable-Baselines3 agents are registered by path, so ``import agents``
does not load torch or SB3 — only building (or looking up) ``ppo``, ``a2c`` or ``dqn`` does.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Iterator, MutableMapping
from typing import Any

from agents.base import OraclePolicy, Policy, RandomPolicy
from agents.exp3 import EXP3
from agents.greedy import DecayingEpsilonGreedy, EpsilonGreedy, GreedyEstimate
from agents.linear import LinearTS, LinUCB, LinUCBShared
from agents.thompson import BetaThompson, HybridThompson
from agents.ucb import KLUCB, UCB1


def load_class(path: str) -> type:
    """The class named by ``"package.module:ClassName"``."""
    module, sep, name = path.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"import path {path!r} must look like 'package.module:ClassName'")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise TypeError(f"{path!r} names a {type(obj).__name__}, not a class")
    return obj


class PolicyRegistry(MutableMapping):
    """``name -> Policy subclass``; values given as import paths are resolved on first read."""

    def __init__(self, entries: dict[str, type[Policy] | str]):
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> type[Policy]:
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = self._entries[name] = load_class(entry)
        return entry

    def __setitem__(self, name: str, entry: type[Policy] | str) -> None:
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"PolicyRegistry({sorted(self._entries)})"


POLICIES: PolicyRegistry = PolicyRegistry({
    "random": RandomPolicy,
    "oracle": OraclePolicy,
    "greedy": GreedyEstimate,
    "epsilon_greedy": EpsilonGreedy,
    "epsilon_greedy_decay": DecayingEpsilonGreedy,
    "ucb1": UCB1,
    "kl_ucb": KLUCB,
    "thompson": BetaThompson,
    "exp3": EXP3,
    "linucb": LinUCB,
    "linucb_shared": LinUCBShared,
    "lin_ts": LinearTS,
    "hybrid": HybridThompson,
    "ppo": "agents.sb3:PPOPolicy",
    "a2c": "agents.sb3:A2CPolicy",
    "dqn": "agents.sb3:DQNPolicy",
})


def make_policy(name: str, **hyperparameters: Any) -> Policy:
    """Instantiate a registered policy; unknown names or hyperparameters raise ``ValueError``."""
    if not isinstance(name, str):
        raise TypeError(f"policy name must be a str, got {type(name).__name__} {name!r}")
    if name not in POLICIES:
        close = difflib.get_close_matches(name, list(POLICIES), n=1)
        hint = f" did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown policy {name!r};{hint} Allowed: {', '.join(sorted(POLICIES))}")
    cls = POLICIES[name]
    params = inspect.signature(cls).parameters
    unknown = [k for k in hyperparameters if k not in params]
    if unknown:
        allowed = [p for p in params if p not in ("self", "args", "kwargs")]
        raise ValueError(f"unknown hyperparameter {unknown[0]!r} for policy {name!r}; allowed: {allowed or 'none'}")
    return cls(**hyperparameters)
