"""Gymnasium environments of adsim."""

from adsim.envs.creative_selection import CreativeSelectionEnv, CreativeSelectionVectorEnv

__all__ = ["CreativeSelectionEnv", "CreativeSelectionVectorEnv"]
