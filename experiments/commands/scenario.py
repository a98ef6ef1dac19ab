"""``adsim scenario``: describe a scenario's difficulty from the simulator's ground truth (JSON)."""

from __future__ import annotations

import json

from experiments.options import add_field_overrides, field_overrides


def register(sub) -> None:
    p = sub.add_parser("scenario", help="ground-truth statistics of a preset: CTR, gaps between creatives")
    p.add_argument("--preset", default="default")
    p.add_argument("--requests", type=int, default=100_000, help="requests to sample")
    p.add_argument("--seed", type=int, default=0)
    add_field_overrides(p)
    p.set_defaults(func=run)


def describe(preset: str, requests: int = 100_000, seed: int = 0, **fields) -> dict:
    """Truth-based statistics of a scenario, from exactly ``requests`` sampled requests; ``fields``
    override the preset's env or world fields."""
    import numpy as np

    from adsim import make_config
    from adsim.validation import check_int
    from adsim.selection import SelectionCore

    check_int("--requests", requests, 1, 10**8)
    n = min(1024, requests)
    config = make_config(preset, **fields)  # bad fields raise before any sampling
    core = SelectionCore(config.replace(horizon=-(-requests // n)), n)
    core.seed(seed)
    core.start_episode()
    probs, campaigns = [], core.campaign
    while not core.truncated:
        probs.append(core.click_probs)
        core.step(np.zeros(n, dtype=np.int64))
    p = np.stack(probs, axis=1)  # (n, steps, K)
    keep = (np.arange(p.shape[1])[None, :] * n + np.arange(n)[:, None]) < requests  # the first `requests`
    slot_campaign = np.broadcast_to(campaigns[:, None], keep.shape)[keep]
    p, campaigns = p[keep][None], slot_campaign[None]  # (1, requests, K): one row of requests
    out = {
        "preset": preset,
        "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()},
        "mode": core.config.mode,
        "requests": int(p.shape[0] * p.shape[1]),
        "target_ctr": core.config.world.target_ctr,
        "mean_ctr_random_policy": float(p.mean()),
        "mean_ctr_per_request_oracle": float(p.max(-1).mean()),
        "oracle_lift_over_random": float(p.max(-1).mean() / p.mean()),
        "user_cv_of_click_prob": float(np.median(p.std(axis=(0, 1)) / p.mean(axis=(0, 1)))),
    }
    from adsim.generator.evaluate import creative_headroom

    out["creative_headroom"] = creative_headroom(core.world, core.beta0, n=min(requests, 20_000),
                                                 K=core.config.n_candidates, seed=seed)
    if core.config.mode == "pool":
        ratios, best = [], []
        for c in np.unique(campaigns):
            arm = p[campaigns == c].mean(0)
            ratios.append(np.quantile(arm, 0.9) / np.median(arm))
            best.append(arm.max() / arm.mean())
        out["arm_ctr_p90_over_median"] = float(np.median(ratios))
        out["best_fixed_arm_over_mean_arm"] = float(np.median(best))
        out["per_request_oracle_over_best_fixed_arm"] = float(
            np.median([p[campaigns == c].max(-1).mean() / p[campaigns == c].mean(0).max()
                       for c in np.unique(campaigns)]))
    return out


def run(args) -> int:
    print(json.dumps(describe(args.preset, args.requests, args.seed, **field_overrides(args)), indent=2))
    return 0
