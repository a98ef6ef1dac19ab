"""A small encoder–decoder Transformer: conditioning fields in, creative tokens out.

Pre-LayerNorm blocks written out (so the decoder can keep a key–value cache): the encoder reads
the :data:`~adsim.generator.tokenizer.N_FIELDS` conditioning tokens (token + field embedding, no
mask); the decoder writes ``phrase* <sep> template color image_style cta`` with causal
self-attention, cross-attention to the encoder, and an output layer tied to the token embedding.

``decode_step`` advances the decoder by one token for a batch, writing keys and values into a
preallocated cache, so each new token costs one position instead of the whole prefix.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from adsim.creative.lexicon import MAX_PHRASES
from adsim.creative.sampler import N_ATTRS
from adsim.generator.tokenizer import N_FIELDS, PAD, Vocab
from adsim.validation import check_device, check_float, check_int

MAX_DECODE = MAX_PHRASES + 1 + N_ATTRS
"""Longest decoder output: up to MAX_PHRASES phrases, ``<sep>``, one token per visual attribute."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of the generator."""

    n_interest_tags: int = 8
    """Interest tags of the world the conditioning comes from."""
    d_model: int = 64
    """Width of every layer."""
    n_heads: int = 4
    """Attention heads (must divide ``d_model``)."""
    n_enc_layers: int = 2
    """Encoder blocks."""
    n_dec_layers: int = 1
    """Decoder blocks."""
    d_ff: int = 128
    """Hidden width of the feed-forward sublayers."""
    dropout: float = 0.0
    """Dropout during training."""

    def __post_init__(self):
        check_int("n_interest_tags", self.n_interest_tags, 2, 64)
        check_int("d_model", self.d_model, 8, 1024)
        check_int("n_heads", self.n_heads, 1, 64)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model == {self.d_model} must be divisible by n_heads == {self.n_heads}")
        check_int("n_enc_layers", self.n_enc_layers, 1, 12)
        check_int("n_dec_layers", self.n_dec_layers, 1, 12)
        check_int("d_ff", self.d_ff, 8, 8192)
        check_float("dropout", self.dropout, 0.0, 0.9)


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    b, t, d = x.shape
    return x.view(b, t, h, d // h).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


class EncoderBlock(nn.Module):
    def __init__(self, c: GeneratorConfig):
        super().__init__()
        self.h = c.n_heads
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.qkv, self.out = nn.Linear(c.d_model, 3 * c.d_model), nn.Linear(c.d_model, c.d_model)
        self.ff = nn.Sequential(nn.Linear(c.d_model, c.d_ff), nn.ReLU(), nn.Linear(c.d_ff, c.d_model))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_heads(t, self.h) for t in self.qkv(self.ln1(x)).chunk(3, dim=-1))
        x = x + self.drop(self.out(_merge(F.scaled_dot_product_attention(q, k, v))))
        return x + self.drop(self.ff(self.ln2(x)))


class DecoderBlock(nn.Module):
    def __init__(self, c: GeneratorConfig):
        super().__init__()
        self.h = c.n_heads
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(c.d_model) for _ in range(3))
        self.qkv, self.out = nn.Linear(c.d_model, 3 * c.d_model), nn.Linear(c.d_model, c.d_model)
        self.cq, self.ckv = nn.Linear(c.d_model, c.d_model), nn.Linear(c.d_model, 2 * c.d_model)
        self.cout = nn.Linear(c.d_model, c.d_model)
        self.ff = nn.Sequential(nn.Linear(c.d_model, c.d_ff), nn.ReLU(), nn.Linear(c.d_ff, c.d_model))
        self.drop = nn.Dropout(c.dropout)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys and values of the encoder output (B, S, D) → 2 × (B, H, S, Dh)."""
        k, v = self.ckv(memory).chunk(2, dim=-1)
        return _heads(k, self.h), _heads(v, self.h)

    def _cross_ff(self, x, mk, mv):
        q = _heads(self.cq(self.ln2(x)), self.h)
        x = x + self.drop(self.cout(_merge(F.scaled_dot_product_attention(q, mk, mv))))
        return x + self.drop(self.ff(self.ln3(x)))

    def _cross_ff_grouped(self, x, mk, mv):
        """:meth:`_cross_ff` of one position (B, 1, D) whose rows come in groups of ``g = B / R``
        consecutive rows sharing one encoder memory (R, H, S, Dh): each group's g queries attend to
        their memory at once (one (g × S) attention per group and head, not g repeats of the memory)."""
        B, _, D = x.shape
        R = mk.shape[0]
        if R == B:
            return self._cross_ff(x, mk, mv)
        q = self.cq(self.ln2(x)).view(R, B // R, self.h, D // self.h).transpose(1, 2)  # (R, H, g, Dh)
        a = F.scaled_dot_product_attention(q, mk, mv).transpose(1, 2).reshape(B, 1, D)
        x = x + self.drop(self.cout(a))
        return x + self.drop(self.ff(self.ln3(x)))

    def forward(self, x: torch.Tensor, mk: torch.Tensor, mv: torch.Tensor) -> torch.Tensor:
        """Teacher-forced pass over a whole prefix (B, T, D), causal."""
        q, k, v = (_heads(t, self.h) for t in self.qkv(self.ln1(x)).chunk(3, dim=-1))
        x = x + self.drop(self.out(_merge(F.scaled_dot_product_attention(q, k, v, is_causal=True))))
        return self._cross_ff(x, mk, mv)

    def step(self, x: torch.Tensor, mk, mv, cache_k, cache_v, t: int) -> torch.Tensor:
        """One new position (B, 1, D) at index ``t``; writes its keys/values into the cache. The
        memory (R, H, S, Dh) may be shared by groups of B / R consecutive rows."""
        q, k, v = (_heads(s, self.h) for s in self.qkv(self.ln1(x)).chunk(3, dim=-1))
        cache_k[:, :, t : t + 1] = k
        cache_v[:, :, t : t + 1] = v
        # the first position attends to itself alone: the softmax of one score is 1, the output its value
        a = v if t == 0 else F.scaled_dot_product_attention(q, cache_k[:, :, : t + 1], cache_v[:, :, : t + 1])
        x = x + self.out(_merge(a))
        return self._cross_ff_grouped(x, mk, mv)


class CreativeTransformer(nn.Module):
    """Encoder–decoder Transformer over the :class:`Vocab` layout."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.vocab = Vocab(config.n_interest_tags)
        d = config.d_model
        self.embed = nn.Embedding(self.vocab.n_model, d)
        self.field_pos = nn.Parameter(torch.zeros(N_FIELDS, d))
        self.dec_pos = nn.Parameter(torch.zeros(MAX_DECODE, d))
        nn.init.normal_(self.embed.weight, std=0.05)
        nn.init.normal_(self.field_pos, std=0.05)
        nn.init.normal_(self.dec_pos, std=0.05)
        self.encoder = nn.ModuleList(EncoderBlock(config) for _ in range(config.n_enc_layers))
        self.decoder = nn.ModuleList(DecoderBlock(config) for _ in range(config.n_dec_layers))
        self.enc_ln, self.dec_ln = nn.LayerNorm(d), nn.LayerNorm(d)

    @property
    def device(self) -> torch.device:
        """Where the weights are (``model.to(device)`` moves them; decoding follows)."""
        return self.embed.weight.device

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(self, cond: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Conditioning tokens (B, N_FIELDS) → per decoder layer cross-attention (keys, values)."""
        x = self.embed(cond) + self.field_pos
        for blk in self.encoder:
            x = blk(x)
        mem = self.enc_ln(x)
        return [blk.memory_kv(mem) for blk in self.decoder]

    def _logits(self, x: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        w = self.embed.weight if columns is None else self.embed.weight[columns]
        return self.dec_ln(x) @ w.T

    def forward(self, cond: torch.Tensor, dec_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, n_model) for decoder inputs (B, T) (``<bos>`` first)."""
        return self.decode_full(self.encode(cond), dec_in)

    def decode_full(self, mem, dec_in: torch.Tensor) -> torch.Tensor:
        """Logits of every position of a prefix, recomputed from scratch (the uncached decoder)."""
        x = self.embed(dec_in) + self.dec_pos[: dec_in.shape[1]]
        for blk, (mk, mv) in zip(self.decoder, mem):
            x = blk(x, mk, mv)
        return self._logits(x)

    def new_cache(self, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        c = self.config
        shape = (batch, c.n_heads, MAX_DECODE, c.d_model // c.n_heads)
        # uninitialised: position t is written by the step at t before any step reads it
        return [(torch.empty(shape, device=self.device), torch.empty(shape, device=self.device))
                for _ in self.decoder]

    def decode_step(self, mem, cache, token: torch.Tensor, t: int, columns: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, n_model) of the next token after feeding ``token`` (B,) at position ``t``.

        ``mem`` (from :meth:`encode`) has B rows, or R rows each shared by a group of B / R
        consecutive decoder rows (several samples of one conditioning: no repeated memory).
        ``columns``: only these output tokens' logits, (B, len(columns)).
        """
        x = self.embed(token)[:, None] + self.dec_pos[t]
        for blk, (mk, mv), (ck, cv) in zip(self.decoder, mem, cache):
            x = blk.step(x, mk, mv, ck, cv, t)
        return self._logits(x[:, 0], columns)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        """Write ``model.pt`` (weights) and ``model.json`` (architecture) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in self.state_dict().items()}, directory / "model.pt")
        (directory / "model.json").write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> CreativeTransformer:
        """The model saved in ``directory``, on ``device`` (``"cpu"``, ``"cuda"``, ``"auto"``)."""
        device = check_device(device)
        directory = Path(directory)
        if not (directory / "model.pt").exists():
            raise FileNotFoundError(f"no generator in {directory} (expected model.pt and model.json): "
                                    f"`make install` trains the default one into models/generator (about 2–3 "
                                    f"minutes, once), or run `adsim train-generator --out {directory}`")
        model = cls(GeneratorConfig(**json.loads((directory / "model.json").read_text())))
        model.load_state_dict(torch.load(directory / "model.pt", map_location="cpu", weights_only=True))
        return model.to(device).eval()


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Token cross-entropy, ignoring ``<pad>`` targets."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=PAD)
