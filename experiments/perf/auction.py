"""Auction env throughput: ``adsim/AdAuction-v0`` auctions per second (issue 17: the native vector
env at N = 4,096 with M = 10 advertisers and L = 3 slots must run >= 300,000 auctions/s).

Each mechanism (second price and first price per click, GSP with quality score, second price per
impression) in pool mode with a daily budget, second price also in personalised mode, and the single
env through ``gymnasium.make``. Actions are random creatives with bids around the value of a click
(drawn once, outside the timing); a step includes the env's action check, the competitors' draws
(lognormal, from the streams), the auction, clicks, conversions, the budget, the CTR and CVR
estimates' updates, the next request and the batched ``info`` (thresholds, hindsight bids of every
creative, the oracle, the regret decomposition). BLAS is limited to one thread, as in the other
suites; each figure is reported by wall-clock and by CPU time.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

import adsim  # noqa: F401  (registers the envs)
from experiments.perf import median_rate
from experiments.perf.env import single_chunk, vector_chunk
from experiments.threads import one_blas_thread

ENV_ID = "adsim/AdAuction-v0"
SUITE = "auction"
N, M, L, K = 4096, 10, 3, 8
TARGET = 300_000
CASES = {"second_price_cpc": {}, "first_price_cpc": {"mechanism": "first_price"}, "gsp_cpc": {"mechanism": "gsp"},
         "second_price_cpm": {"pricing": "cpm"}}


def _actions(n: int, pricing: str) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    scale = 3.0 if pricing == "cpc" else 0.1
    return [{"creative": rng.integers(0, K, n), "bid": rng.uniform(0.0, scale, n)} for _ in range(16)]


def _vector(case: dict, mode: str = "pool", n: int = N) -> Callable[[], int]:
    """One step of the native vector env of ``n`` auctions."""
    env = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", n_advertisers=M, slate_size=L,
                       n_candidates=K, mode=mode, horizon=1000, budget=50.0, **case)
    return vector_chunk(env, _actions(n, case.get("pricing", "cpc")))


def _single() -> Callable[[], int]:
    """A chunk of 500 single-env auctions (``gym.make``, with its wrappers), resetting at the horizon."""
    env = gym.make(ENV_ID, n_advertisers=M, slate_size=L, n_candidates=K, horizon=1000, budget=50.0)
    rng = np.random.default_rng(0)
    return single_chunk(env, [{"creative": int(k), "bid": float(b)}
                              for k, b in zip(rng.integers(0, K, 4096), rng.uniform(0, 3, 4096))])


def run(quick: bool = False) -> dict:
    repeats, min_time = (3, 0.1) if quick else (7, 0.5)
    out = {"config": {"N": N, "M": M, "L": L, "K": K, "horizon": 1000, "budget": 50.0},
           "target_auctions_per_s": TARGET}
    with one_blas_thread(None):
        for name, case in CASES.items():
            out[f"vector_pool_{name}_N{N}_auctions_per_s"] = median_rate(_vector(case), repeats, min_time)
        out[f"vector_personalized_second_price_cpc_N{N}_auctions_per_s"] = median_rate(
            _vector(CASES["second_price_cpc"], "personalized"), repeats, min_time)
        out["single_pool_second_price_cpc_steps_per_s"] = median_rate(_single(), repeats, min_time)
    out["meets_target"] = {name: {"wall": out[f"vector_pool_{name}_N{N}_auctions_per_s"]["median"] >= TARGET,
                                  "cpu": out[f"vector_pool_{name}_N{N}_auctions_per_s"]["cpu_median"] >= TARGET}
                           for name in CASES}
    return out
