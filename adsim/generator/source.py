"""A :class:`~adsim.creative.sampler.CandidateSource` backed by the generator, for both env modes.

* **Pool mode** (``user_features is None``): the core asks once per campaign for a block of
  creatives; they are decoded directly with the core's uniforms.
* **Personalised mode**: every request is conditioned on the observed profile (demographic bands,
  top interest tags, top category) and the campaign goal and category. Requests are batched across
  the vector env's slots and steps (one decoder pass per chunk). With ``cache_size > 0`` the
  source keeps, per distinct conditioning, ``pool_factor × K`` creatives decoded once with
  uniforms that are a pure function of (seed, conditioning) — so a cache hit skips the decoder and
  the result does not depend on what was cached before; the request's own uniforms ``u`` then
  choose which K of them it gets (a uniformly random subset). With ``cache_size == 0`` the uniforms
  ``u`` drive the decoder token by token. Both keep common random numbers exact.
"""

from __future__ import annotations

import numpy as np

from adsim import rng as crng
from adsim.creative.sampler import CREATIVE_SLOTS, DRAWS_PER_CREATIVE
from adsim.generator.conditioning import field_values
from adsim.generator.decode import DecodeSpec, tokens_to_creatives
from adsim.generator.generate import CreativeGenerator
from adsim.generator.model import MAX_DECODE
from adsim.generator.tokenizer import N_FIELDS
from adsim.validation import check_int

CHUNK = 8192
"""Sequences decoded per decoder pass."""
assert DRAWS_PER_CREATIVE >= MAX_DECODE, "one uniform per decoded token"


class GeneratorSource:
    """Generated candidates behind the ``CandidateSource`` protocol.

    Args:
        generator: a trained :class:`CreativeGenerator`.
        n_interest_tags: interest tags of the env's world (to read the user vector).
        spec: decoding (a sampling method; greedy/beam ignore ``u``).
        cache_size: conditionings kept in the personalised-mode cache (0 = no cache).
        pool_factor: creatives cached per conditioning, as a multiple of K (at most 2).
        seed: seed of the cached creatives' uniforms.
    """

    def __init__(self, generator: CreativeGenerator, n_interest_tags: int, spec: DecodeSpec | None = None,
                 cache_size: int = 100_000, pool_factor: int = 2, seed: int = 0):
        check_int("cache_size", cache_size, 0)
        check_int("pool_factor", pool_factor, 1, 2)
        check_int("seed", seed, 0)
        self.generator, self.n_interest_tags = generator, n_interest_tags
        self.spec = spec if spec is not None else generator.spec
        self.cache_size, self.pool_factor = cache_size, pool_factor
        self._seed_key = crng.key_from_seed(seed, 5)
        sizes = [int(n) + 1 for n in generator.vocab.field_sizes]
        if np.prod(np.array(sizes, dtype=np.float64)) >= 2.0**62:
            raise ValueError("conditioning space too large for int64 cache keys")
        self._radix = np.array([int(np.prod(sizes[f + 1 :])) for f in range(len(sizes))], dtype=np.int64)
        self._keys = np.zeros(0, dtype=np.int64)  # sorted conditioning keys
        self._table = np.zeros((0, 0, CREATIVE_SLOTS), dtype=np.int64)
        self._stamp = np.zeros(0, dtype=np.int64)
        self._clock = 0
        self.hits = self.misses = 0

    def candidates(self, u, goal, category, user_features=None) -> np.ndarray:
        """Creatives (..., K, CREATIVE_SLOTS) from uniforms ``u`` (..., K, DRAWS_PER_CREATIVE)."""
        u = np.asarray(u)
        lead, K = u.shape[:-2], u.shape[-2]
        goal = np.broadcast_to(goal, lead)
        category = np.broadcast_to(category, lead)
        values = field_values(goal, category, user_features, None, None, self.n_interest_tags)
        values = values.reshape(-1, N_FIELDS)
        flat_u = u.reshape(-1, K, u.shape[-1])
        if user_features is None or self.cache_size == 0:
            out = self._decode(values, flat_u)
        else:
            out = self._cached(values, flat_u)
        return out.reshape(lead + (K, CREATIVE_SLOTS))

    def _decode(self, values: np.ndarray, u: np.ndarray) -> np.ndarray:
        """(B, N_FIELDS), (B, M, ≥MAX_DECODE) → (B, M, CREATIVE_SLOTS), in chunks of CHUNK sequences."""
        B, M = u.shape[:2]
        step = max(1, CHUNK // M)
        parts = [self.generator.tokens(values[i : i + step], M, u=u[i : i + step], spec=self.spec)
                 for i in range(0, B, step)]
        return tokens_to_creatives(np.concatenate(parts), self.generator.vocab)

    def _key(self, values: np.ndarray) -> np.ndarray:
        """(B,) a unique int64 per conditioning: mixed radix over fields (value + 1, 0 = unknown)."""
        return (values + 1) @ self._radix

    def _cached(self, values: np.ndarray, u: np.ndarray) -> np.ndarray:
        K = u.shape[1]
        M = self.pool_factor * K
        if self._table.shape[1] != M:  # K changed: start a fresh cache
            self._keys, self._stamp = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
            self._table = np.zeros((0, M, CREATIVE_SLOTS), dtype=np.int64)
        keys = self._key(values)
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        pos = np.searchsorted(self._keys, uniq).clip(0, max(len(self._keys) - 1, 0))
        found = (self._keys[pos] == uniq) if len(self._keys) else np.zeros(len(uniq), dtype=bool)
        self.hits += int(found.sum())
        self.misses += int((~found).sum())
        self._clock += 1
        self._stamp[pos[found]] = self._clock  # protect this call's hits from eviction
        if (~found).any():
            self._insert(uniq[~found], values[first[~found]], M)
            pos = np.searchsorted(self._keys, uniq)
        table = self._table[pos][inverse]  # (B, M, S)
        # the request's uniforms choose a random K-subset of its conditioning's M creatives
        sel_u = u[:, :, : self.pool_factor].transpose(0, 2, 1).reshape(u.shape[0], M)
        pick = np.argsort(sel_u, axis=1)[:, :K]
        return np.take_along_axis(table, pick[..., None], 1)

    def _insert(self, keys: np.ndarray, values: np.ndarray, M: int) -> None:
        u = crng.uniforms(np.full(len(keys), self._seed_key) ^ keys.astype(np.uint64),
                          np.zeros(len(keys)), np.zeros(len(keys)), M * MAX_DECODE)
        cre = self._decode(values, u.reshape(len(keys), M, MAX_DECODE))
        all_keys = np.concatenate([self._keys, keys])
        table = np.concatenate([self._table, cre])
        stamp = np.concatenate([self._stamp, np.full(len(keys), self._clock)])
        if len(all_keys) > self.cache_size:  # evict the least recently used (never this call's)
            n_keep = max(self.cache_size, int((stamp == self._clock).sum()))
            keep = np.sort(np.argsort(-stamp, kind="stable")[:n_keep])
            all_keys, table, stamp = all_keys[keep], table[keep], stamp[keep]
        order = np.argsort(all_keys)
        self._keys, self._table, self._stamp = all_keys[order], table[order], stamp[order]
