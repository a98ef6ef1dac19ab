"""``adsim demo``: run the environment with a random and an oracle policy and print what happened."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("demo", help="a short run of the env with random and oracle policies")
    p.add_argument("--preset", default="default")
    p.add_argument("--steps", type=int, default=200, help="vector-env steps")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    import gymnasium as gym

    import adsim  # noqa: F401
    from agents import OraclePolicy, RandomPolicy

    from adsim.validation import check_int

    check_int("--steps", args.steps, 1)
    check_int("--num-envs", args.num_envs, 1)
    results = {}
    for policy in (RandomPolicy(), OraclePolicy()):
        env = gym.make_vec("adsim/CreativeSelection-v0", num_envs=args.num_envs,
                           vectorization_mode="vector_entry_point", preset=args.preset)
        obs, info = env.reset(seed=args.seed)
        policy.reset(env.single_action_space.n, seed=args.seed)
        clicks = regret = 0.0
        for _ in range(args.steps):
            a = policy.select(obs, info)
            obs, r, _, _, info = env.step(a)
            clicks += float(r.sum())
            regret += float(info["regret"].sum())
        n = args.steps * args.num_envs
        results[policy.name] = {"impressions": n, "ctr": clicks / n, "cumulative_regret": regret}
    print(json.dumps({"preset": args.preset, "results": results}, indent=2))
    return 0
