import gymnasium as gym
import numpy as np
import pytest

import adsim  # noqa: F401

ENV_ID = "adsim/CreativeSelection-v0"


def make_vec(num_envs: int, **overrides):
    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **overrides)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
