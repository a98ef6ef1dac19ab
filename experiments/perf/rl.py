"""AdSession throughput: raw vector-env impressions/s, single-env steps/s, and env steps/s while
PPO, A2C and DQN train on the native vector env through the SB3 adapter.

Rates are wall-clock (``median`` / ``env_steps_per_s``) plus per CPU-second of this process
(``per_cpu_second`` / ``cpu_median`` / ``env_steps_per_cpu_s``), which stays meaningful when other
jobs share the cores (torch runs one thread, so a quiet machine gives wall ≈ CPU).

The agents train at :data:`SIZES`: N = 1024 sub-envs and updates large enough that the env, not
the per-update Python overhead, sets the pace (the "massively parallel" regime of Rudin et al.
2021 for PPO: 4 minibatches × 4 epochs of a 16-step rollout). ``tests/test_rl.py`` checks that each
agent still learns at these sizes. ``ppo_rl_study_sizes`` is PPO at the sizes of the rl-study config
(16 envs, 10 epochs of minibatch 128), measured in the same process for the ratio.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import adsim  # noqa: F401  (registers the envs)
from experiments.perf import median_rate

ENV_ID = "adsim/AdSession-v0"
SUITE = "rl"
TARGET = 20_000
"""env steps/s every agent should train at (issue 14)."""
N_ENVS = 1024
SIZES: dict[str, dict] = {
    "ppo": {"n_steps": 16, "batch_size": 4096, "n_epochs": 4, "learning_rate": 1e-3},
    "a2c": {"n_steps": 8, "learning_rate": 1e-3},
    "dqn": {"batch_size": 1024, "train_freq": 1, "gradient_steps": 1, "buffer_size": 200_000,
            "learning_starts": 4096, "target_update_interval": 16_384, "exploration_fraction": 0.3},
}
"""Hyperparameters of the perf runs (with ``N_ENVS`` sub-envs, MLP (64, 64), one torch thread).
PPO: rollouts of 16 × 1024 = 16,384 steps, 4 epochs of minibatch 4,096 (16 gradient steps per
rollout). A2C: one gradient step per 8 × 1024 = 8,192 steps. DQN: one gradient step of batch
1,024 per vector step (1,024 new transitions: replay ratio 1), target net every 16 vector steps."""
OBS = {"ignore_keys": ("candidates", "campaign")}  # the campaign is fixed: its keys never change


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


def _warm_torch() -> float:
    """Seconds of torch's one-off set-up in this process (the first optimizer imports
    ``torch._dynamo``, ~3 s here), kept out of the training rates."""
    import torch

    t0 = time.perf_counter()
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.zeros(1, 2)).sum().backward()
    opt.step()
    return time.perf_counter() - t0


def train_rate(name: str, n_envs: int, steps: int, **sizes) -> dict:
    """Env steps/s (wall and per CPU-second) of ``learn`` for ``steps`` steps on AdSession's fatigue
    preset with ``n_envs`` native sub-envs; the policy's default ``torch_threads`` (1)."""
    from agents.registry import make_policy

    env = gym.make_vec(ENV_ID, num_envs=n_envs, vectorization_mode="vector_entry_point", preset="fatigue",
                       campaign=0)
    policy = make_policy(name, train_steps=steps, **OBS, **sizes)
    policy.reset(env.single_action_space.n, seed=0)
    t0, c0 = time.perf_counter(), time.process_time()
    done = policy.learn(env, scenario_seed=0)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"env_steps": done, "seconds": round(dt, 3), "env_steps_per_s": done / dt,
            "env_steps_per_cpu_s": done / cpu, "num_envs": n_envs, "torch_threads": policy.torch_threads,
            "device": policy.torch_device, "net_arch": list(policy.net_arch), "sizes": sizes}


def run(quick: bool = False) -> dict:
    out = {
        "config": {"preset": "default", "K": 8, "horizon": 20},
        "vector_N1024_impressions_per_s": _vector(1024, quick),
        "vector_N4096_impressions_per_s": _vector(4096, quick),
        "single_steps_per_s": _single(quick),
        "torch_setup_seconds": _warm_torch(),
        "training": {"env": f"{ENV_ID} preset=fatigue campaign=0", "target_env_steps_per_s": TARGET},
    }
    steps = 2 * 16 * N_ENVS if quick else 8 * 16 * N_ENVS  # whole PPO rollouts: 2 or 8 updates
    for name, sizes in SIZES.items():
        out["training"][name] = train_rate(name, N_ENVS, steps, **sizes)
    out["training"]["ppo_rl_study_sizes"] = train_rate(
        "ppo", 16, 2048 if quick else 8192, n_steps=16, n_epochs=10, batch_size=128, learning_rate=2e-3)
    return out
