"""Decoding: greedy, top-k, nucleus (top-p) sampling and beam search, batched, with a KV cache.

Every decoder output follows one structure, enforced by a grammar mask over the model's logits:
``phrase{0..4} <sep> template color image_style cta``. The *text* part is free (any phrases in
any order, or none — the parser and the hidden model judge it); only the slot structure is
fixed, so every output maps to a creative id vector.

Sampling draws token ``t`` of candidate ``k`` of request ``b`` by inverse CDF from one uniform
``u[b, k, t]``: given uniforms, decoding is deterministic (common random numbers), and the
environment's own candidate uniforms can drive it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from adsim.creative.lexicon import MAX_PHRASES
from adsim.creative.sampler import CREATIVE_SLOTS, N_ATTRS
from adsim.generator.model import MAX_DECODE, CreativeTransformer
from adsim.generator.tokenizer import BOS, PAD, SEP, Vocab
from adsim.validation import check_choice, check_float, check_int

METHODS = ("greedy", "sample", "top_k", "nucleus", "beam")
DONE = MAX_PHRASES + 1 + N_ATTRS  # grammar state after the last attribute


def grammar_masks(vocab: Vocab, device: str | torch.device = "cpu") -> torch.Tensor:
    """(DONE + 1, n_model) additive masks (0 allowed, −inf not) for each grammar state.

    States 0..MAX_PHRASES-1: text with that many phrases so far (phrases or ``<sep>``);
    MAX_PHRASES: text full (``<sep>`` only); then one state per attribute kind; DONE: ``<pad>``.
    """
    n = vocab.n_model
    m = torch.full((DONE + 1, n), float("-inf"))
    p0, a0 = vocab.phrase_offset, vocab.attr_offset
    m[:MAX_PHRASES, p0:a0] = 0.0
    m[: MAX_PHRASES + 1, SEP] = 0.0
    ends = list(vocab.attr_kind_offsets[1:]) + [vocab.n_model]
    for k, (lo, hi) in enumerate(zip(vocab.attr_kind_offsets, ends)):
        m[MAX_PHRASES + 1 + k, int(lo) : int(hi)] = 0.0
    m[DONE, PAD] = 0.0
    return m.to(device)


def next_state(state: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """Grammar state after emitting ``token`` (both (B,))."""
    text = state <= MAX_PHRASES
    after_text = torch.where(token == SEP, MAX_PHRASES + 1, state + 1)
    return torch.where(text, after_text, torch.clamp(state + 1, max=DONE))


def tokens_to_creatives(tokens: np.ndarray, vocab: Vocab) -> np.ndarray:
    """Decoder outputs (..., MAX_DECODE) → creative id vectors (..., CREATIVE_SLOTS), vectorised.

    ``n_unparsed`` is 0: every text token is a whole lexicon phrase (``adsim.generator.evaluate``
    checks this against the parser on the rendered text).
    """
    tokens = np.asarray(tokens)
    is_sep = tokens == SEP
    sep_at = np.argmax(is_sep, axis=-1)  # grammar guarantees one <sep> within MAX_PHRASES + 1
    pos = np.arange(MAX_PHRASES)
    text = tokens[..., :MAX_PHRASES]
    slots = np.where(pos < sep_at[..., None], text - vocab.phrase_offset + 1, 0)
    idx = sep_at[..., None] + 1 + np.arange(N_ATTRS)
    attrs = np.take_along_axis(tokens, idx, axis=-1) - vocab.attr_kind_offsets
    out = np.concatenate([slots, attrs, np.zeros(tokens.shape[:-1] + (1,), dtype=np.int64)], axis=-1)
    assert out.shape[-1] == CREATIVE_SLOTS
    return out


@dataclass(frozen=True)
class DecodeSpec:
    """How to decode."""

    method: str = "nucleus"
    """One of ``greedy``, ``sample``, ``top_k``, ``nucleus``, ``beam``."""
    top_k: int = 8
    """Tokens kept by ``top_k`` sampling."""
    top_p: float = 0.9
    """Probability mass kept by ``nucleus`` sampling."""
    temperature: float = 1.0
    """Softmax temperature for the sampling methods."""
    beam_width: int = 16
    """Beams kept by ``beam`` (≥ the number of candidates asked for)."""

    def __post_init__(self):
        check_choice("method", self.method, METHODS)
        check_int("top_k", self.top_k, 1)
        check_float("top_p", self.top_p, 0.0, 1.0, open_low=True)
        check_float("temperature", self.temperature, 0.0, 100.0, open_low=True)
        check_int("beam_width", self.beam_width, 1, 256)


def _filter(logits: torch.Tensor, spec: DecodeSpec) -> torch.Tensor:
    """Probabilities after temperature, top-k / nucleus filtering (B, V)."""
    logits = logits / spec.temperature
    if spec.method == "top_k" and spec.top_k < logits.shape[-1]:
        kth = torch.topk(logits, spec.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if spec.method == "nucleus" and spec.top_p < 1.0:
        sp = torch.sort(probs, dim=-1, descending=True).values
        n_keep = ((sp.cumsum(-1) - sp) < spec.top_p).sum(-1, keepdim=True)  # the token crossing top_p is kept
        probs = torch.where(probs >= sp.gather(-1, n_keep - 1), probs, 0.0)  # (ties with the last kept token are kept)
    return probs


def _pick(logits: torch.Tensor, u: torch.Tensor | None, spec: DecodeSpec) -> torch.Tensor:
    """Column (B,) of each row's token: the argmax (greedy), else the inverse CDF at ``u`` (B,)."""
    if spec.method == "greedy":
        return logits.argmax(-1)
    probs = _filter(logits, spec)
    cdf = probs.cumsum(-1)
    target = u[:, None] * cdf[:, -1:]
    # the number of CDF entries ≤ target (the CDF of non-negative terms never decreases)
    return torch.searchsorted(cdf, target.contiguous(), right=True)[:, 0].clamp_(max=probs.shape[-1] - 1)


def output_columns(masks: torch.Tensor) -> torch.Tensor:
    """(C,) the token ids some grammar state allows (``<pad>``, ``<sep>``, phrases, attributes; never a
    conditioning or other special token), ascending: sampling looks at these columns only."""
    return torch.isfinite(masks).any(0).nonzero()[:, 0]


@torch.inference_mode()
def decode(model: CreativeTransformer, cond: torch.Tensor, u: torch.Tensor | None, spec: DecodeSpec,
           use_cache: bool = True, masks: torch.Tensor | None = None, repeat: int = 1) -> torch.Tensor:
    """Greedy or sampled decoding of ``repeat`` sequences per conditioning row.

    Args:
        cond: (R, N_FIELDS) conditioning tokens (encoded once per row).
        u: (R·repeat, MAX_DECODE) uniforms, rows grouped by conditioning (None for greedy).
        use_cache: keep keys/values per position (False recomputes the whole prefix each step,
            the reference the cached decoder must match token for token).

    Returns:
        (R·repeat, MAX_DECODE) int64 tokens (``<pad>`` after the last attribute).
    """
    if spec.method == "beam":
        raise ValueError("decode() samples or decodes greedily; use beam_search() for method 'beam'")
    B, dev = cond.shape[0] * repeat, cond.device
    masks = grammar_masks(model.vocab, dev) if masks is None else masks
    cols = output_columns(masks)  # no other token is ever allowed: logits and sampling over these only
    masks = masks[:, cols]
    mem = model.encode(cond)  # the cached decoder shares each row's memory among its `repeat` samples
    if repeat > 1 and not use_cache:
        mem = _expand_mem(mem, repeat)
    cache = model.new_cache(B) if use_cache else None
    seq = torch.full((B, MAX_DECODE + 1), PAD, dtype=torch.long, device=dev)
    seq[:, 0] = BOS
    state = torch.zeros(B, dtype=torch.long, device=dev)
    for t in range(MAX_DECODE):
        if use_cache and t == 0 and repeat > 1:
            logits = _first_step(model, mem, cache, repeat, cols)
        elif use_cache:
            logits = model.decode_step(mem, cache, seq[:, t], t, columns=cols)
        else:
            logits = model.decode_full(mem, seq[:, : t + 1])[:, -1, cols]
        logits = logits + masks[state]
        tok = cols[_pick(logits, None if u is None else u[:, t], spec)]
        seq[:, t + 1] = tok
        state = next_state(state, tok)
        if bool((state == DONE).all()):
            break
    return seq[:, 1:]


def _first_step(model: CreativeTransformer, mem, cache, repeat: int, cols: torch.Tensor) -> torch.Tensor:
    """Step 0 of the cached decoder computed once per conditioning row: its ``repeat`` samples share
    the prefix ``<bos>`` and the memory, hence the logits and the keys and values, which are copied
    to every sample's rows (logits (R·repeat, C); the cache's position 0 written)."""
    R = mem[0][0].shape[0]
    first = model.new_cache(R)
    logits = model.decode_step(mem, first, torch.full((R,), BOS, dtype=torch.long, device=cols.device), 0,
                               columns=cols)
    for (ck, cv), (fk, fv) in zip(cache, first):
        ck[:, :, :1] = fk[:, :, :1].repeat_interleave(repeat, 0)
        cv[:, :, :1] = fv[:, :, :1].repeat_interleave(repeat, 0)
    return logits.repeat_interleave(repeat, 0)


def _expand_mem(mem, n: int):
    return [(k.repeat_interleave(n, 0), v.repeat_interleave(n, 0)) for k, v in mem]


@torch.inference_mode()
def beam_search(model: CreativeTransformer, cond: torch.Tensor, n_best: int, width: int,
                masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched beam search with a KV cache; returns the ``n_best`` highest-scoring sequences.

    Returns:
        tokens (B, n_best, MAX_DECODE) and their log-probabilities (B, n_best), best first.
    """
    if n_best > width:
        raise ValueError(f"n_best == {n_best} > beam_width == {width}; widen the beam")
    B, W, V, dev = cond.shape[0], width, model.vocab.n_model, cond.device
    masks = grammar_masks(model.vocab, dev) if masks is None else masks
    mem = model.encode(cond)  # shared by each request's W beams (rows b·W … b·W + W − 1)
    cache = model.new_cache(B * W)
    seq = torch.full((B * W, MAX_DECODE + 1), PAD, dtype=torch.long, device=dev)
    seq[:, 0] = BOS
    state = torch.zeros(B * W, dtype=torch.long, device=dev)
    score = torch.full((B, W), float("-inf"), device=dev)
    score[:, 0] = 0.0
    for t in range(MAX_DECODE):
        logits = model.decode_step(mem, cache, seq[:, t], t) + masks[state]
        logp = torch.log_softmax(logits, -1)
        logp[state == DONE] = masks[DONE]  # finished beams keep their score
        total = (score[:, :, None] + logp.view(B, W, V)).view(B, W * V)
        score, flat = torch.topk(total, W, dim=-1)
        src = (flat // V + torch.arange(B, device=dev)[:, None] * W).view(-1)
        tok = (flat % V).view(-1)
        seq, state = seq[src], state[src]
        for ck, cv in cache:
            ck.copy_(ck[src])
            cv.copy_(cv[src])
        seq[:, t + 1] = tok
        state = next_state(state, tok)
        if bool((state == DONE).all()):
            break
    out = seq[:, 1:].view(B, W, MAX_DECODE)[:, :n_best]
    return out, score[:, :n_best]


def first_distinct(creatives: np.ndarray, k: int) -> np.ndarray:
    """(B, M, S) → (B, k, S): the first ``k`` distinct rows of each request, vectorised.

    Requests with fewer than ``k`` distinct rows are filled with their remaining rows in order.
    """
    B, M, S = creatives.shape
    key = np.zeros((B, M), dtype=np.int64)
    for s in range(S):  # mixed-radix key of a creative (slots < 100)
        key = key * 101 + creatives[..., s]
    order = np.argsort(key, axis=1, kind="stable")
    sk = np.take_along_axis(key, order, 1)
    first_sorted = np.ones((B, M), dtype=bool)
    first_sorted[:, 1:] = sk[:, 1:] != sk[:, :-1]
    first = np.zeros((B, M), dtype=bool)
    np.put_along_axis(first, order, first_sorted, 1)
    rank = np.where(first, 0, 1) * M + np.arange(M)  # distinct first, then the rest, each in order
    pick = np.argsort(rank, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(creatives, pick[..., None], 1)
