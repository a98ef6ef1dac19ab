"""Off-policy evaluation: logged bandit feedback, reward models and estimators.

* :mod:`adsim.ope.log` — :class:`BanditLog` (validated), Open Bandit Pipeline dict, Parquet I/O;
* :mod:`adsim.ope.estimators` — DM, IPS, SNIPS, DR, clipped DR, switch-DR with confidence intervals;
* :mod:`adsim.ope.slate` — slate estimators: standard, independent and reward-interaction IPS, cascade DR,
  pseudo-inverse;
* :mod:`adsim.ope.reward_model` — q̂(x, a) from scikit-learn or any callable.

Collecting a log from a policy and the validation study live in ``experiments.ope`` (they run
policies from ``agents``).
"""

from adsim.ope.estimators import ESTIMATORS, PSCORE_FLOOR, Estimate, dm, dr, estimate_all, importance_weights, ips, snips, switch_dr
from adsim.ope.log import BanditLog, load_log, obp_action_dist
from adsim.ope.reward_model import predict_rewards
from adsim.ope.slate import SLATE_ESTIMATORS, SlateLogRecord, SlatePscores, all_slates, cascade_dr, cumulative_pscore, \
    estimate_slate_all, iips, plackett_luce_probs, pseudo_inverse, rips, sips

__all__ = ["BanditLog", "load_log", "obp_action_dist", "Estimate", "ESTIMATORS", "dm", "ips", "snips", "dr",
           "switch_dr", "estimate_all", "importance_weights", "predict_rewards", "PSCORE_FLOOR",
           "SLATE_ESTIMATORS", "sips", "iips", "rips", "cascade_dr", "pseudo_inverse", "cumulative_pscore",
           "SlateLogRecord", "SlatePscores", "all_slates", "estimate_slate_all", "plackett_luce_probs"]
