"""Environment throughput: single env through ``gymnasium.make`` and the native vector env.

Each figure is also given as a fraction of a *floor*: a minimal NumPy kernel (:func:`_floor_chunk`,
after ``shared/bench/floor_env.py``) doing the least work any CreativeSelection step must do — pick
users, re-weight their interests by a context, score K candidates, squash, draw the click of the
chosen one. The env and the floor at the same batch size (the single env: the floor at 1 request)
are timed in alternation, env, floor, env, floor …, and ``floor_ratio`` is the median of the
per-pair ratios, by wall-clock and by CPU time: on a shared machine the load changes from second to
second, and a ratio of two rates measured back to back is what stays comparable.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
from threadpoolctl import threadpool_limits

import adsim  # noqa: F401  (registers the envs)
from experiments.perf import median_rate

ENV_ID = "adsim/CreativeSelection-v0"
SUITE = "env"


def single_chunk(env, actions: Sequence, per: int = 500) -> Callable[[], int]:
    """A chunk of ``per`` steps of the single env ``env`` (``gym.make``, with its wrappers) cycling
    through ``actions`` (a power-of-two count), resetting at the horizon; warmed up once (the first
    step runs the passive env checker). Shared by the env, slate and auction suites."""
    env.reset(seed=0)
    mask, state = len(actions) - 1, {"i": 0}

    def chunk() -> int:
        for _ in range(per):
            _, _, _, truncated, _ = env.step(actions[state["i"] & mask])
            state["i"] += 1
            if truncated:
                env.reset()
        return per

    chunk()
    return chunk


def vector_chunk(env, actions: Sequence) -> Callable[[], int]:
    """One step of the native vector env ``env`` (its ``num_envs`` requests) cycling through the batched
    ``actions`` (a power-of-two count); warmed up once. Shared by the env, slate and auction suites."""
    env.reset(seed=0)
    mask, state = len(actions) - 1, {"i": 0}

    def chunk() -> int:
        env.step(actions[state["i"] & mask])
        state["i"] += 1
        return env.num_envs

    chunk()
    return chunk


def _single(mode: str) -> Callable[[], int]:
    """A chunk of 500 single-env steps (``gym.make``, with its wrappers), resetting at the horizon."""
    env = gym.make(ENV_ID, mode=mode, n_candidates=8, horizon=1000)
    return single_chunk(env, [int(a) for a in np.random.default_rng(0).integers(0, 8, size=4096)])


def _vector(mode: str, n: int) -> Callable[[], int]:
    """One step of the native vector env of ``n`` sub-envs (n impressions)."""
    env = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", mode=mode,
                       n_candidates=8, horizon=1000)
    return vector_chunk(env, np.random.default_rng(0).integers(0, 8, size=(16, n)))


def _floor_chunk(B: int, K: int = 8, d: int = 16, n_users: int = 100_000) -> Callable[[], int]:
    """One step of the minimal kernel on a batch of B requests (B impressions)."""
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
    return step


def _summary(rounds: list[dict]) -> dict:
    wall = sorted(r["median"] for r in rounds)
    cpu = sorted(r["cpu_median"] for r in rounds)
    return {"median": statistics.median(wall), "min": wall[0], "max": wall[-1], "cpu_median": statistics.median(cpu),
            "repeats": len(rounds)}


def _paired(env_chunk: Callable[[], int], floor_chunk: Callable[[], int], quick: bool) -> tuple[dict, dict, dict]:
    """Rates of the env and of the floor timed in alternation, and the median per-pair ratio env ÷ floor.

    The floor runs with BLAS on one thread: on the shared 2-core machine a multithreaded
    (B, 16) × (16, 8) product is erratic, up to 9× slower.
    """
    repeats, min_time = (3, 0.1) if quick else (7, 0.3)
    env_rounds, floor_rounds = [], []
    for _ in range(repeats):
        env_rounds.append(median_rate(env_chunk, repeats=1, min_time=min_time))
        with threadpool_limits(1):
            floor_rounds.append(median_rate(floor_chunk, repeats=1, min_time=min_time))
    ratio = {"wall": round(statistics.median(e["median"] / f["median"] for e, f in zip(env_rounds, floor_rounds)), 3),
             "cpu": round(statistics.median(e["cpu_median"] / f["cpu_median"]
                                            for e, f in zip(env_rounds, floor_rounds)), 3)}
    return _summary(env_rounds), _summary(floor_rounds), ratio


def run(quick: bool = False) -> dict:
    out = {"config": {"K": 8, "d": 16, "horizon": 1000}}
    with threadpool_limits(1):
        floors = {n: _floor_chunk(n) for n in (1, 1024, 4096)}
    for mode in ("pool", "personalized"):
        ratios = {}
        env, floor, ratios["single_N1"] = _paired(_single(mode), floors[1], quick)
        out[f"single_{mode}_steps_per_s"] = env
        out[f"floor_N1_impressions_per_s_{mode}_run"] = floor
        for n in (1024, 4096):
            env, floor, ratios[f"vector_N{n}"] = _paired(_vector(mode, n), floors[n], quick)
            out[f"vector_{mode}_N{n}_impressions_per_s"] = env
            out[f"floor_N{n}_impressions_per_s_{mode}_run"] = floor
        out[f"floor_ratio_{mode}"] = ratios
    return out
