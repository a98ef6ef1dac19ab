"""``adsim ope-log`` writes a policy's logged feedback; ``adsim ope`` estimates a target policy's
value from such a log (both name policies as a study config does: a registered name or
``package.module:Class`` plus hyperparameters); ``adsim ope-study`` checks every estimator against
the simulator's truth: a study config with an ``[ope]`` table, run by the one runner
(``experiments/configs/ope.toml``; same flags as ``adsim bench``, ``--resume`` included);
``adsim ope-obd`` runs the Open Bandit Dataset's standard validation with the per-position and slate
estimators (:mod:`adsim.ope.obd`) and can export the slate log it used in the OBD format."""

from __future__ import annotations

import sys

import os
from pathlib import Path

from experiments.jsonout import dumps
from experiments.options import add_study_options

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "ope.toml"


POLICY_HELP = ("a registered policy name or 'package.module:Class' (NAME@EPSILON: its ε-mixture with the uniform "
               "policy, uniform_mix), or a .toml file with one [policies.<label>] table's keys: policy, "
               "uniform_mix, hyperparameters")


def register(sub) -> None:
    p = sub.add_parser("ope-log", help="log a policy's run as bandit feedback (Parquet)")
    p.add_argument("--policy", default="random", help="logging policy: " + POLICY_HELP)
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyperparameter of --policy (TOML value; repeatable)")
    p.add_argument("--rounds", type=int, default=10000)
    p.add_argument("--num-envs", type=int, default=1024)
    p.add_argument("--preset", default="default")
    p.add_argument("--seed", type=int, default=0, help="the log's seed (request streams, policy, action draws)")
    p.add_argument("--out", required=True, help="directory to write log.parquet into")
    p.set_defaults(func=run_log)

    p = sub.add_parser("ope", help="estimate a target policy's value from a logged-feedback file")
    p.add_argument("--log", required=True, help="directory (or .parquet file) written by `adsim ope-log`")
    p.add_argument("--target", required=True, help="target policy: " + POLICY_HELP + "; e.g. random, oracle@0.3")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyperparameter of --target (TOML value; repeatable)")
    p.add_argument("--train-log", help="first train the target (policy.update) on this log's feedback, "
                                        "then evaluate it frozen on --log")
    p.add_argument("--reward-model", default="logistic", choices=("logistic", "truth", "none"),
                   help="reward model of DM/DR: cross-fitted logistic regression; the log's true expected "
                        "reward (a perfect model, simulated logs only); or none (IPS/SNIPS only)")
    p.add_argument("--ci", default="normal", choices=("normal", "bootstrap"))
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--clip", type=float, default=5.0, help="weight cap of dr_clip")
    p.add_argument("--tau", type=float, default=5.0, help="switch threshold of switch_dr")
    p.add_argument("--clip-pscore", action="store_true",
                   help="clip logged propensities below the floor (adsim.ope.PSCORE_FLOOR, 1e-6) to it instead "
                        "of refusing the log; the report says how many rows were clipped")
    p.add_argument("--seed", type=int, default=0, help="seed of the target policy, cross-fitting folds and bootstrap")
    p.set_defaults(func=run_ope)

    p = sub.add_parser("ope-obd", help="the Open Bandit Dataset's validation: Bernoulli TS's CTR estimated from "
                                       "the uniform-random log (per-position and slate estimators) against its "
                                       "on-policy CTR; JSON")
    p.add_argument("--campaign", nargs="+", default=["all"], help="OBD campaigns: all, men, women (default all)")
    p.add_argument("--target-propensity", nargs="+", default=["prior"], metavar="SOURCE",
                   help="BTS's marginals: prior (obp's ZOZOTOWN-prior BernoulliTS, Monte Carlo) and/or frequency "
                        "(the BTS log's own (item, position) frequencies)")
    p.add_argument("--slates", metavar="FILE", help="an OBD-format slate log of the uniform logger (complete pages, "
                                                  "e.g. written by --export) instead of the sample's pseudo-slates; "
                                                  "one --campaign only")
    p.add_argument("--export", metavar="DIR", help="write each campaign's slate log as DIR/<campaign>.csv (OBD format)")
    p.add_argument("--ci", default="bootstrap", choices=("normal", "bootstrap"))
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--n-sim", type=int, default=100_000, help="Monte Carlo draws of the prior's marginals")
    p.add_argument("--seed", type=int, default=12345, help="seed of the prior's draws and of the bootstrap")
    p.add_argument("--out", help="also write the JSON to this file")
    p.set_defaults(func=run_obd)

    p = sub.add_parser("ope-study", help="validate the OPE estimators against the simulator's truth (a study "
                                         "config with an [ope] table, on the runner of adsim bench)")
    add_study_options(p, default_config=os.path.relpath(DEFAULT_CONFIG) if DEFAULT_CONFIG.is_relative_to(Path.cwd())
                      else str(DEFAULT_CONFIG))
    p.set_defaults(func=run_study)


def run_log(args) -> int:
    from adsim.config import make_config
    from experiments.ope.collect import collect_log
    from experiments.runner.spec import policy_from_arg

    spec = policy_from_arg(args.policy, args.param, "--policy")
    log = collect_log(spec.make(), make_config(args.preset), args.rounds, num_envs=args.num_envs, seed=args.seed)
    path = log.save(args.out)
    print(dumps({"log": str(path), "policy": spec.label, "n_rounds": log.n_rounds,
                      "n_actions": log.n_actions, "mean_reward": float(log.reward.mean())}, indent=2))
    return 0


def run_ope(args) -> int:
    from adsim.ope import estimate_all, load_log, predict_rewards
    from experiments.ope.collect import target_probabilities, train_on_log, true_value
    from experiments.runner.spec import policy_from_arg

    spec = policy_from_arg(args.target, args.param, "--target")  # checked before the log is read
    log = load_log(args.log)
    policy = spec.make()
    if args.train_log:
        train_on_log(policy, load_log(args.train_log), seed=args.seed)
    probs = target_probabilities(policy, log, seed=args.seed, reset=not args.train_log)
    q_hat = None
    if args.reward_model == "logistic":
        q_hat = predict_rewards(log, n_folds=2, seed=args.seed)
    elif args.reward_model == "truth":
        if log.expected_reward is None:
            print(f"--reward-model truth: the log {args.log!r} has no expected_reward column", file=sys.stderr)
            return 2
        q_hat = predict_rewards(log, lambda lg: lg.expected_reward)
    ests = estimate_all(log.reward, log.action, log.pscore, probs, q_hat, clip=args.clip, tau=args.tau,
                        alpha=args.alpha, ci=args.ci, seed=args.seed, clip_pscore=args.clip_pscore)
    report = {"log": args.log, "n_rounds": log.n_rounds, "logging_policy": log.meta.get("policy"),
              "target": spec.label, "trained_on": args.train_log, "reward_model": args.reward_model,
              "confidence": 1 - args.alpha, "ci": args.ci,
              "pscore_rows_clipped": max((e.n_clipped for e in ests.values()), default=0),
              "estimates": {k: {"value": e.value, "ci": [e.ci_low, e.ci_high], "std_err": e.std_err}
                            for k, e in ests.items()}}
    if log.expected_reward is not None:
        report["true_value"] = true_value(log, probs)
    print(dumps(report, indent=2))
    return 0


def run_obd(args) -> int:
    from adsim.fidelity import OBD_CAMPAIGNS, obd_sample_path, read_obd, slate_log, write_obd
    from adsim.ope.obd import TARGET_SOURCES, validate
    from adsim.validation import check_choice

    for c in args.campaign:
        check_choice("--campaign", c, OBD_CAMPAIGNS)
    for t in args.target_propensity:
        check_choice("--target-propensity", t, TARGET_SOURCES)
    if args.slates and len(args.campaign) != 1:
        raise ValueError(f"--slates is one campaign's log; got --campaign {' '.join(args.campaign)}")
    try:
        paths = {c: (obd_sample_path("random", c), obd_sample_path("bts", c)) for c in args.campaign}
    except FileNotFoundError as err:
        raise ValueError(str(err)) from None
    runs, exported = [], {}
    for c, (random_path, bts_path) in paths.items():
        random_log, bts_log = read_obd(random_path), read_obd(bts_path)
        slates = slate_log(read_obd(args.slates), how="pages") if args.slates else None
        if args.export:
            used = slates if slates is not None else slate_log(random_log, how="by_position")
            exported[c] = str(write_obd(used, Path(args.export) / f"{c}.csv"))
        for t in args.target_propensity:
            runs.append(validate(random_log, bts_log, c, t, slates=slates, n_sim=args.n_sim, seed=args.seed,
                                 alpha=args.alpha, ci=args.ci, n_boot=args.n_boot))
    doc = {"command": "adsim ope-obd " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["ope-obd"] else "adsim ope-obd",
           "estimand": "Bernoulli TS's CTR per impression (a slate's value / 3 positions)",
           "validations": runs, "exported": exported}
    text = dumps(doc, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def run_study(args) -> int:
    from experiments.options import run_study as run_on_the_runner
    from experiments.runner.spec import read_toml

    if "ope" not in read_toml(args.config):
        raise ValueError(f"--config {args.config!r} has no [ope] table; `adsim ope-study` runs OPE studies "
                         f"(run benchmarks with `adsim bench`)")
    done = run_on_the_runner(args)
    if isinstance(done, int):
        return done
    print((Path(args.out) / "summary.md").read_text())
    print(f"wrote {args.out}/: config.json summary.csv summary.md estimates.csv.gz rmse.png rmse.svg; finished logs "
          f"in runs/", file=sys.stderr)
    return 0
