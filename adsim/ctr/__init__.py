"""Learned click-through-rate models: logged data, features, LR / FM / DeepFM / DCN-v2, evaluation.

Typical use::

    from adsim import make_config
    from adsim import ctr

    config = make_config("personalized")
    imp = ctr.log_impressions(config, 200_000, seed=1)            # uniform-random logging
    model, history = ctr.train_on_impressions(imp, "deepfm")
    model.save("runs/deepfm")
    model = ctr.load("runs/deepfm")
    estimator = ctr.LearnedCTR(model, refresh_every=50_000)       # plugs into SelectionCore / envs
"""

from adsim.ctr.data import Impressions, load_impressions, log_impressions, save_impressions
from adsim.ctr.features import Encoded, FeatureEncoder, FeatureSpec
from adsim.ctr.learned import LearnedCTR
from adsim.ctr.models import MODELS, CTRModel, ModelConfig
from adsim.ctr.predictor import CTRPredictor, load
from adsim.ctr.train import TrainConfig, fit, spec_for, train_on_impressions

__all__ = ["Impressions", "log_impressions", "save_impressions", "load_impressions", "Encoded", "FeatureEncoder",
           "FeatureSpec", "MODELS", "CTRModel", "ModelConfig", "CTRPredictor", "load", "TrainConfig", "fit",
           "spec_for", "train_on_impressions", "LearnedCTR"]
