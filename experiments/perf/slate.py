"""Slate env throughput: ``adsim/SlateSelection-v0`` pages per second (issue 16: the native vector
env at N = 4,096, K = 20, L = 3 must step >= 500,000 slates/s).

Each click model (``pbm``, ``cascade``, ``dcm``) in pool mode, the PBM also in personalised mode,
and the single env through ``gymnasium.make``. Slates are random (drawn once, outside the timing);
a step includes the env's slate check, clicks, the CTR estimate's update, the next request and the
batched ``info`` (attractions, the (N, K, L) click table, the oracle). BLAS is limited to one thread,
as in the other suites; each figure is reported by wall-clock and by CPU time.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

import adsim  # noqa: F401  (registers the envs)
from experiments.perf import median_rate
from experiments.perf.env import single_chunk, vector_chunk
from experiments.threads import one_blas_thread

ENV_ID = "adsim/SlateSelection-v0"
SUITE = "slate"
N, K, L = 4096, 20, 3
TARGET = 500_000


def _vector(click_model: str, mode: str, n: int = N) -> Callable[[], int]:
    """One step of the native vector env of ``n`` pages (n slates)."""
    env = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", n_candidates=K, slate_size=L,
                       click_model=click_model, mode=mode, horizon=1000)
    return vector_chunk(env, np.argsort(np.random.default_rng(0).random((16, n, K)), axis=2)[..., :L])


def _single(click_model: str) -> Callable[[], int]:
    """A chunk of 500 single-env pages (``gym.make``, with its wrappers), resetting at the horizon."""
    env = gym.make(ENV_ID, n_candidates=K, slate_size=L, click_model=click_model, horizon=1000)
    return single_chunk(env, np.argsort(np.random.default_rng(0).random((4096, K)), axis=1)[:, :L])


def run(quick: bool = False) -> dict:
    repeats, min_time = (3, 0.1) if quick else (7, 0.5)
    out = {"config": {"N": N, "K": K, "L": L, "horizon": 1000}, "target_slates_per_s": TARGET}
    with one_blas_thread(None):
        for cm in ("pbm", "cascade", "dcm"):
            out[f"vector_pool_{cm}_N{N}_slates_per_s"] = median_rate(_vector(cm, "pool"), repeats, min_time)
        out[f"vector_personalized_pbm_N{N}_slates_per_s"] = median_rate(_vector("pbm", "personalized"), repeats,
                                                                         min_time)
        out["single_pool_pbm_steps_per_s"] = median_rate(_single("pbm"), repeats, min_time)
    out["meets_target"] = {cm: {"wall": out[f"vector_pool_{cm}_N{N}_slates_per_s"]["median"] >= TARGET,
                                "cpu": out[f"vector_pool_{cm}_N{N}_slates_per_s"]["cpu_median"] >= TARGET}
                           for cm in ("pbm", "cascade", "dcm")}
    return out
