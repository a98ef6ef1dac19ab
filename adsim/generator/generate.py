"""The generator as a service: conditioning values in, K candidate creatives out, batched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from adsim.generator.conditioning import to_tokens
from adsim.generator.decode import DecodeSpec, beam_search, decode, first_distinct, grammar_masks, tokens_to_creatives
from adsim.generator.model import MAX_DECODE, CreativeTransformer
from adsim.validation import check_device, check_int

OVERSAMPLE = 3
"""Samples drawn per requested candidate when ``distinct=True``."""


class CreativeGenerator:
    """K candidate creatives per request from a trained :class:`CreativeTransformer`.

    Args:
        model: the trained model (switched to eval mode).
        spec: default decoding.
        device: torch device to decode on (``"cpu"``, ``"cuda"``, ``"auto"``; the model is moved
            there); ``None`` keeps the model's. Uniforms are drawn on the CPU, so a seed gives the
            same draws on every device.
    """

    def __init__(self, model: CreativeTransformer, spec: DecodeSpec | None = None, device: str | None = None):
        if device is not None:
            model = model.to(check_device(device))
        self.model = model.eval()
        self.vocab = model.vocab
        self.spec = spec if spec is not None else DecodeSpec()
        self.masks = grammar_masks(self.vocab, model.device)

    @classmethod
    def load(cls, directory: str | Path, spec: DecodeSpec | None = None, device: str = "cpu") -> CreativeGenerator:
        return cls(CreativeTransformer.load(directory, device), spec)

    def tokens(self, values: np.ndarray, n: int, *, u: np.ndarray | None = None, seed: int | None = None,
               spec: DecodeSpec | None = None, use_cache: bool = True) -> np.ndarray:
        """Decoder outputs (B, n, MAX_DECODE) for conditioning values (B, N_FIELDS).

        Sampling methods use ``u`` (B, n, ≥ MAX_DECODE) uniforms if given, else uniforms drawn
        from ``seed``; greedy repeats its one sequence; beam returns the ``n`` best beams.
        """
        spec = spec if spec is not None else self.spec
        check_int("n", n, 1)
        cond = torch.as_tensor(to_tokens(values, self.vocab)).to(self.model.device)
        B = cond.shape[0]
        if spec.method == "beam":
            toks, _ = beam_search(self.model, cond, n, max(spec.beam_width, n), self.masks)
            return toks.cpu().numpy()
        if spec.method == "greedy":
            toks = decode(self.model, cond, None, spec, use_cache, self.masks)
            return np.repeat(toks.cpu().numpy()[:, None], n, axis=1)
        if u is None:
            if seed is None:
                raise ValueError("sampling needs uniforms u or a seed")
            u = np.random.default_rng(np.random.SeedSequence([seed, 7])).random((B, n, MAX_DECODE))
        u = np.asarray(u)
        if u.shape[:2] != (B, n) or u.shape[2] < MAX_DECODE:
            raise ValueError(f"u has shape {u.shape}, expected ({B}, {n}, >= {MAX_DECODE})")
        ut = torch.as_tensor(u[:, :, :MAX_DECODE].reshape(B * n, MAX_DECODE), dtype=torch.float32)
        toks = decode(self.model, cond, ut.to(cond.device), spec, use_cache, self.masks, repeat=n)
        return toks.cpu().numpy().reshape(B, n, MAX_DECODE)

    def candidates(self, values: np.ndarray, n: int, *, seed: int | None = None, u: np.ndarray | None = None,
                   spec: DecodeSpec | None = None, distinct: bool = True) -> np.ndarray:
        """Creative id vectors (B, n, CREATIVE_SLOTS); ``distinct`` de-duplicates sampled candidates
        (drawing ``OVERSAMPLE × n`` samples and keeping the first n distinct ones)."""
        spec = spec if spec is not None else self.spec
        sampled = spec.method not in ("greedy", "beam")
        m = n * OVERSAMPLE if (distinct and sampled) else n
        if u is not None and m != n:
            raise ValueError("distinct sampling draws its own uniforms; pass seed, not u")
        toks = self.tokens(values, m, u=u, seed=seed, spec=spec)
        cre = tokens_to_creatives(toks, self.vocab)
        return first_distinct(cre, n) if m != n else cre
