"""``adsim train-generator``: pre-train the creative generator, evaluate it against the truth, and
(optionally) fine-tune it on a learned CTR model's reward.

Writes into ``--out``: ``model.pt`` / ``model.json`` (the final generator), ``pretrained/`` (the
pre-trained one), ``ctr_model/`` (the learned reward model: JSON and arrays, no pickle), ``config.json``, ``report.json``
and the plots ``training_curve.png`` / ``finetune_curve.png``. With ``--results`` the small
report and plots are also copied there (e.g. ``results/generator``).

``--held-out-users F`` (default 0.2, as ``train-ctr``'s; ``adsim.users``) keeps a share F of the
world's users out of the pre-training corpus, the fine-tuning requests and the reward model's logs;
``report.json`` → ``users`` then holds every evaluation figure again for the evaluation requests of
the users seen in training and of the held-out ones. Both generator directories get a
``training_users.json`` recording the split, which ``--pretrained`` checks.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from experiments.options import (add_device, add_field_overrides, add_held_out_users, check_device_arg,
                                 check_held_out_users_arg, field_overrides)
from experiments.provenance import provenance


DEFAULT_RECIPE = {"preset": "personalized", "corpus_size": 40000, "epochs": 3, "seed": 0, "reward_model": "deepfm:400000",
                  "log_steps": 200, "log_envs": 512, "ft_steps": 300, "kl_coef": 0.02, "ft_lr": 1e-3, "ft_requests": 64,
                  "guard_coef": 1.0}
"""The default generator's recipe: the defaults of the options that decide its weights (with the
architecture and the pre-training / fine-tuning dataclasses' other defaults, ``GeneratorConfig``,
``TrainConfig``, ``FinetuneConfig``). ``make install`` trains exactly this into ``models/generator``
(``adsim train-generator --out models/generator --if-current``): change the default generator here."""

RECIPE_CODE = ("adsim.creative.lexicon", "adsim.creative.parser", "adsim.creative.sampler", "adsim.generator.conditioning",
               "adsim.generator.decode", "adsim.generator.finetune", "adsim.generator.model", "adsim.generator.reward",
               "adsim.generator.tokenizer", "adsim.generator.train")
"""The modules whose source the trained weights depend on besides the world (the teacher, the
tokenizer, the model, its training and its reward): a change to any of them makes a saved
generator out of date for ``--if-current``. The world's code is covered by its fingerprint."""


def register(sub) -> None:
    r = DEFAULT_RECIPE
    p = sub.add_parser("train-generator", help="train the Transformer creative generator (CPU, minutes)")
    p.add_argument("--out", required=True, help="output directory (weights, config, curves, report)")
    p.add_argument("--if-current", action="store_true",
                   help="do nothing if --out already holds a generator trained with exactly this recipe "
                        "(config.json's 'recipe': these options, the world's fingerprint and the training code); "
                        "else train it (what `make install` runs)")
    p.add_argument("--preset", default=r["preset"], help="env preset whose world is used")
    add_field_overrides(p)
    p.add_argument("--corpus-size", type=int, default=r["corpus_size"])
    p.add_argument("--epochs", type=int, default=r["epochs"])
    p.add_argument("--seed", type=int, default=r["seed"])
    p.add_argument("--no-finetune", action="store_true", help="stop after pre-training")
    p.add_argument("--log-steps", type=int, default=r["log_steps"], help="logged steps for the learned CTR model")
    p.add_argument("--log-envs", type=int, default=r["log_envs"], help="request slots per logged step")
    p.add_argument("--ft-steps", type=int, default=r["ft_steps"])
    p.add_argument("--kl-coef", type=float, default=r["kl_coef"])
    p.add_argument("--ft-lr", type=float, default=r["ft_lr"], help="fine-tuning Adam learning rate")
    p.add_argument("--ft-requests", type=int, default=r["ft_requests"],
                   help="fine-tuning requests per step (K samples each)")
    p.add_argument("--guard-coef", type=float, default=r["guard_coef"],
                   help="reward penalty per public well-formedness flag (0 = unguarded)")
    p.add_argument("--reward-model", default=r["reward_model"],
                   help="learned CTR model for the reward: 'logistic' (scikit-learn, trained here on the logs), "
                        "or an adsim.ctr model: a saved model's path or NAME:IMPRESSIONS, e.g. deepfm:100000")
    p.add_argument("--pretrained", default=None, help="reuse this pre-trained generator instead of training one")
    p.add_argument("--eval-requests", type=int, default=2000)
    add_held_out_users(p, "the evaluation figures (true CTR vs template, fine-tuning lift, well-formedness, "
                          "the reward model's AUC)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these tiny ops)")
    add_device(p)
    p.add_argument("--results", default=None, help="also copy report and plots here (e.g. results/generator)")
    p.set_defaults(func=run)


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


class _EvalSet:
    """Held-out requests of the world's campaigns, their template candidates, and the conditionings
    evaluated; the same uniforms for every model compared (common random numbers)."""

    def __init__(self, world, beta0: float, K: int, n: int, seed: int):
        from adsim.generator.conditioning import request_values, teacher

        self.world, self.beta0, self.K, self.seed = world, beta0, K, seed
        self.req, rng = self._draw(world, n, seed)
        self.values = request_values(world, self.req)
        self.template = teacher(world, world.config.n_interest_tags).candidates(
            rng.random((n, K, 9)), self.req["goal"], self.req["category"], world.user_features[self.req["user"]])
        self.views = _views(self.values)

    def candidates(self, model) -> dict:
        from adsim.generator.generate import CreativeGenerator

        gen = CreativeGenerator(model)
        return {name: gen.candidates(v, self.K, seed=self.seed + 1) for name, v in self.views.items()}

    def compare(self, cands: dict, rows=slice(None)) -> dict:
        """Truth-based report per conditioning on the requests ``rows`` (default: all)."""
        from adsim.generator.evaluate import compare

        req = {k: v[rows] for k, v in self.req.items()}
        return {name: compare(self.world, self.beta0, req, c[rows], self.template[rows], self.seed)
                for name, c in cands.items()}

    def lift(self, pre: dict, post: dict, rows=slice(None)) -> dict:
        """True-CTR lift of ``post`` over ``pre`` per conditioning on the requests ``rows`` (default: all)."""
        from adsim.generator.evaluate import bootstrap_ratio, true_ctr, well_formedness

        req = {k: v[rows] for k, v in self.req.items()}
        out = {}
        for name in self.views:
            p_pre = true_ctr(self.world, self.beta0, req, pre[name][rows]).mean(1)
            p_post = true_ctr(self.world, self.beta0, req, post[name][rows]).mean(1)
            out[name] = {"true_ctr_before": float(p_pre.mean()), "true_ctr_after": float(p_post.mean()),
                         **bootstrap_ratio(p_post, p_pre, self.seed),
                         "well_formed_before": well_formedness(pre[name][rows], req["category"]),
                         "well_formed_after": well_formedness(post[name][rows], req["category"])}
        return out

    def personalisation(self, cands: dict | None = None) -> dict:
        """Personalisation lift (:func:`adsim.generator.evaluate.personalisation_lift`) of a model's
        candidates per conditioning, or of the template sampler's with ``cands`` None."""
        from adsim.generator.evaluate import personalisation_lift

        if cands is None:
            return personalisation_lift(self.world, self.beta0, self.req, self.template, self.seed)
        return {name: personalisation_lift(self.world, self.beta0, self.req, c, self.seed) for name, c in cands.items()}

    def baselines(self, cands: dict, ctr, view: str = "full") -> dict:
        """A model's candidates (conditioning ``view``) against the fair baselines
        (:func:`adsim.generator.evaluate.fair_baselines`), the picks made by the learned CTR model ``ctr``."""
        from adsim.generator.conditioning import request_observation
        from adsim.generator.evaluate import fair_baselines

        obs = request_observation(self.world, self.req)
        scores = lambda c: ctr.estimate(obs._replace(candidates=c))  # noqa: E731
        return fair_baselines(self.world, self.beta0, self.req, cands[view], self.template, scores(cands[view]),
                              scores(self.template), self.seed)

    @staticmethod
    def _draw(world, n: int, seed: int):
        """The ``n`` evaluation requests of ``seed``, and the generator that drew them (it goes on to
        draw the template candidates' uniforms)."""
        import numpy as np

        from adsim.generator.conditioning import sample_requests

        rng = np.random.default_rng(np.random.SeedSequence([seed, 23]))
        return sample_requests(world, n, rng), rng

    @staticmethod
    def users(world, n: int, seed: int):
        """(n,) the users of the ``n`` evaluation requests of ``seed`` (without building the set)."""
        return _EvalSet._draw(world, n, seed)[0]["user"]

    def held_out(self, fraction: float, seed: int):
        """(n,) bool: whether each evaluation request's user is held out (``adsim.users``)."""
        from adsim.users import held_out_users

        return held_out_users(self.world.user_features[self.req["user"]], fraction, seed)

    def true_monitor(self, n: int = 500):
        """True CTR of a model's candidates on the first ``n`` requests (for the plot only)."""
        from adsim.generator.evaluate import true_ctr
        from adsim.generator.generate import CreativeGenerator

        req = {k: v[:n] for k, v in self.req.items()}
        return lambda m: float(true_ctr(self.world, self.beta0, req, CreativeGenerator(m).candidates(
            self.values[:n], self.K, seed=self.seed + 1)).mean())


def _views(values):
    """The conditionings evaluated: everything known (``full``); what the env's candidate source
    passes (``env_source``: no price tier/discount, no context); a campaign pool (``pool``: goal
    and category only)."""
    from adsim.generator.conditioning import (
        F_CONTEXT,
        F_DEMO,
        F_DISC,
        F_TIER,
        F_TOPCAT,
        NONE,
    )

    src = values.copy()
    src[:, F_TIER : F_DISC + 1] = NONE
    src[:, F_CONTEXT] = NONE
    pool = src.copy()
    pool[:, F_DEMO] = NONE
    pool[:, F_DEMO.stop : F_TOPCAT + 1] = NONE
    return {"full": values, "env_source": src, "pool": pool}


def _pretrain_stage(args, config, world, out: Path, users=None):
    """A pre-trained model (trained now, or loaded with ``--pretrained``) and its report entry;
    ``users``: the ids the corpus may draw users from (None: all)."""
    from adsim.generator.conditioning import build_corpus
    from adsim.generator.model import CreativeTransformer, GeneratorConfig
    from adsim.generator.train import TrainConfig, pretrain

    train_cfg = TrainConfig(corpus_size=args.corpus_size, epochs=args.epochs, seed=args.seed, device=args.device)
    if args.pretrained:
        model = CreativeTransformer.load(args.pretrained, args.device)
        return model, train_cfg, {"loaded_from": args.pretrained, "n_params": model.n_params}
    t0 = time.time()
    corpus = build_corpus(world, train_cfg.corpus_size, train_cfg.seed, users=users)
    model, curve = pretrain(corpus, GeneratorConfig(n_interest_tags=config.world.n_interest_tags), train_cfg)
    _plot_pretrain(curve, out / "training_curve.png")
    return model, train_cfg, {"seconds": round(time.time() - t0, 1), "n_params": model.n_params,
                              "final_valid_loss": curve["valid_loss"][-1]}


def _reward_model(args, config, world, ft_cfg, out: Path):
    """The learned CTR model of the reward, the fine-tuning config it needs, and its report entry."""
    from sklearn.metrics import roc_auc_score

    from adsim.generator.reward import LogisticCTR, log_impressions, save_reward_model

    import numpy as np

    from adsim.users import held_out_users

    t0 = time.time()
    shown, clicks = log_impressions(config, args.log_steps, args.log_envs, args.seed + 100)
    logged = len(clicks)
    held_mask = held_out_users(shown.user_features, args.held_out_users, args.seed)  # all False without a split
    take = lambda rows: type(shown)(*(f[rows] for f in shown))  # noqa: E731
    other, other_clicks = take(held_mask), clicks[held_mask]  # impressions of held-out users: never fitted
    shown, clicks = take(~held_mask), clicks[~held_mask]
    n_fit = int(0.8 * len(clicks))
    fit, held = take(slice(None, n_fit)), take(slice(n_fit, None))
    if args.reward_model == "logistic":
        ctr = LogisticCTR(config.world.n_interest_tags).fit(fit, clicks[:n_fit])
        kind = "sklearn LogisticRegression on observable features (not the truth)"
    else:  # a model of adsim.ctr, trained on its own logs (keyed by campaign id: world campaigns only)
        from adsim.ctr import LearnedCTR

        ctr = LearnedCTR.from_arg(config, args.reward_model, device=args.device,
                                  held_out_users=args.held_out_users, split_seed=args.seed)
        ft_cfg = dataclasses.replace(ft_cfg, synthetic_campaigns=False)
        kind = f"adsim.ctr {args.reward_model} (not the truth)"
    auc = roc_auc_score(clicks[n_fit:], ctr.estimate(held)[:, 0])
    save_reward_model(ctr, out / "ctr_model", world)
    entry = {"impressions": int(logged), "clicks": int(clicks.sum() + other_clicks.sum()), "heldout_auc": float(auc),
             "seconds": round(time.time() - t0, 1), "kind": kind}
    if args.held_out_users > 0:  # heldout_auc: later impressions of seen users; and the users never fitted
        both = len(np.unique(other_clicks)) == 2
        entry["users"] = {"fraction": args.held_out_users, "fit_impressions": n_fit,
                          "test_impressions": {"seen": int(len(clicks) - n_fit), "held_out": int(len(other_clicks))},
                          "auc": {"seen": float(auc),
                                  "held_out": float(roc_auc_score(other_clicks, ctr.estimate(other)[:, 0]))
                                  if both else None}}
    return ctr, ft_cfg, entry


TRAINING_USERS = "training_users.json"
"""The held-out user split a generator was trained with, written beside its ``model.json``."""


def _training_users(args, world) -> dict:
    n_held = 0
    if args.held_out_users > 0:
        from adsim.users import held_out_users

        n_held = int(held_out_users(world.user_features, args.held_out_users, args.seed).sum())
    return {"held_out_users": args.held_out_users, "split_seed": args.seed, "n_users": int(len(world.user_features)),
            "n_held_out": n_held}


def _check_options(args) -> None:
    """Everything that can be checked before any work: the held-out share, and that the reward model
    and a ``--pretrained`` generator keep to the same split (their training users are known)."""
    check_held_out_users_arg(args)
    if args.held_out_users == 0:
        return
    if not args.no_finetune and args.reward_model != "logistic":
        from adsim.ctr.learned import parse_ctr_arg

        if parse_ctr_arg(args.reward_model) is None:
            raise ValueError(f"--reward-model {args.reward_model!r} is a saved model, whose training users are not "
                             f"known: with --held-out-users {args.held_out_users} give NAME:IMPRESSIONS (trained here "
                             f"without the held-out users, e.g. deepfm:100000), or --held-out-users 0")
    if args.pretrained:
        path = Path(args.pretrained) / TRAINING_USERS
        doc = json.loads(path.read_text()) if path.exists() else None
        want = {"held_out_users": args.held_out_users, "split_seed": args.seed}
        if doc is None or {k: doc.get(k) for k in want} != want:
            got = "has no record of its training users" if doc is None else (
                f"was trained with --held-out-users {doc.get('held_out_users')} --seed {doc.get('split_seed')}")
            raise ValueError(f"--pretrained {args.pretrained!r} {got}: with --held-out-users {args.held_out_users} "
                             f"--seed {args.seed} it must be one trained with that split (or pass "
                             f"--held-out-users 0)")


def _check_eval_split(args, world) -> None:
    """With a user split, the evaluation requests must hold users of both splits (checked on the
    world, before training)."""
    if args.held_out_users == 0:
        return
    from adsim.users import held_out_users

    users = _EvalSet.users(world, args.eval_requests, args.seed)
    n_held = int(held_out_users(world.user_features[users], args.held_out_users, args.seed).sum())
    if n_held in (0, args.eval_requests):
        raise ValueError(f"--eval-requests {args.eval_requests} gives {n_held} requests of held-out users "
                         f"(--held-out-users {args.held_out_users}): both splits need some, raise --eval-requests")


def by_users(args, ev: _EvalSet, pre: dict, post: dict | None) -> dict | None:
    """Every evaluation figure again on the evaluation requests of the users seen in training and of
    the held-out users (None without a user split)."""
    if args.held_out_users == 0:
        return None
    held = ev.held_out(args.held_out_users, args.seed)
    out = {"fraction": args.held_out_users, "eval_requests": {"seen": int((~held).sum()), "held_out": int(held.sum())}}
    for name, rows in (("seen", ~held), ("held_out", held)):
        out[name] = {"pretrained_vs_template": ev.compare(pre, rows)}
        if post is not None:
            out[name]["finetuned_vs_template"] = ev.compare(post, rows)
            out[name]["finetune_lift"] = ev.lift(pre, post, rows)
    return out


def _users_summary(u: dict) -> str:
    """One line: the full-conditioning true CTRs on seen / held-out users."""
    def pct(x):
        return f"{100 * x:.2f} %"

    s, h = u["seen"], u["held_out"]
    parts = [f"template {pct(s['pretrained_vs_template']['full']['true_ctr']['template'])} / "
             f"{pct(h['pretrained_vs_template']['full']['true_ctr']['template'])}",
             f"pre-trained {pct(s['pretrained_vs_template']['full']['true_ctr']['generated'])} / "
             f"{pct(h['pretrained_vs_template']['full']['true_ctr']['generated'])}"]
    if "finetune_lift" in s:
        parts += [f"fine-tuned {pct(s['finetuned_vs_template']['full']['true_ctr']['generated'])} / "
                  f"{pct(h['finetuned_vs_template']['full']['true_ctr']['generated'])}",
                  f"fine-tuning lift {s['finetune_lift']['full']['lift']:+.1%} / {h['finetune_lift']['full']['lift']:+.1%}"]
    return (f"true CTR on users seen in training ({u['eval_requests']['seen']:,} requests) / held out "
            f"({u['eval_requests']['held_out']:,} requests, {u['fraction']:.0%} of users): " + ", ".join(parts))


BASELINE_ROWS = (
    ("template_mean", "(a) template sampler, mean candidate"),
    ("template_model_pick", "(b) template, best of K by the learned CTR model"),
    ("template_truth_pick", "(c) template, best of K by the truth"),
    ("lexicon_best", "(d) best creative the lexicon allows (oracle search)"),
    ("generated_mean", "generator, mean candidate"),
    ("generated_model_pick", "generator, best of K by the learned CTR model"),
    ("generated_truth_pick", "generator, best of K by the truth"),
)


def evaluation_table(report: dict) -> str:
    """Markdown tables of a report's fair baselines and personalisation lifts (``tables.md``)."""
    def ci(d, key="lift", ci_key="ci95"):
        return f"{d[key]:+.1%} [{d[ci_key][0]:+.1%}, {d[ci_key][1]:+.1%}]"

    lines = []
    fb = report.get("fair_baselines")
    if fb:
        models = [m for m in ("pretrained", "finetuned") if m in fb]
        lines += [f"Fair baselines: true CTR on {fb[models[0]]['n_requests']:,} evaluation requests, K = "
                  f"{fb[models[0]]['K']}, full conditioning; lift of the generator's model pick over each row "
                  "(95 % paired bootstrap); the learned model's estimate of its own picks (reward hacking).", "",
                  "| candidates | " + " | ".join(f"{m} true CTR | {m} model pick vs this" for m in models) + " |",
                  "|---|" + "---|---|" * len(models)]
        for key, label in BASELINE_ROWS:
            cells = []
            for m in models:
                t = fb[m]["true_ctr"][key]
                vs = fb[m]["generated_model_pick_vs"].get(key)
                if key.startswith("generated"):
                    cells += [f"{100 * t:.2f} %", ""]
                else:
                    cells += [f"{100 * t:.2f} %", ci(vs) if vs else ""]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        for key in ("template_model_pick", "generated_model_pick"):
            cells = []
            for m in models:
                h = fb[m]["reward_hacking"][key]
                cells += [f"est. {100 * h['estimated_ctr']:.2f} % vs true {100 * h['true_ctr']:.2f} %",
                          f"{h['overestimate']:+.0%}"]
            lines.append(f"| learned model's estimate of {key.replace('_', ' ')} | " + " | ".join(cells) + " |")
        lines.append("")
    pl = report.get("personalisation_lift")
    if pl:
        lines += ["Personalisation lift: true CTR of each request's candidates for its own user against the same "
                  "candidates shown to another user of the same campaign (95 % paired bootstrap).", "",
                  "| candidates | conditioning | own user | other user | lift |", "|---|---|---|---|---|"]
        d = pl["template"]
        lines.append(f"| template sampler | | {100 * d['own_user_ctr']:.2f} % | {100 * d['other_user_ctr']:.2f} % | "
                     f"{ci(d)} |")
        for m in ("pretrained", "finetuned"):
            for view, d in pl.get(m, {}).items():
                lines.append(f"| {m} | {view} | {100 * d['own_user_ctr']:.2f} % | {100 * d['other_user_ctr']:.2f} % "
                             f"| {ci(d)} |")
        lines.append("")
    return "\n".join(lines)


def _write(args, out: Path, report: dict, meta: dict) -> None:
    (out / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "tables.md").write_text(evaluation_table(report))
    if args.results:
        res = Path(args.results)
        res.mkdir(parents=True, exist_ok=True)
        for name in ("report.json", "config.json", "tables.md", "training_curve.png", "finetune_curve.png"):
            if (out / name).exists():
                shutil.copy(out / name, res / name)


def _finetune_config(args):
    """The fine-tuning config of ``args`` (None with ``--no-finetune``); an ``adsim.ctr`` reward model
    is keyed by campaign id, so it fine-tunes on the world's campaigns only."""
    from adsim.generator.finetune import FinetuneConfig

    if args.no_finetune:
        return None
    return FinetuneConfig(steps=args.ft_steps, kl_coef=args.kl_coef, guard_coef=args.guard_coef, lr=args.ft_lr,
                          requests_per_step=args.ft_requests, seed=args.seed,
                          synthetic_campaigns=args.reward_model == "logistic")


def _file_digest(path: Path) -> str | None:
    """A hash of the file ``path`` (None if there is none)."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


def _dir_digest(path: Path) -> str | None:
    """A hash of every file under ``path`` (a saved model's directory; None if there is none)."""
    import hashlib

    if not path.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def code_fingerprint() -> str:
    """A hash of the code of :data:`RECIPE_CODE` (what the weights depend on besides the world); an
    edit of comments or docstrings leaves it unchanged."""
    from adsim.codehash import code_fingerprint as fingerprint

    return fingerprint(RECIPE_CODE)


def recipe(args, config, world) -> dict:
    """Everything the generator ``args`` train depends on, as JSON: the world (its fingerprint), the
    training code (:func:`code_fingerprint`), the architecture, pre-training (or the ``--pretrained``
    weights' digest), the reward model's logs and kind, fine-tuning, the user split, torch's threads
    and device. Not the evaluation (``--eval-requests``) or where results are copied: they do not
    change the weights. ``config.json`` records it; ``--if-current`` compares it."""
    from adsim.generator.model import GeneratorConfig
    from adsim.generator.train import TrainConfig

    ft_cfg = _finetune_config(args)
    pretrain = ({"from": str(args.pretrained), "model_pt": _file_digest(Path(args.pretrained) / "model.pt")}
                if args.pretrained else
                {"generator": dataclasses.asdict(GeneratorConfig(n_interest_tags=config.world.n_interest_tags)),
                 "train": dataclasses.asdict(TrainConfig(corpus_size=args.corpus_size, epochs=args.epochs,
                                                         seed=args.seed, device=args.device))})
    reward = None if ft_cfg is None else {"model": args.reward_model, "log_steps": args.log_steps,
                                          "log_envs": args.log_envs, "saved": _dir_digest(Path(args.reward_model))}
    return {"world": world.fingerprint, "code": code_fingerprint(), "preset": args.preset,
            "fields": field_overrides(args), "pretrain": pretrain, "reward": reward,
            "finetune": None if ft_cfg is None else dataclasses.asdict(ft_cfg),
            "held_out_users": args.held_out_users, "split_seed": args.seed, "torch_threads": args.threads,
            "device": args.device}


def is_current(out: Path, want: dict) -> bool:
    """Whether ``out`` holds a generator (``model.pt``, ``model.json``) whose ``config.json`` records
    the recipe ``want``."""
    path = out / "config.json"
    if not ((out / "model.pt").is_file() and (out / "model.json").is_file() and path.is_file()):
        return False
    try:
        return json.loads(path.read_text()).get("recipe") == want
    except (ValueError, AttributeError):  # an unreadable or foreign config.json: not current
        return False


def run(args) -> int:
    import sys

    import torch

    from adsim import make_config
    from adsim.selection import SelectionCore
    from adsim.generator.finetune import finetune
    from adsim.users import seen_user_ids
    from adsim.world import cached_world

    check_device_arg(args)
    _check_options(args)
    config = make_config(args.preset, **field_overrides(args))
    _check_eval_split(args, cached_world(config.world))
    out = Path(args.out)
    want = recipe(args, config, cached_world(config.world))
    if args.if_current and is_current(out, want):
        print(f"adsim train-generator: {out} already holds a generator trained with this recipe "
              f"(its config.json); nothing to do", file=sys.stderr)
        return 0
    torch.set_num_threads(args.threads)
    t_start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").unlink(missing_ok=True)  # an interrupted run never looks current
    core = SelectionCore(config, 1)  # the world and the env's calibrated β0 (truth, for evaluation only)
    ev = _EvalSet(core.world, core.beta0, config.n_candidates, args.eval_requests, args.seed)
    seen = None  # training never draws a held-out user; evaluation draws every user
    if args.held_out_users > 0:
        seen = seen_user_ids(core.world.user_features, args.held_out_users, args.seed)
    users_doc = _training_users(args, core.world)
    model, train_cfg, report = _pretrain_stage(args, config, core.world, out, seen)
    report = {"pretrain": report}
    model.save(out / "pretrained")
    (out / "pretrained" / TRAINING_USERS).write_text(json.dumps(users_doc, indent=2) + "\n")
    pre = ev.candidates(model)
    report["pretrained_vs_template"] = ev.compare(pre)
    report["personalisation_lift"] = {"template": ev.personalisation(), "pretrained": ev.personalisation(pre)}
    final, ft_cfg, post = model, _finetune_config(args), None
    if not args.no_finetune:
        ctr, ft_cfg, report["ctr_model"] = _reward_model(args, config, core.world, ft_cfg, out)
        t0 = time.time()
        final, ft_curve = finetune(model, core.world, ctr, ft_cfg, monitor=ev.true_monitor(), users=seen)
        report["finetune_seconds"] = round(time.time() - t0, 1)
        post = ev.candidates(final)
        report["finetuned_vs_template"] = ev.compare(post)
        report["finetune_lift"] = ev.lift(pre, post)
        report["personalisation_lift"]["finetuned"] = ev.personalisation(post)
        report["fair_baselines"] = {"pretrained": ev.baselines(pre, ctr), "finetuned": ev.baselines(post, ctr)}
        _plot_finetune(ft_curve, ft_curve["monitor"], out / "finetune_curve.png")
    report["users"] = by_users(args, ev, pre, post)
    final.save(out)
    (out / TRAINING_USERS).write_text(json.dumps(users_doc, indent=2) + "\n")
    report["total_seconds"] = round(time.time() - t_start, 1)
    meta = {**provenance(), "recipe": want, "preset": args.preset, "fields": field_overrides(args), "generator": dataclasses.asdict(model.config),
            "pretrained_from": args.pretrained, "train": dataclasses.asdict(train_cfg),
            "finetune": None if ft_cfg is None else dataclasses.asdict(ft_cfg),
            "reward_model": None if args.no_finetune else args.reward_model,
            "eval_requests": args.eval_requests, "training_users": users_doc,
            "torch_threads": torch.get_num_threads()}
    _write(args, out, report, meta)
    print(json.dumps(report, indent=2))
    if report["users"]:
        print(_users_summary(report["users"]), file=sys.stderr)
    return 0
