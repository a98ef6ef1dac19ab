"""Policies by name, so configs can name them: ``make_policy("ucb1", c=2.0)``."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from agents.base import OraclePolicy, Policy, RandomPolicy
from agents.exp3 import EXP3
from agents.greedy import DecayingEpsilonGreedy, EpsilonGreedy, GreedyEstimate
from agents.linear import LinearTS, LinTSArms, LinUCB, LinUCBShared
from agents.thompson import BetaThompson, HybridThompson
from agents.ucb import KLUCB, UCB1
from agents.sb3 import A2CPolicy, DQNPolicy, PPOPolicy

POLICIES: dict[str, type[Policy]] = {
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
    "lin_ts_arms": LinTSArms,
    "hybrid": HybridThompson,
    "ppo": PPOPolicy,
    "a2c": A2CPolicy,
    "dqn": DQNPolicy,
}


def make_policy(name: str, **hyperparameters: Any) -> Policy:
    """Instantiate a registered policy; unknown names or hyperparameters raise ``ValueError``."""
    if not isinstance(name, str):
        raise TypeError(f"policy name must be a str, got {type(name).__name__} {name!r}")
    if name not in POLICIES:
        close = difflib.get_close_matches(name, POLICIES, n=1)
        hint = f" did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown policy {name!r};{hint} Allowed: {', '.join(sorted(POLICIES))}")
    cls = POLICIES[name]
    params = inspect.signature(cls).parameters
    unknown = [k for k in hyperparameters if k not in params]
    if unknown:
        allowed = [p for p in params if p not in ("self", "args", "kwargs")]
        raise ValueError(f"unknown hyperparameter {unknown[0]!r} for policy {name!r}; allowed: {allowed or 'none'}")
    return cls(**hyperparameters)
