"""Gymnasium environments of adsim."""

from adsim.envs.ad_auction import AdAuctionEnv, AdAuctionVectorEnv
from adsim.envs.creative_selection import CreativeSelectionEnv, CreativeSelectionVectorEnv
from adsim.envs.slate_selection import SlateSelectionEnv, SlateSelectionVectorEnv

__all__ = ["AdAuctionEnv", "AdAuctionVectorEnv", "CreativeSelectionEnv", "CreativeSelectionVectorEnv", "SlateSelectionEnv", "SlateSelectionVectorEnv"]
