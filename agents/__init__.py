"""Decision policies behind one batched interface (see ``agents.base.Policy``).

Build one by name with ``agents.registry.make_policy("ucb1", c=2.0)``; ``POLICIES`` lists them.
"""

from agents.base import OraclePolicy, Policy, RandomPolicy
from agents.exp3 import EXP3
from agents.greedy import DecayingEpsilonGreedy, EpsilonGreedy, GreedyEstimate
from agents.linear import LinearTS, LinUCB, LinUCBShared
from agents.registry import POLICIES, make_policy, resolve_policy
from agents.thompson import BetaThompson, HybridThompson
from agents.ucb import KLUCB, UCB1

__all__ = ["Policy", "RandomPolicy", "OraclePolicy", "GreedyEstimate", "EpsilonGreedy", "DecayingEpsilonGreedy",
           "UCB1", "KLUCB", "BetaThompson", "HybridThompson", "EXP3", "LinUCB", "LinUCBShared", "LinearTS",
           "POLICIES", "make_policy", "resolve_policy"]
