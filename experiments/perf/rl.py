"""AdSession throughput: raw vector-env impressions/s, single-env steps/s, and env steps/s while
PPO trains on the native vector env through the SB3 adapter.

Rates are wall-clock medians (``median``) plus, for the vector env, impressions per CPU-second of
this process (``per_cpu_second``), which stays meaningful when other jobs share the cores.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import adsim  # noqa: F401  (registers the envs)
from experiments.perf import median_rate

ENV_ID = "adsim/AdSession-v0"
SUITE = "rl"


def _vector(n: int, quick: bool) -> dict:
    env = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, env.single_action_space.n, size=(16, n))
    state = {"i": 0}

    def chunk() -> int:
        env.step(actions[state["i"] & 15])
        state["i"] += 1
        return n

    for _ in range(20):  # warm-up: sessions of every age
        chunk()
    out = median_rate(chunk, repeats=3 if quick else 5, min_time=0.1 if quick else 0.5)
    # CPU time of this process: robust to other processes sharing the cores
    c0, n_steps = time.process_time(), 50 if quick else 200
    for _ in range(n_steps):
        chunk()
    out["per_cpu_second"] = n_steps * n / (time.process_time() - c0)
    return out


def _single(quick: bool) -> dict:
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, env.action_space.n, size=4096)
    state = {"i": 0}

    def chunk() -> int:
        for _ in range(200):
            _, _, term, trunc, _ = env.step(int(actions[state["i"] & 4095]))
            state["i"] += 1
            if term or trunc:
                env.reset()
        return 200

    chunk()
    return median_rate(chunk, repeats=3 if quick else 5, min_time=0.1 if quick else 0.5)


def _ppo(quick: bool) -> dict:
    import torch

    from agents.registry import make_policy

    torch.set_num_threads(1)
    steps = 2048 if quick else 8192
    env = gym.make_vec(ENV_ID, num_envs=16, vectorization_mode="vector_entry_point", preset="fatigue", campaign=0)
    ppo = make_policy("ppo", train_steps=steps, n_steps=16, n_epochs=10, batch_size=128,
                      ignore_keys=("candidates", "campaign"))
    ppo.reset(env.single_action_space.n, seed=0)
    t0, c0 = time.perf_counter(), time.process_time()
    done = ppo.learn(env, scenario_seed=0)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"env_steps": done, "seconds": dt, "env_steps_per_s": done / dt, "env_steps_per_cpu_s": done / cpu,
            "num_envs": 16,
            "algo": "PPO n_steps=16 n_epochs=10 batch=128 MLP(64,64), torch 1 thread"}


def run(quick: bool = False) -> dict:
    return {
        "config": {"preset": "default", "K": 8, "horizon": 20},
        "vector_N1024_impressions_per_s": _vector(1024, quick),
        "vector_N4096_impressions_per_s": _vector(4096, quick),
        "single_steps_per_s": _single(quick),
        "ppo_training": _ppo(quick),
    }
