"""``adsim train-generator``: pre-train the creative generator, evaluate it against the truth, and
(optionally) fine-tune it on a learned CTR model's reward.

Writes into ``--out``: ``model.pt`` / ``model.json`` (the final generator), ``pretrained/`` (the
pre-trained one), ``ctr_model.pkl`` (the learned reward model), ``config.json``, ``report.json``
and the plots ``training_curve.png`` / ``finetune_curve.png``. With ``--results`` the small
report and plots are also copied there (e.g. ``results/generator``).
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
import subprocess
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("train-generator", help="train the Transformer creative generator (CPU, minutes)")
    p.add_argument("--out", required=True, help="output directory (weights, config, curves, report)")
    p.add_argument("--preset", default="personalized", help="env preset whose world is used")
    p.add_argument("--corpus-size", type=int, default=40000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-finetune", action="store_true", help="stop after pre-training")
    p.add_argument("--log-steps", type=int, default=200, help="logged steps for the learned CTR model")
    p.add_argument("--log-envs", type=int, default=512, help="request slots per logged step")
    p.add_argument("--ft-steps", type=int, default=150)
    p.add_argument("--kl-coef", type=float, default=0.1)
    p.add_argument("--guard-coef", type=float, default=1.0,
                   help="reward penalty per public well-formedness flag (0 = unguarded)")
    p.add_argument("--reward-model", default="logistic",
                   help="learned CTR model for the reward: 'logistic' (scikit-learn, trained here on the logs), "
                        "or an adsim.ctr model: a saved model's path or NAME:IMPRESSIONS, e.g. deepfm:100000")
    p.add_argument("--pretrained", default=None, help="reuse this pre-trained generator instead of training one")
    p.add_argument("--eval-requests", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these tiny ops)")
    p.add_argument("--results", default=None, help="also copy report and plots here (e.g. results/generator)")
    p.set_defaults(func=run)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _plot_pretrain(curve: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3.5))
    loss = np.asarray(curve["step_loss"])
    ax.plot(loss, lw=0.6, alpha=0.5, label="train (per step)")
    w = max(1, len(loss) // 40)
    ax.plot(np.arange(w - 1, len(loss)), np.convolve(loss, np.ones(w) / w, "valid"), label=f"train ({w}-step mean)")
    per_epoch = len(loss) // len(curve["valid_loss"])
    ax.plot(per_epoch * np.arange(1, len(curve["valid_loss"]) + 1) - 1, curve["valid_loss"], "o-", label="validation")
    ax.set(xlabel="step", ylabel="token cross-entropy (nats)", title="generator pre-training")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_finetune(curve: dict, true_curve: list[tuple[int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(curve["est_ctr"], label="learned-model CTR of samples (reward)")
    if true_curve:
        a.plot(*zip(*true_curve), "o-", label="true CTR (held-out requests)")
    a.set(xlabel="step", ylabel="CTR", title="CTR-driven fine-tuning")
    a.legend(fontsize=8)
    b.plot(curve["kl"])
    b.set(xlabel="step", ylabel="KL to pre-trained (nats/seq)", title="KL penalty term")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _views(values):
    """The conditionings evaluated: everything known (``full``); what the env's candidate source
    passes (``env_source``: no price tier/discount, no context); a campaign pool (``pool``: goal
    and category only)."""
    from adsim.generator.conditioning import F_CONTEXT, F_DEMO, F_DISC, F_TIER, F_TOPCAT, NONE

    src = values.copy()
    src[:, F_TIER : F_DISC + 1] = NONE
    src[:, F_CONTEXT] = NONE
    pool = src.copy()
    pool[:, F_DEMO] = NONE
    pool[:, F_DEMO.stop : F_TOPCAT + 1] = NONE
    return {"full": values, "env_source": src, "pool": pool}


def run(args) -> int:
    import numpy as np
    import torch

    from adsim import make_config
    from adsim.core import SelectionCore
    from adsim.generator.conditioning import build_corpus, request_values, sample_requests, teacher
    from adsim.generator.evaluate import bootstrap_ratio, compare, true_ctr, well_formedness
    from adsim.generator.finetune import FinetuneConfig, finetune
    from adsim.generator.generate import CreativeGenerator
    from adsim.generator.model import CreativeTransformer, GeneratorConfig
    from adsim.generator.reward import LogisticCTR, log_impressions
    from adsim.generator.train import TrainConfig, pretrain

    torch.set_num_threads(args.threads)
    t_start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = make_config(args.preset)
    core = SelectionCore(config, 1)  # the world and the env's calibrated β0 (truth, for evaluation only)
    world, beta0 = core.world, core.beta0
    gen_cfg = GeneratorConfig(n_interest_tags=config.world.n_interest_tags)
    train_cfg = TrainConfig(corpus_size=args.corpus_size, epochs=args.epochs, seed=args.seed)
    ft_cfg = FinetuneConfig(steps=args.ft_steps, kl_coef=args.kl_coef, guard_coef=args.guard_coef,
                            seed=args.seed)

    if args.pretrained:
        model = CreativeTransformer.load(args.pretrained)
        gen_cfg = model.config
        report: dict = {"pretrain": {"loaded_from": args.pretrained, "n_params": model.n_params}}
    else:
        corpus = build_corpus(world, train_cfg.corpus_size, train_cfg.seed)
        t0 = time.time()
        model, curve = pretrain(corpus, gen_cfg, train_cfg)
        report = {"pretrain": {"seconds": round(time.time() - t0, 1), "n_params": model.n_params,
                               "final_valid_loss": curve["valid_loss"][-1]}}
        _plot_pretrain(curve, out / "training_curve.png")
    model.save(out / "pretrained")

    # evaluation requests and uniforms: fixed, shared by every model compared (common random numbers)
    rng = np.random.default_rng(np.random.SeedSequence([args.seed, 23]))
    req = sample_requests(world, args.eval_requests, rng)
    values = request_values(world, req)
    c, K = req["campaign"], config.n_candidates
    tpl = teacher(world, config.world.n_interest_tags).candidates(
        rng.random((len(c), K, 9)), req["goal"], req["category"], world.user_features[req["user"]])
    views = _views(values)
    pre = {name: CreativeGenerator(model).candidates(v, K, seed=args.seed + 1) for name, v in views.items()}
    report["pretrained_vs_template"] = {name: compare(world, beta0, req, g, tpl, args.seed) for name, g in pre.items()}
    final = model
    if not args.no_finetune:
        t0 = time.time()
        shown, clicks = log_impressions(config, args.log_steps, args.log_envs, args.seed + 100)
        n_fit = int(0.8 * len(clicks))
        if args.reward_model == "logistic":
            ctr = LogisticCTR(config.world.n_interest_tags).fit(type(shown)(*(f[:n_fit] for f in shown)),
                                                               clicks[:n_fit])
            kind = "sklearn LogisticRegression on observable features (not the truth)"
        else:  # a model of adsim.ctr, trained on its own logs (keyed by campaign id: world campaigns only)
            from adsim.ctr import LearnedCTR

            ctr = LearnedCTR.from_arg(config, args.reward_model)
            ft_cfg = dataclasses.replace(ft_cfg, synthetic_campaigns=False)
            kind = f"adsim.ctr {args.reward_model} (not the truth)"
        from sklearn.metrics import roc_auc_score

        held = type(shown)(*(f[n_fit:] for f in shown))
        auc = roc_auc_score(clicks[n_fit:], ctr.estimate(held)[:, 0])
        report["ctr_model"] = {"impressions": int(len(clicks)), "clicks": int(clicks.sum()),
                               "heldout_auc": float(auc), "seconds": round(time.time() - t0, 1),
                               "kind": kind}
        with open(out / "ctr_model.pkl", "wb") as f:
            pickle.dump(ctr, f)
        t0 = time.time()
        mon = slice(0, min(500, len(c)))  # true CTR on held-out requests, for the plot only
        mon_req = {k: v[mon] for k, v in req.items()}

        def true_monitor(m) -> float:
            return float(true_ctr(world, beta0, mon_req, CreativeGenerator(m).candidates(
                values[mon], K, seed=args.seed + 1)).mean())

        final, ft_curve = finetune(model, world, ctr, ft_cfg, monitor=true_monitor)
        report["finetune_seconds"] = round(time.time() - t0, 1)
        post = {name: CreativeGenerator(final).candidates(v, K, seed=args.seed + 1) for name, v in views.items()}
        report["finetuned_vs_template"] = {name: compare(world, beta0, req, g, tpl, args.seed)
                                           for name, g in post.items()}
        cat = req["category"]
        report["finetune_lift"] = {}
        for name in views:
            p_pre = true_ctr(world, beta0, req, pre[name]).mean(1)
            p_post = true_ctr(world, beta0, req, post[name]).mean(1)
            report["finetune_lift"][name] = {
                "true_ctr_before": float(p_pre.mean()), "true_ctr_after": float(p_post.mean()),
                **bootstrap_ratio(p_post, p_pre, args.seed),
                "well_formed_before": well_formedness(pre[name], cat),
                "well_formed_after": well_formedness(post[name], cat)}
        _plot_finetune(ft_curve, ft_curve["monitor"], out / "finetune_curve.png")
    final.save(out)
    report["total_seconds"] = round(time.time() - t_start, 1)
    meta = {"git_commit": _git_commit(), "preset": args.preset, "generator": dataclasses.asdict(gen_cfg),
            "train": dataclasses.asdict(train_cfg), "finetune": None if args.no_finetune else dataclasses.asdict(ft_cfg),
            "eval_requests": args.eval_requests, "torch_threads": torch.get_num_threads()}
    (out / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.results:
        res = Path(args.results)
        res.mkdir(parents=True, exist_ok=True)
        for name in ("report.json", "config.json", "training_curve.png", "finetune_curve.png"):
            if (out / name).exists():
                shutil.copy(out / name, res / name)
    print(json.dumps(report, indent=2))
    return 0
