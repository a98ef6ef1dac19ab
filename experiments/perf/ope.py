"""Off-policy estimators on 1,000,000 logged rounds: IPS, SNIPS and DR wall time (target < 1 s each)."""

from __future__ import annotations

import time

import numpy as np

from adsim.ope.estimators import dr, ips, snips

SUITE = "ope"
N_ROUNDS = 1_000_000
K = 8


def _synthetic(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A log-shaped problem: ε-greedy-like logging propensities, a soft target, Bernoulli rewards."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, K))
    pi_b = 0.7 * (logits == logits.max(axis=1, keepdims=True)) + 0.3 / K
    target = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    action = (rng.random((n, 1)) > np.cumsum(pi_b, axis=1)).sum(axis=1).clip(max=K - 1)
    q = rng.uniform(0.01, 0.1, size=(n, K))
    reward = (rng.random(n) < q[np.arange(n), action]).astype(np.float64)
    return {"reward": reward, "action": action, "pscore": pi_b[np.arange(n), action], "target": target, "q_hat": q}


def _seconds(fn, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"median_s": times[len(times) // 2], "min_s": times[0], "max_s": times[-1], "repeats": repeats}


def run(quick: bool = False) -> dict:
    d = _synthetic(N_ROUNDS)
    base = (d["reward"], d["action"], d["pscore"], d["target"])
    repeats = 3 if quick else 7
    return {
        "config": {"n_rounds": N_ROUNDS, "K": K, "ci": "normal"},
        "ips": _seconds(lambda: ips(*base), repeats),
        "snips": _seconds(lambda: snips(*base), repeats),
        "dr": _seconds(lambda: dr(*base, d["q_hat"]), repeats),
    }
