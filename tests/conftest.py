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


def assert_stacked_is_each_seed_alone(env_id: str, cfg, draw_actions, split_actions, steps: int = 14,
                                      seeds=(3, 7), B: int = 5) -> None:
    """The stacked-seeds contract of a vector env: a stacked env of ``len(seeds)`` worlds of B sub-envs
    gives, step after step (autoresets included), every group's observation, info and reward of that
    world's env alone. ``draw_actions(rng, n)`` makes a batch of n actions, ``split_actions(a, g, B)``
    takes group g's part."""
    stacked = gym.make_vec(env_id, num_envs=B * len(seeds), vectorization_mode="vector_entry_point", config=cfg,
                           world_seeds=list(seeds))
    alone = [gym.make_vec(env_id, num_envs=B, vectorization_mode="vector_entry_point", config=cfg.replace(seed=s))
             for s in seeds]
    stream_seeds = [11 + i for i in range(len(seeds))]
    obs, info = stacked.reset(seed=stream_seeds)
    parts = [(*e.reset(seed=s), None) for e, s in zip(alone, stream_seeds)]
    rng = np.random.default_rng(0)
    for t in range(steps):
        for k in obs:
            assert np.array_equal(obs[k], np.concatenate([p[0][k] for p in parts])), (t, k)
        for k in info:
            if not k.startswith("_") and k not in ("final_obs", "final_info"):
                assert np.array_equal(info[k], np.concatenate([p[1][k] for p in parts])), (t, k)
        actions = draw_actions(rng, B * len(seeds))
        obs, reward, _, _, info = stacked.step(actions)
        parts = [(o, i, r) for o, r, _, _, i in (e.step(split_actions(actions, g, B)) for g, e in enumerate(alone))]
        assert np.array_equal(reward, np.concatenate([p[2] for p in parts])), t
