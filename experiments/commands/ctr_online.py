"""``adsim ctr-online``: greedy on the learned CTR estimate, with and without online refresh.

A model is trained at set-up on ``--warmup`` uniform-random impressions (streams far from the run's),
then the vector env serves ``obs["ctr_estimate"]`` from it while an ε-greedy policy picks the
argmax. With ``--refresh-every M`` the estimator fine-tunes on everything it has logged every M
impressions, so the greedy policy learns. Prints (and writes to ``--out`` as JSON) the true CTR of
the chosen creatives per bucket of steps, next to random and oracle choices on the same requests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from experiments.options import add_device, check_device_arg


def register(sub) -> None:
    p = sub.add_parser("ctr-online", help="greedy on the learned CTR model, with and without online refresh")
    p.add_argument("--model", default="deepfm", help="lr, fm, deepfm or dcnv2")
    p.add_argument("--preset", default="personalized")
    p.add_argument("--warmup", type=int, default=5000, help="uniform-random impressions the model starts from")
    p.add_argument("--refresh-every", type=int, default=20_000, help="fine-tune every M impressions")
    p.add_argument("--num-envs", type=int, default=1000)
    p.add_argument("--steps", type=int, default=200, help="vector-env steps (impressions = steps × num-envs)")
    p.add_argument("--buckets", type=int, default=10)
    p.add_argument("--epsilon", type=float, default=0.05, help="exploration of the ε-greedy policy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    add_device(p)
    p.add_argument("--out", help="write the JSON here")
    p.set_defaults(func=run)


def _run_policy(args, estimator) -> list[float]:
    """Mean true CTR of the chosen creatives per bucket (also random and oracle on the same requests)."""
    import numpy as np

    from adsim import make_config
    from adsim.envs.creative_selection import CreativeSelectionVectorEnv

    env = CreativeSelectionVectorEnv(args.num_envs, config=make_config(args.preset, horizon=args.steps),
                                     estimator=estimator)
    obs, info = env.reset(seed=args.seed)
    rng = np.random.default_rng(np.random.SeedSequence([args.seed, 3]))
    rows, per_step = np.arange(args.num_envs), []
    for _ in range(args.steps):
        greedy = np.argmax(obs["ctr_estimate"], axis=1)
        explore = rng.random(args.num_envs) < args.epsilon
        a = np.where(explore, rng.integers(0, env.config.n_candidates, args.num_envs), greedy)
        p = info["click_probs"]
        per_step.append((p[rows, a].mean(), p.mean(), p.max(1).mean()))
        obs, _, _, _, info = env.step(a)
    steps = np.array(per_step)
    return [b.mean(0).tolist() for b in np.array_split(steps, args.buckets)]


def run(args) -> int:
    import torch

    from adsim import make_config
    from adsim.ctr import LearnedCTR, TrainConfig

    device = check_device_arg(args)
    torch.set_num_threads(args.threads)
    config = make_config(args.preset, horizon=args.steps)
    base = LearnedCTR.trained(config, args.model, args.warmup, train=TrainConfig(seed=args.seed), device=device)
    results = {}
    for label, every in (("static", None), ("refresh", args.refresh_every)):
        est = LearnedCTR(base.initial, refresh_every=every)
        buckets = _run_policy(args, est)
        results[label] = {"ctr": [b[0] for b in buckets], "refreshes": est.refreshes}
        results["random"], results["oracle"] = [b[1] for b in buckets], [b[2] for b in buckets]
        print(f"{label}: {est.refreshes} refreshes", file=sys.stderr)
    doc = {"command": "adsim " + " ".join(sys.argv[1:]), "impressions_per_bucket": args.steps * args.num_envs
           // args.buckets, **results}
    print(_table(doc))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def _table(doc: dict) -> str:
    lines = [f"{'bucket':>6s} {'random':>8s} {'static':>8s} {'refresh':>8s} {'oracle':>8s}  (true CTR of chosen)"]
    for i, r in enumerate(doc["random"]):
        lines.append(f"{i:6d} {r:8.4f} {doc['static']['ctr'][i]:8.4f} {doc['refresh']['ctr'][i]:8.4f} "
                     f"{doc['oracle'][i]:8.4f}")
    return "\n".join(lines)
