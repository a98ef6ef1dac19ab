"""Pre-training on the teacher corpus (maximum likelihood, teacher forcing)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from adsim.creative.lexicon import MAX_PHRASES
from adsim.generator.conditioning import Corpus, to_tokens
from adsim.generator.model import MAX_DECODE, CreativeTransformer, GeneratorConfig, loss_fn
from adsim.generator.tokenizer import BOS, PAD, SEP, Vocab
from adsim.validation import check_device, check_float, check_int, check_seed


@dataclass(frozen=True)
class TrainConfig:
    """Pre-training hyperparameters."""

    corpus_size: int = 60000
    """Teacher pairs in the corpus."""
    epochs: int = 3
    """Passes over the corpus."""
    batch_size: int = 256
    """Pairs per gradient step."""
    lr: float = 2e-3
    """Peak AdamW learning rate (linear warm-up, cosine decay)."""
    valid_frac: float = 0.05
    """Share of the corpus held out for the validation loss."""
    seed: int = 0
    """Seed of the corpus, the initialisation and the batch order."""
    device: str = "cpu"
    """torch device of training: ``"cpu"``, ``"cuda"`` / ``"cuda:N"`` or ``"auto"`` (CUDA when
    available); the model is initialised on the CPU (the same weights on every device), then moved."""

    def __post_init__(self):
        check_int("corpus_size", self.corpus_size, 20)
        check_int("epochs", self.epochs, 1, 1000)
        check_int("batch_size", self.batch_size, 1)
        check_float("lr", self.lr, 0.0, 1.0, open_low=True)
        check_float("valid_frac", self.valid_frac, 0.0, 0.5, open_low=True)
        object.__setattr__(self, "seed", check_seed(self.seed))  # a NumPy integer is stored as int
        object.__setattr__(self, "device", check_device(self.device))  # "auto" is stored resolved


def creatives_to_tokens(creatives: np.ndarray, vocab: Vocab) -> np.ndarray:
    """Creative id vectors (M, CREATIVE_SLOTS) → decoder targets (M, MAX_DECODE), ``<pad>``-filled.

    Phrase slots are packed left (empty slots dropped), then ``<sep>`` and the attributes.
    """
    slots = creatives[:, :MAX_PHRASES]
    M = slots.shape[0]
    n_text = (slots > 0).sum(1)
    order = np.argsort(slots == 0, axis=1, kind="stable")  # non-empty first, in order
    packed = np.take_along_axis(slots, order, 1)
    out = np.full((M, MAX_DECODE), PAD, dtype=np.int64)
    pos = np.arange(MAX_PHRASES)
    out[:, :MAX_PHRASES] = np.where(pos < n_text[:, None], packed - 1 + vocab.phrase_offset, PAD)
    rows = np.arange(M)
    out[rows, n_text] = SEP
    attrs = creatives[:, MAX_PHRASES : MAX_PHRASES + 4] + vocab.attr_kind_offsets
    for k in range(attrs.shape[1]):
        out[rows, n_text + 1 + k] = attrs[:, k]
    return out


def _tensors(corpus: Corpus, vocab: Vocab):
    cond = torch.as_tensor(to_tokens(corpus.values, vocab))
    target = torch.as_tensor(creatives_to_tokens(corpus.creatives, vocab))
    dec_in = torch.cat([torch.full((target.shape[0], 1), BOS), target[:, :-1]], 1)
    return cond, dec_in, target


def pretrain(corpus: Corpus, model_config: GeneratorConfig, config: TrainConfig,
             progress: bool = True) -> tuple[CreativeTransformer, dict[str, list[float]]]:
    """Train a fresh model on ``corpus``; returns it (eval mode) and the curve (per-step train loss,
    per-epoch validation loss)."""
    torch.manual_seed(config.seed)  # the one torch seed: initialisation
    order_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 11]))
    model = CreativeTransformer(model_config).to(config.device)
    cond, dec_in, target = (t.to(config.device) for t in _tensors(corpus, model.vocab))
    n_valid = max(1, int(config.valid_frac * cond.shape[0]))
    train_idx = np.arange(n_valid, cond.shape[0])
    steps_per_epoch = max(1, len(train_idx) // config.batch_size)
    total = steps_per_epoch * config.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(s, total) / total)))
    curve: dict[str, list[float]] = {"step_loss": [], "valid_loss": []}
    bar = tqdm(total=total, desc="pretrain generator", disable=not progress)
    for _ in range(config.epochs):
        model.train()
        perm = order_rng.permutation(train_idx)
        for s in range(steps_per_epoch):
            b = torch.as_tensor(perm[s * config.batch_size : (s + 1) * config.batch_size]).to(config.device)
            loss = loss_fn(model(cond[b], dec_in[b]), target[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            curve["step_loss"].append(loss.item())
            bar.update()
        model.eval()
        with torch.no_grad():
            curve["valid_loss"].append(float(loss_fn(model(cond[:n_valid], dec_in[:n_valid]), target[:n_valid])))
        bar.set_postfix(valid=f"{curve['valid_loss'][-1]:.3f}")
    bar.close()
    return model.eval(), curve
