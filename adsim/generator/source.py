"""A :class:`~adsim.creative.sampler.CandidateSource` backed by the generator, for both env modes.

* **Pool mode** (``user_features is None``): the core asks once per campaign for a block of
  creatives; they are decoded directly with the core's uniforms.
* **Personalised mode**: every request is conditioned on the observed profile (demographic bands,
  top interest tags, top category) and the campaign goal and category. With ``cache_size > 0`` the
  source keeps, per distinct conditioning, ``pool_factor × K`` creatives decoded once with
  uniforms that are a pure function of (seed, conditioning) — so a cache hit skips the decoder and
  the result does not depend on what was cached before; the request's own uniforms ``u`` then
  choose which K of them it gets (a uniformly random subset). With ``cache_size == 0`` the uniforms
  ``u`` drive the decoder token by token. Both keep common random numbers exact.

A world's conditionings are a finite set (its users' observed profiles × its campaigns' goal and
category), so a core tells its source the world it serves (:meth:`GeneratorSource.prepare`, called
by ``SelectionCore`` before it calibrates β0): with ``warm_up`` (the default) the source decodes every
conditioning of the world there, in large batches, when they fit in ``cache_size``; every request
is then a cache hit. Warmed or filled request by request, the cache holds the same creatives.

With a ``store`` directory the warmed creatives of a world are also saved there, one ``.npz`` file
named by a digest of everything they depend on (the generator's weights and vocabulary, the
decoding, the seed, K, the world's conditionings and the decoding code), and a later source of the
same (in another process: a benchmark's workers) loads them instead of decoding again. The file is
read without pickle and used only if its keys are exactly the world's conditionings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from adsim import rng as crng
from adsim.creative.sampler import CREATIVE_SLOTS, DRAWS_PER_CREATIVE
from adsim.generator.conditioning import field_values
from adsim.generator.decode import DecodeSpec, tokens_to_creatives
from adsim.generator.generate import CreativeGenerator
from adsim.generator.model import MAX_DECODE
from adsim.generator.tokenizer import N_FIELDS
from adsim.validation import check_int, check_seed

CHUNK = 8192
"""Sequences decoded per decoder pass."""
WARM_CHUNK = 4096
"""Conditionings decoded per batch while warming the cache."""
STORE_FILES = 32
"""Warmed worlds a ``store`` directory keeps (the most recently written; older files are removed)."""
DECODE_CODE = ("adsim.creative.sampler", "adsim.generator.conditioning", "adsim.generator.decode",
               "adsim.generator.generate", "adsim.generator.model", "adsim.generator.source",
               "adsim.generator.tokenizer", "adsim.rng")
"""The modules whose code the cached creatives depend on besides the weights: a stored file made by
other code is not used."""
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
        warm_up: decode every conditioning of the world in :meth:`prepare` (when they fit in
            ``cache_size``); False fills the cache request by request (the same creatives).
        store: a directory where :meth:`prepare` saves a world's warmed creatives and loads them
            from when another source already did (created when missing; None: memory only).

    ``hits`` / ``misses`` count the personalised requests served from the cache / that had to be
    decoded first (the warm-up's own decoding is neither).
    """

    def __init__(self, generator: CreativeGenerator, n_interest_tags: int, spec: DecodeSpec | None = None,
                 cache_size: int = 100_000, pool_factor: int = 2, seed: int = 0, warm_up: bool = True,
                 store: str | Path | None = None):
        check_int("cache_size", cache_size, 0)
        check_int("pool_factor", pool_factor, 1, 2)
        check_seed(seed)
        if not isinstance(warm_up, bool):
            raise TypeError(f"warm_up must be a bool, got {type(warm_up).__name__}")
        if store is not None and not isinstance(store, (str, Path)):
            raise TypeError(f"store must be a directory path (str or Path) or None, got {type(store).__name__} {store!r}")
        self.store = None if store is None else Path(store)
        self.seed = int(seed)
        self.generator, self.n_interest_tags = generator, n_interest_tags
        self.spec = spec if spec is not None else generator.spec
        self.cache_size, self.pool_factor, self.warm_up = cache_size, pool_factor, warm_up
        self._seed_key = crng.key_from_seed(seed, 5)
        if generator.vocab.n_model >= 2**15:
            raise ValueError(f"vocabulary of {generator.vocab.n_model} tokens: the cache stores ids as int16")
        sizes = [int(n) + 1 for n in generator.vocab.field_sizes]
        if np.prod(np.array(sizes, dtype=np.float64)) >= 2.0**62:
            raise ValueError("conditioning space too large for int64 cache keys")
        self._radix = np.array([int(np.prod(sizes[f + 1 :])) for f in range(len(sizes))], dtype=np.int64)
        self._reset_cache(0)
        self._clock = 0
        self.hits = self.misses = 0

    def _reset_cache(self, M: int) -> None:
        self._keys = np.zeros(0, dtype=np.int64)  # sorted conditioning keys
        self._table = np.zeros((0, M, CREATIVE_SLOTS), dtype=np.int16)  # their M creatives (ids < 2^15)
        self._stamp = np.zeros(0, dtype=np.int64)

    @property
    def cached(self) -> int:
        """Conditionings in the cache now."""
        return len(self._keys)

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

    def world_conditionings(self, world) -> np.ndarray:
        """(n, N_FIELDS) the distinct personalised-mode conditionings of ``world``: every user's
        observed profile with every campaign's goal and category, as :meth:`candidates` reads them."""
        gc = np.unique(np.stack([world.campaign_goal, world.campaign_category], 1), axis=0)
        uf = world.user_features
        shape = (len(gc), len(uf))
        values = field_values(np.broadcast_to(gc[:, :1], shape), np.broadcast_to(gc[:, 1:], shape),
                              np.broadcast_to(uf, shape + uf.shape[1:]), None, None, self.n_interest_tags)
        values = values.reshape(-1, N_FIELDS)
        _, first = np.unique(self._key(values), return_index=True)
        return values[first]

    def prepare(self, world, n_candidates: int) -> None:
        """The core's hook (``SelectionCore`` calls it in personalised mode before its first request):
        with ``warm_up`` and a cache, decode every conditioning of ``world``
        (:meth:`world_conditionings`) for K = ``n_candidates``, in batches of ``WARM_CHUNK``, unless
        there are more than ``cache_size`` (then the cache fills request by request)."""
        check_int("n_candidates", n_candidates, 1)
        if not self.warm_up or self.cache_size == 0:
            return
        values = self.world_conditionings(world)
        if len(values) > self.cache_size:
            return
        M = self.pool_factor * n_candidates
        if self._table.shape[1] != M:
            self._reset_cache(M)
        keys = self._key(values)
        new = ~self._contains(keys)
        self._clock += 1
        if not new.any():
            return
        fresh_keys, fresh_values = keys[new], values[new]  # sorted: world_conditionings orders them by key
        path = None if self.store is None else self.store / f"{self._digest(keys, M)}.npz"
        stored = None if path is None else self._load(path, fresh_keys, M)
        if stored is not None:
            self._store(*stored)
            return
        cre = self._decode_cached(fresh_keys, fresh_values, M, WARM_CHUNK)
        self._store(fresh_keys, cre)
        if path is not None:
            self._save(path, fresh_keys, cre)

    def _digest(self, keys: np.ndarray, M: int) -> str:
        """A hash of what a world's warmed creatives depend on: the weights and vocabulary, the
        decoding, the seed, M creatives per conditioning, the conditionings and :data:`DECODE_CODE`."""
        from adsim.codehash import code_fingerprint

        h = hashlib.sha256()
        for name, tensor in self.generator.model.state_dict().items():
            h.update(name.encode() + b"\0" + tensor.detach().cpu().contiguous().numpy().tobytes())
        vocab = self.generator.vocab
        h.update(repr((vocab.n_model, tuple(int(n) for n in vocab.field_sizes), dataclasses.asdict(self.spec),
                       self.seed, M, self.n_interest_tags, code_fingerprint(DECODE_CODE))).encode())
        h.update(np.sort(keys).tobytes())
        return h.hexdigest()[:32]

    def _load(self, path: Path, keys: np.ndarray, M: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The stored (keys, creatives) at ``path`` when they are exactly ``keys`` (sorted) with M
        creatives each; None when there is no such file (or it is unreadable)."""
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as f:
                k, cre = f["keys"], f["creatives"]
        except (OSError, ValueError, KeyError):
            return None
        if (k.dtype != np.int64 or not np.array_equal(k, keys) or cre.dtype != np.int16
                or cre.shape != (len(keys), M, CREATIVE_SLOTS)):
            return None
        return k, cre

    def _save(self, path: Path, keys: np.ndarray, cre: np.ndarray) -> None:
        """Write ``keys`` and their creatives to ``path`` atomically (a file of this process, then
        renamed), keep the :data:`STORE_FILES` newest files of the store; a failure only warns."""
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, keys=keys, creatives=cre)
            os.replace(tmp, path)
            files = sorted(path.parent.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
            for old in files[STORE_FILES:]:
                old.unlink(missing_ok=True)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            warnings.warn(f"generator store {str(path.parent)!r}: could not save the warmed creatives ({err}); "
                          f"they stay in memory", stacklevel=3)

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

    def _positions(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where ``keys`` (B,) are in the sorted cache keys, and whether they are there."""
        if len(self._keys) == 0:
            return np.zeros(len(keys), dtype=np.intp), np.zeros(len(keys), dtype=bool)
        pos = np.searchsorted(self._keys, keys).clip(0, len(self._keys) - 1)
        return pos, self._keys[pos] == keys

    def _contains(self, keys: np.ndarray) -> np.ndarray:
        return self._positions(keys)[1]

    def _cached(self, values: np.ndarray, u: np.ndarray) -> np.ndarray:
        K = u.shape[1]
        M = self.pool_factor * K
        if self._table.shape[1] != M:  # K changed: start a fresh cache
            self._reset_cache(M)
        keys = self._key(values)
        pos, found = self._positions(keys)
        n_found = int(found.sum())
        self.hits += n_found
        self.misses += len(keys) - n_found
        self._clock += 1
        self._stamp[pos[found]] = self._clock  # protect this call's hits from eviction
        if n_found < len(keys):
            uniq, first = np.unique(keys[~found], return_index=True)
            self._store(uniq, self._decode_cached(uniq, values[~found][first], M, len(uniq)))
            pos = np.searchsorted(self._keys, keys)
        table = self._table[pos]  # (B, M, S)
        # the request's uniforms choose a random K-subset of its conditioning's M creatives
        sel_u = u[:, :, : self.pool_factor].transpose(0, 2, 1).reshape(u.shape[0], M)
        pick = np.argsort(sel_u, axis=1)[:, :K]
        return np.take_along_axis(table, pick[..., None], 1).astype(np.int64)

    def _decode_cached(self, keys: np.ndarray, values: np.ndarray, M: int, batch: int) -> np.ndarray:
        """(n, M, CREATIVE_SLOTS) int16: the cached creatives of conditionings ``keys`` (n,), decoded
        ``batch`` conditionings at a time from uniforms that are a pure function of (seed, key)."""
        parts = []
        for i in range(0, len(keys), max(batch, 1)):
            k = keys[i : i + batch]
            u = crng.uniforms(np.full(len(k), self._seed_key) ^ k.astype(np.uint64),
                              np.zeros(len(k)), np.zeros(len(k)), M * MAX_DECODE)
            parts.append(self._decode(values[i : i + batch], u.reshape(len(k), M, MAX_DECODE)).astype(np.int16))
        return np.concatenate(parts) if parts else np.zeros((0, M, CREATIVE_SLOTS), dtype=np.int16)

    def _store(self, keys: np.ndarray, cre: np.ndarray) -> None:
        """Add conditionings ``keys`` (not cached yet) and their creatives, stamped now; evict the
        least recently used beyond ``cache_size`` (never one stamped now)."""
        if len(keys) == 0:
            return
        all_keys = np.concatenate([self._keys, keys])
        table = np.concatenate([self._table, cre])
        stamp = np.concatenate([self._stamp, np.full(len(keys), self._clock)])
        if len(all_keys) > self.cache_size:
            n_keep = max(self.cache_size, int((stamp == self._clock).sum()))
            keep = np.sort(np.argsort(-stamp, kind="stable")[:n_keep])
            all_keys, table, stamp = all_keys[keep], table[keep], stamp[keep]
        order = np.argsort(all_keys)
        self._keys, self._table, self._stamp = all_keys[order], table[order], stamp[order]
