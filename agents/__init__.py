"""Decision policies behind one batched interface (see ``agents.base.Policy``)."""

from agents.base import OraclePolicy, Policy, RandomPolicy

__all__ = ["Policy", "RandomPolicy", "OraclePolicy"]
