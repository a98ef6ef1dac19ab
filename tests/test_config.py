"""Every invalid input raises a clear error at construction, naming the parameter and value."""

import math

import gymnasium as gym
import numpy as np
import pytest

from adsim import EnvConfig, WorldConfig, make_config
from tests.conftest import ENV_ID, make_vec

BAD_VALUES = [
    ({"n_candidates": 0}, ValueError, r"n_candidates == 0, must be in \[2, 256\]"),
    ({"n_candidates": -3}, ValueError, r"n_candidates == -3"),
    ({"n_candidates": 2.5}, TypeError, r"n_candidates must be an int, got float 2.5"),
    ({"n_candidates": True}, TypeError, r"n_candidates must be an int, got bool"),
    ({"target_ctr": 0.5}, ValueError, r"target_ctr == 0.5, must be in \[0.001, 0.3\]"),
    ({"target_ctr": 0.0001}, ValueError, r"target_ctr == 0.0001"),
    ({"target_ctr": math.nan}, ValueError, r"target_ctr == nan, must be a finite number"),
    ({"target_ctr": "3%"}, TypeError, r"target_ctr must be a number, got str '3%'"),
    ({"mode": "personalised"}, ValueError, r"unknown mode 'personalised'; did you mean 'personalized'\?"),
    ({"mode": 1}, TypeError, r"mode must be a str"),
    ({"reward": "clicks"}, ValueError, r"unknown reward 'clicks'; did you mean 'click'\?"),
    ({"horizon": 0}, ValueError, r"horizon == 0"),
    ({"tagger": "gmm"}, ValueError, r"unknown tagger 'gmm'.*Allowed: 'kmeans', 'lda'"),
    ({"n_topics": 1}, ValueError, r"n_topics == 1"),
    ({"campaign": 99}, ValueError, r"campaign == 99, must be in \[0, 19\]"),
    ({"language": "fr"}, ValueError, r"unknown language 'fr'"),
    ({"fatigue_strength": -1.0}, ValueError, r"fatigue_strength == -1.0"),
    ({"fatigue_halflife": 0.0}, ValueError, r"fatigue_halflife == 0.0, must be in \(0.0"),
    ({"creative_scale": math.inf}, ValueError, r"creative_scale == inf, must be a finite number"),
    ({"n_candidate": 8}, ValueError, r"unknown config key 'n_candidate'; did you mean 'n_candidates'\?"),
]


@pytest.mark.parametrize("overrides,error,match", BAD_VALUES)
def test_bad_config_values_raise_at_construction(overrides, error, match):
    with pytest.raises(error, match=match):
        make_config(**overrides)
    with pytest.raises(error, match=match):
        gym.make(ENV_ID, **overrides)


def test_unknown_preset_suggests_a_fix():
    with pytest.raises(ValueError, match=r"unknown preset 'eazy'; did you mean 'easy'\?"):
        make_config("eazy")


def test_dataclasses_validate_directly():
    with pytest.raises(ValueError, match="n_users == 3"):
        WorldConfig(n_users=3)
    with pytest.raises(TypeError, match="world must be a WorldConfig"):
        EnvConfig(world={"seed": 1})
    with pytest.raises(TypeError, match="config must be an EnvConfig"):
        gym.make(ENV_ID, config={"mode": "pool"})


@pytest.mark.parametrize("action,error,match", [
    (8, ValueError, r"action == 8, must be in \[0, 7\]"),
    (-1, ValueError, r"action == -1"),
    (1.5, TypeError, r"action must be integer"),
    ("a", TypeError, r"action must be integer"),
    (np.array([1, 2]), ValueError, r"action shape \(2,\), expected \(\)"),
])
def test_bad_actions_raise(action, error, match):
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    with pytest.raises(error, match=match):
        env.unwrapped.step(action)


def test_bad_vector_actions_raise():
    env = make_vec(4)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action == 9, must be in \[0, 7\]"):
        env.step(np.array([0, 1, 9, 2]))
    with pytest.raises(ValueError, match=r"action shape \(3,\), expected \(4,\)"):
        env.step(np.array([0, 1, 2]))


def test_bad_num_envs_and_step_before_reset():
    with pytest.raises(ValueError, match="num_envs == 0"):
        make_vec(0)
    with pytest.raises(RuntimeError, match="reset"):
        gym.make(ENV_ID).unwrapped.step(0)


def test_stepping_past_the_horizon_raises():
    env = gym.make(ENV_ID, horizon=2).unwrapped
    env.reset(seed=0)
    env.step(0)
    *_, truncated, _ = env.step(0)
    assert truncated
    with pytest.raises(RuntimeError, match="truncated"):
        env.step(0)
