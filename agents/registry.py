"""Policies by name, so configs can name them: ``make_policy("ucb1", c=2.0)``.

A policy is named either by its registered name (a key of :data:`POLICIES`) or, for a policy of
your own, by an import path ``"package.module:ClassName"`` (as Gymnasium's ``entry_point``): the
string is resolved where the policy is built, so a worker process resolves it itself. The class
must subclass :class:`agents.base.Policy`. Registered entries are import-path strings too, so
nothing (SB3, torch) is imported before a policy that needs it is built.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Iterator, MutableMapping
from typing import Any

from agents.base import Policy


class PolicyRegistry(MutableMapping):
    """Name -> policy class, stored as import paths and imported on first access (``POLICIES["ppo"]``
    imports SB3 then, not before). Assigning a class or an import path registers a policy in this
    process only: configs that name a policy by import path work in every worker."""

    def __init__(self, entries: dict[str, str | type[Policy]]):
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> type[Policy]:
        entry = self._entries[name]
        return load_class(entry) if isinstance(entry, str) else entry

    def __setitem__(self, name: str, value: str | type[Policy]) -> None:
        self._entries[name] = value

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"PolicyRegistry({sorted(self._entries)})"

    def path(self, name: str) -> str:
        """The import path of a registered name (without importing it)."""
        entry = self._entries[name]
        return entry if isinstance(entry, str) else f"{entry.__module__}:{entry.__qualname__}"


POLICIES: PolicyRegistry = PolicyRegistry({
    "random": "agents.base:RandomPolicy",
    "oracle": "agents.base:OraclePolicy",
    "greedy": "agents.greedy:GreedyEstimate",
    "epsilon_greedy": "agents.greedy:EpsilonGreedy",
    "epsilon_greedy_decay": "agents.greedy:DecayingEpsilonGreedy",
    "ucb1": "agents.ucb:UCB1",
    "kl_ucb": "agents.ucb:KLUCB",
    "thompson": "agents.thompson:BetaThompson",
    "exp3": "agents.exp3:EXP3",
    "linucb": "agents.linear:LinUCB",
    "linucb_shared": "agents.linear:LinUCBShared",
    "lin_ts": "agents.linear:LinearTS",
    "lin_ts_arms": "agents.linear:LinTSArms",
    "hybrid": "agents.thompson:HybridThompson",
    "bilinear_ucb": "agents.bilinear:BilinearUCB",
    "random_slate": "agents.slate:RandomSlate",
    "plackett_luce": "agents.plackett_luce:PlackettLuceSlates",
    "oracle_slate": "agents.slate:OracleSlate",
    "top_ucb1": "agents.slate:TopUCB1",
    "top_kl_ucb": "agents.slate:TopKLUCB",
    "top_thompson": "agents.slate:TopThompson",
    "top_linucb": "agents.slate:TopLinUCB",
    "top_lin_ts": "agents.slate:TopLinTS",
    "top_bilinear_ucb": "agents.slate:TopBilinearUCB",
    "cascade_ucb1": "agents.slate:CascadeUCB1",
    "cascade_klucb": "agents.slate:CascadeKLUCB",
    "cascade_lints": "agents.slate:CascadeLinTS",
    "truthful": "agents.bidding:TruthfulBidder",
    "oracle_bidder": "agents.bidding:OracleBidder",
    "shaded": "agents.bidding:ShadedBidder",
    "pid_pacer": "agents.bidding:PIDPacer",
    "dual_pacer": "agents.bidding:DualPacer",
    "learned_shader": "agents.bidding:LearnedShader",
    "ppo_bidder": "agents.sb3_bidding:PPOBidder",
    "sac_bidder": "agents.sb3_bidding:SACBidder",
    "ppo": "agents.sb3:PPOPolicy",
    "a2c": "agents.sb3:A2CPolicy",
    "dqn": "agents.sb3:DQNPolicy",
})
"""Registered name -> policy class (kept as ``"module:Class"`` import paths until used)."""

BIDDING_POLICIES = ("truthful", "oracle_bidder", "shaded", "pid_pacer", "dual_pacer", "learned_shader", "ppo_bidder", "sac_bidder")
"""The registered bidding policies (``agents.bidding.BiddingPolicy``: a creative policy and a bid rule,
acting on auction envs through ``select_bids`` / ``update_bids``; their one-slot view is their
creative policy's)."""


def load_class(path: str) -> type:
    """The class at import path ``"package.module:ClassName"``; ``ValueError`` naming what failed."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"policy {path!r}: an import path must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"policy {path!r}: cannot import module {module_name!r} ({err}); is its folder on "
                         f"PYTHONPATH?") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"policy {path!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def resolve_policy(name: str) -> type[Policy]:
    """The policy class of a registered name or of an import path ``"package.module:Class"``."""
    if not isinstance(name, str):
        raise TypeError(f"policy name must be a str, got {type(name).__name__} {name!r}")
    if ":" in name:
        cls = load_class(name)
    elif name in POLICIES:
        cls = POLICIES[name]
    else:
        close = difflib.get_close_matches(name, POLICIES, n=1)
        hint = f" did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown policy {name!r};{hint} Allowed: {', '.join(sorted(POLICIES))}, "
                         f"or an import path 'package.module:ClassName'")
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise TypeError(f"policy {name!r} resolves to {cls!r}, which is not a subclass of agents.base.Policy")
    return cls


def make_policy(name: str, **hyperparameters: Any) -> Policy:
    """Instantiate a registered (or import-path) policy; unknown names or hyperparameters raise ``ValueError``."""
    cls = resolve_policy(name)
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in hyperparameters if k not in params]
    if unknown and not takes_any:
        allowed = [p for p in params if p not in ("self", "args", "kwargs")]
        raise ValueError(f"unknown hyperparameter {unknown[0]!r} for policy {name!r}; allowed: {allowed or 'none'}")
    return cls(**hyperparameters)
