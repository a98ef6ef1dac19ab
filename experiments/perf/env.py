"""Environment throughput: single env through ``gymnasium.make`` and the native vector env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import adsim  # noqa: F401  (registers the envs)
from experiments.perf import median_rate

ENV_ID = "adsim/CreativeSelection-v0"
SUITE = "env"


def _single(mode: str, quick: bool) -> dict:
    env = gym.make(ENV_ID, mode=mode, n_candidates=8, horizon=1000)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 8, size=4096)
    state = {"i": 0}

    def chunk() -> int:
        for _ in range(500):
            _, _, _, truncated, _ = env.step(int(actions[state["i"] & 4095]))
            state["i"] += 1
            if truncated:
                env.reset()
        return 500

    chunk()  # warm-up (first step runs the passive env checker)
    return median_rate(chunk, repeats=3 if quick else 5, min_time=0.1 if quick else 0.5)


def _vector(mode: str, n: int, quick: bool) -> dict:
    env = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", mode=mode,
                       n_candidates=8, horizon=1000)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 8, size=(16, n))
    state = {"i": 0}

    def chunk() -> int:
        env.step(actions[state["i"] & 15])
        state["i"] += 1
        return n

    chunk()
    return median_rate(chunk, repeats=3 if quick else 5, min_time=0.1 if quick else 0.5)


def run(quick: bool = False) -> dict:
    out = {"config": {"K": 8, "d": 16, "horizon": 1000}}
    for mode in ("pool", "personalized"):
        out[f"single_{mode}_steps_per_s"] = _single(mode, quick)
        for n in (1024, 4096):
            out[f"vector_{mode}_N{n}_impressions_per_s"] = _vector(mode, n, quick)
    return out
