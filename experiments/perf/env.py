"""Environment throughput: single env through ``gymnasium.make`` and the native vector env.

Each figure is also given as a fraction of a *floor*: a minimal NumPy kernel timed in the same run
(:func:`_floor`, after ``shared/bench/floor_env.py``) doing the least work any CreativeSelection step
must do — pick users, re-weight their interests by a context, score K candidates, squash, draw the
click of the chosen one. ``floor_ratio`` divides the env's rate by the floor's at the same batch size
(the single env by the floor at 1 request), by wall-clock and by CPU time.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from threadpoolctl import threadpool_limits

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


def _floor(B: int, quick: bool, K: int = 8, d: int = 16, n_users: int = 100_000) -> dict:
    """Impressions/s of the minimal kernel on batches of B requests (BLAS on one thread: on the shared
    2-core machine a multithreaded (B, 16) × (16, 8) product is erratic, up to 9× slower)."""
    with threadpool_limits(1):
        return _floor_kernel(B, quick, K, d, n_users)


def _floor_kernel(B: int, quick: bool, K: int, d: int, n_users: int) -> dict:
    rng = np.random.default_rng(0)
    theta = rng.dirichlet(np.ones(d), size=n_users).astype(np.float32)
    ctx_w = np.exp(rng.normal(0, 0.3, size=(32, d))).astype(np.float32)
    phi = rng.normal(0, 1, size=(K, d)).astype(np.float32)
    bias = rng.normal(-3.5, 0.5, size=n_users).astype(np.float32)
    rows = np.arange(B)

    def step() -> int:
        u = rng.integers(0, n_users, size=B)
        c = rng.integers(0, 32, size=B)
        th = theta[u] * ctx_w[c]
        th /= th.sum(1, keepdims=True)
        z = th @ phi.T
        z += bias[u, None]
        p = 1.0 / (1.0 + np.exp(-z))
        a = rng.integers(0, K, size=B)
        _ = rng.random(B, dtype=np.float32) < p[rows, a]
        return B

    step()
    return median_rate(step, repeats=3 if quick else 5, min_time=0.1 if quick else 0.5)


def _ratio(env: dict, floor: dict) -> dict:
    out = {"wall": round(env["median"] / floor["median"], 3)}
    if "cpu_median" in env:
        out["cpu"] = round(env["cpu_median"] / floor["cpu_median"], 3)
    return out


def run(quick: bool = False) -> dict:
    out = {"config": {"K": 8, "d": 16, "horizon": 1000}}
    floors = {}
    for mode in ("pool", "personalized"):
        floors[1] = _floor(1, quick)
        out[f"single_{mode}_steps_per_s"] = _single(mode, quick)
        for n in (1024, 4096):
            floors[n] = _floor(n, quick)
            out[f"vector_{mode}_N{n}_impressions_per_s"] = _vector(mode, n, quick)
        out[f"floor_ratio_{mode}"] = {"single_N1": _ratio(out[f"single_{mode}_steps_per_s"], floors[1]),
                                      **{f"vector_N{n}": _ratio(out[f"vector_{mode}_N{n}_impressions_per_s"], floors[n])
                                         for n in (1024, 4096)}}
    for n, f in floors.items():
        out[f"floor_N{n}_impressions_per_s"] = f
    return out
