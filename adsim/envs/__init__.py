"""Gymnasium environments of adsim."""

from adsim.envs.creative_selection import CreativeSelectionEnv, CreativeSelectionVectorEnv
from adsim.envs.slate_selection import SlateSelectionEnv, SlateSelectionVectorEnv

__all__ = ["CreativeSelectionEnv", "CreativeSelectionVectorEnv", "SlateSelectionEnv", "SlateSelectionVectorEnv"]
