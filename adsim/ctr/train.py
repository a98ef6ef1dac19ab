"""Training: Adam on mini-batches of encoded impressions, early stopping on a validation split.

Objective: mean log loss + ``l2/2 · ‖w‖²`` on the linear weights (scikit-learn's
``LogisticRegression(C)`` on ``n`` rows is ``l2 = 1 / (C·n)``) + Adam's ``weight_decay`` on the
deep part. All randomness (initialisation, split, shuffling, dropout) flows from
``TrainConfig.seed`` in one block of :func:`fit`, inside ``torch.random.fork_rng`` so the global
torch RNG is left untouched.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from adsim.ctr.data import Impressions
from adsim.ctr.features import Encoded, FeatureSpec
from adsim.ctr.models import ModelConfig
from adsim.ctr.predictor import CTRPredictor
from adsim.validation import check_choice, check_device, check_float, check_int, check_seed

EVAL_BATCH = 1 << 16


@dataclass(frozen=True)
class TrainConfig:
    """How a CTR model is trained."""

    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 2048
    """Impressions per mini-batch."""
    max_epochs: int = 30
    """Upper bound on passes over the training split."""
    patience: int = 4
    """Stop after this many epochs without a better validation log loss (best weights are kept)."""
    val_fraction: float = 0.1
    """Share of the data held out for early stopping (0 = no early stopping, run ``max_epochs``)."""
    l2: float = 0.0
    """Penalty ``l2/2·‖w‖²`` on the linear weights."""
    weight_decay: float = 0.0
    """Adam weight decay on the deep part (MLP, cross layers, head)."""
    seed: int = 0
    """Seed of initialisation, split, shuffling and dropout."""
    calibrate_intercept: bool = True
    """After training, shift the intercept so the mean prediction on all given rows equals their CTR
    (Adam's noise and early stopping otherwise leave the mean a few per cent off)."""
    device: str = "cpu"
    """torch device of training: ``"cpu"``, ``"cuda"`` / ``"cuda:N"`` or ``"auto"`` (CUDA when
    available); the trained predictor stays there. On the CPU the results do not depend on it."""

    def __post_init__(self):
        check_float("lr", self.lr, 0.0, 10.0, open_low=True)
        check_int("batch_size", self.batch_size, 1)
        check_int("max_epochs", self.max_epochs, 1)
        check_int("patience", self.patience, 1)
        check_float("val_fraction", self.val_fraction, 0.0, 0.5)
        check_float("l2", self.l2, 0.0)
        check_float("weight_decay", self.weight_decay, 0.0)
        object.__setattr__(self, "seed", check_seed(self.seed))  # a NumPy integer is stored as int
        object.__setattr__(self, "device", check_device(self.device))  # "auto" is stored resolved


LABELS = ("clicks", "truth")
"""What a model is trained on: the logged clicks, or (``truth``) each impression's true click
probability — a soft label with the same minimiser of the log loss, ``E[p | features]``, and far
less noise: a model fitted to the truth of millions of impressions shows how well *any* policy
could choose from the observed features alone (the observable-feature bound)."""


def _check_xy(enc: Encoded, y: np.ndarray, spec: FeatureSpec, labels: str = "clicks") -> None:
    if not isinstance(enc, Encoded):
        raise TypeError(f"enc must be an Encoded, got {type(enc).__name__}")
    if enc.idx.ndim != 2 or enc.idx.shape != enc.val.shape or enc.idx.shape[1] != spec.n_slots:
        raise ValueError(f"enc.idx {enc.idx.shape} / enc.val {enc.val.shape} must both be (M, {spec.n_slots})")
    if enc.idx.shape[0] == 0:
        raise ValueError("no training rows (M == 0)")
    if y.shape != (enc.idx.shape[0],):
        raise ValueError(f"labels have shape {y.shape}, expected ({enc.idx.shape[0]},)")
    if labels == "clicks" and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1 (clicks); pass labels='truth' for probabilities")
    if labels == "truth" and not (np.all(y >= 0) and np.all(y <= 1)):
        raise ValueError("labels must be probabilities in [0, 1] (labels='truth')")
    if not np.isfinite(enc.val).all():
        raise ValueError("encoded feature values contain NaN or infinity")


@torch.no_grad()
def _log_loss(model, idx, val, y) -> float:
    model.eval()
    tot = sum(F.binary_cross_entropy_with_logits(model(idx[i : i + EVAL_BATCH], val[i : i + EVAL_BATCH]),
                                                 y[i : i + EVAL_BATCH], reduction="sum").item()
              for i in range(0, idx.shape[0], EVAL_BATCH))
    model.train()
    return tot / max(idx.shape[0], 1)


def fit(spec: FeatureSpec, model_config: ModelConfig, enc: Encoded, y: np.ndarray,
        config: TrainConfig = TrainConfig(), *, init: CTRPredictor | None = None,
        progress: bool = False, labels: str = "clicks") -> tuple[CTRPredictor, list[dict]]:
    """Train a model on encoded rows (M, S) with labels (M,) in {0, 1} (or in [0, 1]: ``labels``).

    Args:
        spec, model_config: features and architecture (ignored in favour of ``init``'s if given).
        enc: encoded impressions. y: clicks.
        config: optimisation settings.
        init: fine-tune a copy of this predictor instead of a fresh model.
        progress: tqdm bar over epochs.
        labels: ``"clicks"`` (0/1) or ``"truth"`` (true click probabilities, :data:`LABELS`).

    Returns:
        The predictor with the best validation weights, and the history (one dict per epoch:
        ``epoch``, ``train_log_loss``, ``val_log_loss``, ``seconds``, ``rows_per_s``).
    """
    y = np.asarray(y)
    if init is not None:
        spec, model_config = init.spec, init.model_config
    check_choice("labels", labels, LABELS)
    _check_xy(enc, y, spec, labels)
    device = torch.device(config.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        # ---- seeding: every random draw of training comes from these three sources
        torch.manual_seed(config.seed)  # initialisation and dropout (on a GPU: its generator)
        shuffle = torch.Generator().manual_seed(config.seed + 1)  # mini-batch order (drawn on the CPU)
        split_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 11]))  # validation split
        pred = CTRPredictor(spec, model_config) if init is None else copy.deepcopy(init)
        pred.to(config.device)  # initialised on the CPU, then moved: the same weights on every device
        return pred, _train_loop(pred, enc, y, config, shuffle, split_rng, progress, fresh=init is None)


def _split(m: int, config: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_val = int(round(m * config.val_fraction))
    if config.val_fraction > 0 and (n_val < 1 or n_val >= m):
        raise ValueError(f"val_fraction == {config.val_fraction} leaves no train or validation rows of {m}")
    perm = rng.permutation(m)
    return perm[n_val:], perm[:n_val]


def _train_loop(pred: CTRPredictor, enc: Encoded, y: np.ndarray, config: TrainConfig,
                shuffle: torch.Generator, split_rng: np.random.Generator, progress: bool, fresh: bool) -> list[dict]:
    from tqdm import tqdm

    tr, va = _split(y.shape[0], config, split_rng)
    dev = pred.device
    idx, val = torch.from_numpy(enc.idx).to(dev), torch.from_numpy(enc.val).to(dev)
    yt = torch.from_numpy(y.astype(np.float32)).to(dev)
    tr, va = torch.from_numpy(tr).to(dev), torch.from_numpy(va).to(dev)
    xi, xv, xy = idx[tr], val[tr], yt[tr]
    vi, vv, vy = idx[va], val[va], yt[va]
    model = pred.model
    if fresh:  # start at the base rate: the first epochs are not spent finding the intercept
        rate = float(np.clip(xy.mean().item(), 1e-4, 1 - 1e-4))
        with torch.no_grad():
            model.bias.fill_(np.log(rate / (1 - rate)))
    model.train()
    shallow = [model.bias, model.table]
    deep = [p for n, p in model.named_parameters() if n not in ("bias", "table")]
    opt = torch.optim.Adam([{"params": shallow, "weight_decay": 0.0},
                            {"params": deep, "weight_decay": config.weight_decay}], lr=config.lr)
    history, best, best_state, bad = [], np.inf, None, 0
    for epoch in tqdm(range(config.max_epochs), desc=f"train {pred.name}", disable=not progress):
        t0 = time.perf_counter()
        train_loss = _epoch(model, opt, xi, xv, xy, config, shuffle)
        secs = time.perf_counter() - t0
        v_loss = _log_loss(model, vi, vv, vy) if va.numel() else float("nan")
        history.append({"epoch": epoch + 1, "train_log_loss": train_loss, "val_log_loss": v_loss,
                        "seconds": secs, "rows_per_s": xi.shape[0] / secs})
        if not va.numel():
            continue
        if v_loss < best - 1e-6:
            best, best_state, bad = v_loss, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    if config.calibrate_intercept:
        with torch.no_grad():
            z = torch.cat([model(idx[i : i + EVAL_BATCH], val[i : i + EVAL_BATCH])
                           for i in range(0, idx.shape[0], EVAL_BATCH)])
            model.bias += intercept_shift(z.double().cpu().numpy(), y)
    world = pred.meta.get("world")  # a fine-tuned model stays in its world
    pred.meta = {"train": dataclasses.asdict(config), "history": history}
    if world is not None:
        pred.meta["world"] = world
    return history


def _epoch(model, opt, xi, xv, xy, config: TrainConfig, shuffle: torch.Generator) -> float:
    """One pass of Adam over shuffled mini-batches; returns the mean training log loss."""
    n, total = xi.shape[0], 0.0
    perm = torch.randperm(n, generator=shuffle).to(xi.device)
    for i in range(0, n, config.batch_size):
        b = perm[i : i + config.batch_size]
        loss = F.binary_cross_entropy_with_logits(model(xi[b], xv[b]), xy[b])
        obj = loss + 0.5 * config.l2 * model.linear_weights().pow(2).sum() if config.l2 > 0 else loss
        opt.zero_grad(set_to_none=True)
        obj.backward()
        opt.step()
        total += loss.item() * b.numel()
    return total / n


def intercept_shift(logits: np.ndarray, y: np.ndarray) -> float:
    """δ such that ``mean σ(logits + δ) == mean y`` (bisection; monotone in δ)."""
    target = float(np.clip(np.mean(y), 1e-6, 1 - 1e-6))
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if np.mean(1.0 / (1.0 + np.exp(-(logits + mid)))) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def train_on_impressions(imp: Impressions, model: str | ModelConfig = "deepfm", config: TrainConfig = TrainConfig(),
                         *, spec: FeatureSpec | None = None, progress: bool = False, labels: str = "clicks"):
    """Encode logged impressions and :func:`fit` a model on them.

    Args:
        imp: logged impressions (``oracle_click_prob`` is used only with ``labels="truth"``).
        model: a model name or a :class:`ModelConfig`.
        config: optimisation settings.
        spec: feature spec (default: inferred from the impressions' user width and logging metadata).
        labels: train on the ``"clicks"`` or on the true click probabilities (``"truth"``, :data:`LABELS`).

    The model's ``meta["world"]`` is the log's world fingerprint (``None`` if the log has none).
    """
    check_choice("labels", labels, LABELS)
    mc = model if isinstance(model, ModelConfig) else ModelConfig(name=model)
    spec = spec if spec is not None else spec_for(imp)
    enc = CTRPredictor(spec, mc).encode_impressions(imp)
    y = imp.click if labels == "clicks" else imp.oracle_click_prob
    pred, history = fit(spec, mc, enc, y, config, progress=progress, labels=labels)
    pred.meta["world"] = imp.metadata.get("world")  # the world of the log: checked where the model is used
    return pred, history


def spec_for(imp: Impressions) -> FeatureSpec:
    """The :class:`FeatureSpec` matching logged impressions (tags from the user width)."""
    from adsim.observation import user_layout_for_width

    n_tags = user_layout_for_width(imp.user.shape[1]).width("interest_tags")
    world = imp.metadata.get("config", {}).get("world", {})
    n_campaigns = int(world.get("n_campaigns", int(imp.campaign_id.max()) + 1))
    return FeatureSpec(n_interest_tags=n_tags, n_campaigns=n_campaigns)


__all__ = ["TrainConfig", "fit", "train_on_impressions", "spec_for", "intercept_shift"]
