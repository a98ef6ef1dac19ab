"""adsim: a simulator for real-time personalised ad-creative generation and selection.

Importing ``adsim`` registers the Gymnasium environments:

* ``adsim/CreativeSelection-v0`` (single env and native vector env)
* ``adsim/AdSession-v0`` (single env and native vector env)
* ``adsim/SlateSelection-v0`` (single env and native vector env)
* ``adsim/AdAuction-v0`` (single env and native vector env)
"""

from gymnasium.envs.registration import register, registry

from adsim.config import EnvConfig, WorldConfig, make_config, PRESETS
from adsim.selection import SelectionCore
from adsim.session import SESSION_PRESETS, SessionConfig, SessionCore, make_session_config

from adsim.slate import SlateCore

__version__ = "0.1.0"

if "adsim/CreativeSelection-v0" not in registry:
    register(
        id="adsim/CreativeSelection-v0",
        entry_point="adsim.envs.creative_selection:CreativeSelectionEnv",
        vector_entry_point="adsim.envs.creative_selection:CreativeSelectionVectorEnv",
    )

if "adsim/AdSession-v0" not in registry:
    register(
        id="adsim/AdSession-v0",
        entry_point="adsim.envs.ad_session:AdSessionEnv",
        vector_entry_point="adsim.envs.ad_session:AdSessionVectorEnv",
    )

if "adsim/SlateSelection-v0" not in registry:
    register(
        id="adsim/SlateSelection-v0",
        entry_point="adsim.envs.slate_selection:SlateSelectionEnv",
        vector_entry_point="adsim.envs.slate_selection:SlateSelectionVectorEnv",
    )

if "adsim/AdAuction-v0" not in registry:
    register(
        id="adsim/AdAuction-v0",
        entry_point="adsim.envs.ad_auction:AdAuctionEnv",
        vector_entry_point="adsim.envs.ad_auction:AdAuctionVectorEnv",
    )

__all__ = ["EnvConfig", "WorldConfig", "make_config", "PRESETS", "SelectionCore", "SessionConfig",
           "SessionCore", "SlateCore", "make_session_config", "SESSION_PRESETS", "__version__"]
