"""``adsim ope-log`` writes a policy's logged feedback; ``adsim ope`` estimates a target policy's
value from such a log; ``adsim ope-study`` checks every estimator against the simulator's truth."""

from __future__ import annotations

import json
import sys
import time

from experiments.options import add_common


def register(sub) -> None:
    p = sub.add_parser("ope-log", help="log a policy's run as bandit feedback (Parquet)")
    p.add_argument("--policy", default="random", help="logging policy: name or name@epsilon (e.g. oracle@0.3)")
    p.add_argument("--policy-config", help="TOML policy config (overrides --policy)")
    p.add_argument("--rounds", type=int, default=10000)
    p.add_argument("--num-envs", type=int, default=1024)
    p.add_argument("--preset", default="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="directory to write log.parquet into")
    p.set_defaults(func=run_log)

    p = sub.add_parser("ope", help="estimate a target policy's value from a logged-feedback file")
    p.add_argument("--log", required=True, help="directory (or .parquet file) written by `adsim ope-log`")
    p.add_argument("--target", required=True, help="target policy: a TOML file (policy, epsilon, seed, "
                                                    "[hyperparameters]) or name / name@epsilon, e.g. random, oracle@0.3")
    p.add_argument("--train-log", help="first train the target (policy.update) on this log's feedback, "
                                        "then evaluate it frozen on --log")
    p.add_argument("--reward-model", default="logistic", choices=("logistic", "truth", "none"),
                   help="reward model of DM/DR: cross-fitted logistic regression; the log's true expected "
                        "reward (a perfect model, simulated logs only); or none (IPS/SNIPS only)")
    p.add_argument("--ci", default="normal", choices=("normal", "bootstrap"))
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--clip", type=float, default=5.0, help="weight cap of dr_clip")
    p.add_argument("--tau", type=float, default=5.0, help="switch threshold of switch_dr")
    p.add_argument("--seed", type=int, default=0, help="seed of cross-fitting folds and bootstrap")
    p.set_defaults(func=run_ope)

    p = sub.add_parser("ope-study", help="validate the OPE estimators against the simulator's truth")
    p.add_argument("--out", required=True, help="results folder to write (e.g. a fresh results/ope_mine)")
    p.add_argument("--logging", nargs="+", help="logging policies (name or name@epsilon)")
    p.add_argument("--targets", nargs="+", help="target policies (name or name@epsilon)")
    p.add_argument("--sizes", nargs="+", type=int)
    p.add_argument("--preset")
    p.add_argument("--ci", choices=("normal", "bootstrap"))
    add_common(p)  # --jobs, --seeds N (scenario seeds 0 … N−1 per cell), --progress/--no-progress
    p.set_defaults(func=run_study)


def run_log(args) -> int:
    from adsim.config import make_config
    from experiments.ope.collect import collect_log
    from experiments.ope.target import PolicySpec

    spec = PolicySpec.from_toml(args.policy_config) if args.policy_config else PolicySpec.parse(args.policy)
    log = collect_log(spec.build(), make_config(args.preset), args.rounds, num_envs=args.num_envs, seed=args.seed)
    path = log.save(args.out)
    print(json.dumps({"log": str(path), "policy": spec.label, "n_rounds": log.n_rounds,
                      "n_actions": log.n_actions, "mean_reward": float(log.reward.mean())}, indent=2))
    return 0


def run_ope(args) -> int:
    from adsim.ope import estimate_all, load_log, predict_rewards
    from experiments.ope.collect import target_probabilities, train_on_log, true_value
    from experiments.ope.target import PolicySpec

    log = load_log(args.log)
    spec = PolicySpec.from_toml(args.target) if args.target.endswith(".toml") else PolicySpec.parse(args.target)
    policy = spec.build()
    if args.train_log:
        train_on_log(policy, load_log(args.train_log), seed=spec.seed)
    probs = target_probabilities(policy, log, seed=spec.seed, reset=not args.train_log)
    q_hat = None
    if args.reward_model == "logistic":
        q_hat = predict_rewards(log, n_folds=2, seed=args.seed)
    elif args.reward_model == "truth":
        if log.expected_reward is None:
            print(f"--reward-model truth: the log {args.log!r} has no expected_reward column", file=sys.stderr)
            return 2
        q_hat = predict_rewards(log, lambda lg: lg.expected_reward)
    ests = estimate_all(log.reward, log.action, log.pscore, probs, q_hat, clip=args.clip, tau=args.tau,
                        alpha=args.alpha, ci=args.ci, seed=args.seed)
    report = {"log": args.log, "n_rounds": log.n_rounds, "logging_policy": log.meta.get("policy"),
              "target": spec.label, "trained_on": args.train_log, "reward_model": args.reward_model,
              "confidence": 1 - args.alpha, "ci": args.ci,
              "estimates": {k: {"value": e.value, "ci": [e.ci_low, e.ci_high], "std_err": e.std_err}
                            for k, e in ests.items()}}
    if log.expected_reward is not None:
        report["true_value"] = true_value(log, probs)
    print(json.dumps(report, indent=2))
    return 0


def run_study(args) -> int:
    from pathlib import Path

    from experiments.ope.study import StudyConfig, plot_rmse, run_study as study_run, summarise, write_report

    given = {"logging": args.logging and tuple(args.logging), "targets": args.targets and tuple(args.targets),
             "sizes": args.sizes and tuple(args.sizes), "n_seeds": args.seeds, "preset": args.preset, "ci": args.ci}
    study = StudyConfig(**{k: v for k, v in given.items() if v is not None})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = summarise(study_run(study, workers=args.jobs or 1, progress=args.progress))
    summary.to_csv(out / "summary.csv", index=False)
    plot_rmse(summary, out / "rmse.png")
    path = write_report(study, summary, out, time.perf_counter() - t0)
    print(f"wrote {path}, {out / 'summary.csv'}, {out / 'rmse.png'}", file=sys.stderr)
    return 0
