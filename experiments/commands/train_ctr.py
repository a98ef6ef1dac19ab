"""``adsim train-ctr``: log impressions, train CTR model(s), evaluate them next to the oracle.

Writes into ``--out``: ``metrics.json`` (held-out AUC ± bootstrap SE, log loss, ECE, predicted/observed
ratio for every model and for the oracle; training throughput; the targets checked), the
reliability diagram ``reliability.png``, the learning curve ``learning_curve.png`` (validation log
loss per epoch) and each trained model in ``<out>/<model>/`` (``model.pt`` + ``config.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from experiments.options import (add_device, add_field_overrides, add_held_out_users, check_device_arg,
                                 check_held_out_users_arg, field_overrides)
from experiments.provenance import provenance


def register(sub) -> None:
    p = sub.add_parser("train-ctr", help="train CTR models on logged impressions and compare them to the oracle")
    p.add_argument("--model", default="deepfm", help="lr, fm, deepfm or dcnv2")
    p.add_argument("--compare", default="", help="also train these models (comma-separated, e.g. lr,fm,dcnv2)")
    p.add_argument("--impressions", type=int, default=200_000, help="impressions to log")
    p.add_argument("--preset", default="personalized", help="scenario preset")
    add_field_overrides(p)
    p.add_argument("--logging", default="uniform", help="logging policy: uniform or egreedy")
    p.add_argument("--epsilon", type=float, default=0.1, help="exploration of the egreedy logging policy")
    p.add_argument("--data", help="train on this Parquet file of impressions instead of logging new ones")
    p.add_argument("--allow-other-world", action="store_true",
                   help="accept a --data log from another world than --preset's (a transfer experiment)")
    p.add_argument("--save-data", action="store_true", help="also write the logged impressions.parquet")
    p.add_argument("--test-fraction", type=float, default=0.25, help="held-out share of impressions")
    p.add_argument("--test-impressions", type=int, default=0,
                   help="instead of a held-out share, evaluate on this many freshly logged impressions "
                        "(other request streams, same world); all --impressions then train")
    add_held_out_users(p, "metrics on the test rows")
    p.add_argument("--labels", default="clicks",
                   help="train on the logged clicks, or on each impression's true click probability (truth): "
                        "the greedy lift of a flexible model trained on the truth is the observable-feature bound")
    p.add_argument("--epochs", type=int, default=30, help="max epochs (early stopping on 10%% validation)")
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy 2-core box)")
    add_device(p)
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples for AUC standard errors")
    p.add_argument("--selection-requests", type=int, default=20_000,
                   help="fresh requests on which each model greedily picks a creative (selection metric)")
    p.add_argument("--repeats", type=int, default=1,
                   help="also repeat the AUC comparison with seeds seed+1 … seed+R-1 (fresh logs, training and "
                        "held-out sets) and report each model's mean AUC gain over lr with its standard error")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=False,
                   help="tqdm progress bars (default off)")
    p.set_defaults(func=run)


def _models(args) -> list[str]:
    from adsim.validation import check_choice
    from adsim.ctr.models import MODELS

    names = [args.model] + [m.strip() for m in args.compare.split(",") if m.strip()]
    for n in names:
        check_choice("model", n, MODELS)
    return sorted(set(names), key=MODELS.index)


TEST_STREAM_OFFSET = 10**6
"""Held-out impressions are logged with seed ``seed + 10**6``: other request streams than training's."""


def _config(args):
    """The scenario: ``--preset`` with its ``--set`` fields (bad ones raise ``ValueError``)."""
    from adsim import make_config

    return make_config(args.preset, **field_overrides(args))


def _data(args, out: Path):
    """(train, test) impressions: a random split of one log, or a fresh log for testing."""
    import numpy as np

    from adsim.ctr import load_impressions, log_impressions, save_impressions
    from adsim.world import check_world

    config = _config(args)
    log = dict(policy=args.logging, epsilon=args.epsilon, progress=args.progress)
    if args.data:
        imp = load_impressions(args.data)
        check_world(imp.metadata.get("world"), config.world, f"impressions file {args.data!r}",
                    allow_other_world=getattr(args, "allow_other_world", False), opt_in="--allow-other-world")
    else:
        imp = log_impressions(config, args.impressions, seed=args.seed, **log)
    if args.save_data:
        save_impressions(imp, out / "impressions.parquet")
    if args.test_impressions > 0:
        return _without_held_out_users(imp, args), log_impressions(config, args.test_impressions,
                                                                 seed=args.seed + TEST_STREAM_OFFSET, **log)
    perm = np.random.default_rng(np.random.SeedSequence([args.seed, 5])).permutation(len(imp))
    n_test = int(round(args.test_fraction * len(imp)))
    return _without_held_out_users(imp.take(perm[n_test:]), args), imp.take(perm[:n_test])


def _without_held_out_users(train, args):
    """The training rows of the users not held out (``--held-out-users``)."""
    import numpy as np

    from adsim.users import held_out_users

    if args.held_out_users == 0:
        return train
    return train.take(np.flatnonzero(~held_out_users(train.user, args.held_out_users, args.seed)))


def by_users(args, test, preds: dict) -> dict | None:
    """Metrics on the test rows of users seen in training and of held-out users, beside the overall ones."""
    from adsim.ctr import evaluate
    from adsim.users import held_out_users

    if args.held_out_users == 0:
        return None
    held = held_out_users(test.user, args.held_out_users, args.seed)
    out = {"fraction": args.held_out_users, "test_rows": {"seen": int((~held).sum()), "held_out": int(held.sum())}}
    for name, rows in (("seen", ~held), ("held_out", held)):
        res = evaluate.compare(test.click[rows], {n: p[rows] for n, p in preds.items()}, test.oracle_click_prob[rows],
                               n_boot=args.n_boot, seed=args.seed)
        out[name] = {"oracle": res["oracle"], "models": res["models"]}
    return out


def repeated_gains(args, names: list[str], first: dict[str, float]) -> dict:
    """Held-out AUC of every model for seeds ``seed … seed+R-1`` (fresh data each time) and each
    model's gain over ``lr``: per seed, mean and standard error of the mean."""
    import argparse

    import numpy as np
    from sklearn.metrics import roc_auc_score

    from adsim.ctr import TrainConfig, train_on_impressions

    if "lr" not in names:
        raise ValueError("--repeats compares against lr: add lr to --model/--compare")
    aucs = {n: [first[n]] for n in names}
    for seed in range(args.seed + 1, args.seed + args.repeats):
        rep = argparse.Namespace(**{**vars(args), "seed": seed, "save_data": False})
        train, test = _data(rep, Path(args.out))
        cfg = TrainConfig(lr=args.lr, batch_size=args.batch_size, max_epochs=args.epochs, seed=seed,
                          device=args.device)
        for n in names:
            model, _ = train_on_impressions(train, n, cfg, labels=args.labels)
            aucs[n].append(float(roc_auc_score(test.click, model.predict_impressions(test))))
        print(f"repeat seed {seed}: " + ", ".join(f"{n} {aucs[n][-1]:.4f}" for n in names), file=sys.stderr)
    gains = {}
    for n in names:
        if n == "lr":
            continue
        d = np.asarray(aucs[n]) - np.asarray(aucs["lr"])
        gains[n] = {"per_seed": d.tolist(), "mean": float(d.mean()),
                    "se_of_mean": float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else None}
    return {"seeds": list(range(args.seed, args.seed + args.repeats)), "auc": aucs, "gain_over_lr": gains}


def targets(res: dict, repeats: dict | None = None) -> dict:
    """The issue's accuracy targets, checked on a comparison result (see ``adsim.ctr.evaluate.compare``)."""
    out = {}
    for name in ("deepfm", "dcnv2"):
        m = res["models"].get(name)
        if m is None or "auc_gain_over_lr" not in m:
            continue
        out[name] = {"beats_lr_by_more_than_auc_se": m["auc_gain_over_lr"] > m["auc_se"],
                     "auc_gain_over_lr": m["auc_gain_over_lr"], "auc_se": m["auc_se"],
                     "paired_gain_se": m["auc_gain_se"], "auc_gap_to_oracle": m["auc_gap_to_oracle"],
                     "mean_ctr_within_5pct": abs(m["pred_obs_ratio"] - 1) <= 0.05}
        if repeats and name in repeats["gain_over_lr"]:
            g = repeats["gain_over_lr"][name]
            out[name].update(mean_gain_over_lr_across_seeds=g["mean"], mean_gain_se=g["se_of_mean"],
                             mean_gain_exceeds_auc_se=g["mean"] > m["auc_se"])
    return out


def run(args) -> int:
    import numpy as np
    import torch

    from adsim.ctr import TrainConfig, evaluate, train_on_impressions
    from experiments.ctr_plots import learning_curve, reliability_diagram

    check_device_arg(args)
    check_held_out_users_arg(args)
    from adsim.ctr.train import LABELS
    from adsim.validation import check_choice

    check_choice("--labels", args.labels, LABELS)
    config = _config(args)  # bad --set fields raise before any work
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = _models(args)
    if args.repeats < 1 or (args.repeats > 1 and "lr" not in names):
        raise ValueError(f"--repeats == {args.repeats}: must be >= 1, and > 1 needs lr among the models")
    t0 = time.perf_counter()
    train, test = _data(args, out)
    cfg = TrainConfig(lr=args.lr, batch_size=args.batch_size, max_epochs=args.epochs, seed=args.seed,
                      device=args.device)
    preds, histories, training, models = {}, {}, {}, {}
    for name in names:
        t = time.perf_counter()
        model, hist = train_on_impressions(train, name, cfg, progress=args.progress, labels=args.labels)
        model.save(out / name)
        preds[name], histories[name], models[name] = model.predict_impressions(test), hist, model
        training[name] = {"epochs": len(hist), "best_val_log_loss": min(h["val_log_loss"] for h in hist),
                          "train_rows_per_s_median": float(np.median([h["rows_per_s"] for h in hist])),
                          "seconds": time.perf_counter() - t}
        print(f"trained {name}: {len(hist)} epochs, {training[name]['seconds']:.1f} s", file=sys.stderr)
    res = evaluate.compare(test.click, preds, test.oracle_click_prob, n_boot=args.n_boot, seed=args.seed)
    users = by_users(args, test, preds)
    sel = evaluate.selection(models, config, args.selection_requests)
    repeats = None
    if args.repeats > 1:  # checked before training: lr must be among the models
        repeats = repeated_gains(args, names, {n: m["auc"] for n, m in res["models"].items()})
    reliability_diagram(res["reliability"], out / "reliability.png",
                        f"Reliability, {args.preset}, {len(test):,} held-out impressions")
    learning_curve(histories, out / "learning_curve.png", res["oracle"]["log_loss"])
    doc = {"command": "adsim " + " ".join(sys.argv[1:]), **provenance(), "args": vars(args) | {"func": None},
           "data": {"train": len(train), "test": len(test), "observed_ctr_train": float(train.click.mean()),
                    "observed_ctr_test": float(test.click.mean()), "logging": train.metadata.get("policy")},
           "oracle": res["oracle"], "models": res["models"], "users": users, "training": training, "targets": targets(res, repeats),
           "selection": sel, "repeats": repeats,
           "reliability": res["reliability"], "learning_curves": histories,
           "threads": args.threads, "seconds": time.perf_counter() - t0}
    (out / "metrics.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(_summary(doc))
    return 0


def _summary(doc: dict) -> str:
    rows = [f"{'model':8s} {'AUC':>7s} {'±SE':>6s} {'gap':>7s} {'logloss':>8s} {'ECE':>7s} {'pred/obs':>8s}"
            f" {'greedy lift':>12s}"]
    sel = doc["selection"]["models"]
    for name, m in [*doc["models"].items(), ("oracle", doc["oracle"])]:
        gap = m.get("auc_gap_to_oracle", 0.0)
        lift = f"{sel[name]['lift_captured']:6.3f}±{sel[name]['lift_se']:.3f}" if name in sel else f"{1:6.3f}"
        rows.append(f"{name:8s} {m['auc']:7.4f} {m['auc_se']:6.4f} {gap:7.4f} {m['log_loss']:8.5f} "
                    f"{m['ece']:7.5f} {m['pred_obs_ratio']:8.3f} {lift:>12s}")
    if doc.get("users"):
        u = doc["users"]
        rows.append(f"AUC on users seen in training ({u['test_rows']['seen']:,} rows) / held out "
                    f"({u['test_rows']['held_out']:,} rows, {u['fraction']:.0%} of users): "
                    + ", ".join(f"{n} {u['seen']['models'][n]['auc']:.4f} / {u['held_out']['models'][n]['auc']:.4f}"
                                for n in u["seen"]["models"]))
    rows.append("targets: " + json.dumps(doc["targets"]))
    return "\n".join(rows)
