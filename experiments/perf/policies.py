"""Policy throughput: decisions per second, each decision including its policy update.

Two settings:

* every registered policy on batches of 1,024 requests of the real env
  (``adsim/CreativeSelection-v0``, pool and personalised mode, K = 8), observations recorded
  once so only the policy is timed: ``select`` then ``update`` per batch;
* LinUCB at the issue's reference size, d = 32 and K = 8 (a 31-dimensional user block plus the
  bias), on batches of 1,024 and one request at a time (``select`` + ``update`` per request, the
  way online bandit libraries run).

BLAS is limited to one thread while measuring (``threadpoolctl``): on a shared machine
multithreaded BLAS on these small matrices is many times slower, not faster. Each figure is
reported twice: per second of wall-clock time, and per second of this process's CPU time
(``time.process_time``), which does not count the time other processes hold the cores — on a
loaded machine the wall-clock figure is the smaller one.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import adsim  # noqa: F401  (registers the envs)
from agents.registry import BIDDING_POLICIES, POLICIES, make_policy
from experiments.threads import one_blas_thread

SUITE = "policies"
ENV_ID = "adsim/CreativeSelection-v0"
K = 8
BATCH = 1024


def rates(fn, repeats: int = 5, min_time: float = 0.2) -> dict:
    """Median decisions/s of ``fn`` (does some work, returns how many decisions) by wall and CPU time."""
    wall, cpu = [], []
    for _ in range(repeats):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < min_time:
            n += fn()
        wall.append(n / (time.perf_counter() - t0))
        cpu.append(n / max(time.process_time() - c0, 1e-9))
    return {"wall_median": float(np.median(wall)), "wall_min": float(min(wall)), "wall_max": float(max(wall)),
            "cpu_median": float(np.median(cpu)), "repeats": repeats}


def _recorded_batches(mode: str, n_batches: int) -> tuple[list[dict], list[dict], np.ndarray]:
    """Observations and infos of ``n_batches`` env steps of BATCH requests, and click outcomes."""
    env = gym.make_vec(ENV_ID, num_envs=BATCH, vectorization_mode="vector_entry_point", mode=mode,
                       n_candidates=K, horizon=10**6, campaign=0)
    obs, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    obs_list, info_list, clicks = [], [], []
    for _ in range(n_batches):
        obs_list.append(obs)
        info_list.append(info)
        clicks.append(rng.random((BATCH, K)) < info["click_probs"])
        obs, _, _, _, info = env.step(rng.integers(0, K, BATCH))
    env.close()
    return obs_list, info_list, np.stack(clicks).astype(np.float64)


def _batch_rate(name: str, batches, quick: bool) -> dict:
    obs_list, info_list, clicks = batches
    policy = make_policy(name)
    policy.reset(K, seed=0)
    rows = np.arange(BATCH)
    state = {"i": 0}

    def chunk() -> int:
        i = state["i"] % len(obs_list)
        state["i"] += 1
        a = policy.select(obs_list[i], info_list[i])
        policy.update(obs_list[i], a, clicks[i][rows, a])
        return BATCH

    chunk()
    return rates(chunk, repeats=3 if quick else 5, min_time=0.1 if quick else 0.5)


def _synthetic(n: int, d: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` requests whose LinUCB context (``features=("user",)`` plus bias) has dimension ``d``."""
    return {
        "user": rng.random((n, d - 1), dtype=np.float32),
        "context": np.zeros((n, 22), dtype=np.float32),
        "campaign": np.zeros((n, 17), dtype=np.float32),
        "candidates": np.zeros((n, K * 9), dtype=np.int64),
        "ctr_estimate": np.full((n, K), 0.03, dtype=np.float32),
    }


def _linucb_rate(d: int, batch: int, quick: bool) -> dict:
    rng = np.random.default_rng(0)
    n_obs = 64
    obs_list = [_synthetic(batch, d, rng) for _ in range(n_obs)]
    true_theta = rng.normal(0, 0.3, (K, d - 1))
    policy = make_policy("linucb", features=("user",))
    policy.reset(K, seed=0)
    rewards = [(o["user"] @ true_theta.T > 0.5).astype(np.float64) for o in obs_list]  # (batch, K)
    rows = np.arange(batch)
    state = {"i": 0}

    def chunk() -> int:
        done = 0
        while done < 2048:
            i = state["i"] % n_obs
            state["i"] += 1
            a = policy.select(obs_list[i])
            policy.update(obs_list[i], a, rewards[i][rows, a])
            done += batch
        return done

    chunk()
    return rates(chunk, repeats=3 if quick else 5, min_time=0.1 if quick else 0.5)


def run(quick: bool = False) -> dict:
    out: dict = {"config": {"K": K, "batch": BATCH, "blas_threads": 1}}
    with one_blas_thread():
        for batch, target in ((BATCH, 100_000), (1, 20_000)):
            r = _linucb_rate(32, batch, quick)
            r.update(target=target, wall_meets_target=r["wall_median"] >= target,
                     cpu_meets_target=r["cpu_median"] >= target)
            out[f"linucb_d32_K8_batch{batch}_decisions_per_s"] = r
        for mode in ("pool", "personalized"):
            t0 = time.perf_counter()
            batches = _recorded_batches(mode, 4 if quick else 16)
            out[f"{mode}_recording_s"] = time.perf_counter() - t0
            for name in POLICIES:
                if name in BIDDING_POLICIES or hasattr(POLICIES[name], "learn"):  # RL agents train first: see
                    continue  # the "rl" suite; bidders act on auctions (their one-slot view is their creative policy)
                out[f"{mode}_{name}_batch{BATCH}_decisions_per_s"] = _batch_rate(name, batches, quick)
    return out
