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

ENVS = {  # id -> module of adsim.envs holding its single env and native vector env classes
    "adsim/CreativeSelection-v0": ("creative_selection", "CreativeSelection"),
    "adsim/AdSession-v0": ("ad_session", "AdSession"),
    "adsim/SlateSelection-v0": ("slate_selection", "SlateSelection"),
    "adsim/AdAuction-v0": ("ad_auction", "AdAuction"),
}
for _id, (_module, _name) in ENVS.items():
    if _id not in registry:
        register(id=_id, entry_point=f"adsim.envs.{_module}:{_name}Env",
                 vector_entry_point=f"adsim.envs.{_module}:{_name}VectorEnv")
del _id, _module, _name

__all__ = ["EnvConfig", "WorldConfig", "make_config", "PRESETS", "SelectionCore", "SessionConfig",
           "SessionCore", "SlateCore", "make_session_config", "SESSION_PRESETS", "__version__"]
