"""Counter-based random numbers for the simulator's exogenous draws.

Every exogenous draw of the simulator (which user arrives, the context, the candidates of a
personalised request, the uniforms behind a click) is a pure function of
``(stream key, episode, step, stream index)``. This is what makes *common random numbers* exact:
two policies run with the same seed see the same users, contexts, candidates and coin flips, no
matter which actions they take, how many sub-environments sit side by side in a vector env, or
when a sub-environment is reset.

The generator is SplitMix64 (Steele, Lea & Flood, 2014) evaluated at an explicit position: the
``c``-th output of the SplitMix64 sequence started at ``key`` is ``mix64(key + (c + 1) * GOLDEN)``.
It is vectorised over arbitrary arrays of keys and counters, so one NumPy call serves a whole batch
of requests. Keys come from :class:`numpy.random.SeedSequence`, never from the global RNG.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / float(1 << 53)

#: Steps an episode may last before step counters would overlap the next episode's.
MAX_EPISODE_STEPS = 1 << 32


def key_from_seed(seed: int | np.random.SeedSequence, index: int = 0) -> np.uint64:
    """A 64-bit stream key from an integer seed (and a sub-stream index), via SeedSequence."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    state = np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, index)).generate_state(
        2, dtype=np.uint32
    )
    return np.uint64((int(state[0]) << 32) | int(state[1]))


def stream_keys(seed, n: int) -> np.ndarray:
    """(n,) uint64 keys of n request slots.

    An int ``seed`` gives slot ``i`` the ``i``-th child stream of ``SeedSequence(seed)`` (slot 0 is
    the single-env stream of ``seed``, and different seeds never share a stream); a sequence of n
    ints gives slot ``i`` the single-env stream of ``seed[i]``.
    """
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed == {seed}, must be >= 0")
        return np.array([key_from_seed(int(seed), i) for i in range(n)], dtype=np.uint64)
    seeds = list(seed)
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for num_envs == {n}")
    return np.array([key_from_seed(int(s), 0) for s in seeds], dtype=np.uint64)


def group_stream_keys(seeds, group_size: int) -> np.ndarray:
    """(G·B,) keys of G groups of B slots: slot i of group g reads the i-th child stream of
    ``SeedSequence(seeds[g])`` — exactly the keys of an unstacked env of B slots seeded ``seeds[g]``."""
    return np.concatenate([stream_keys(s, group_size) for s in seeds])


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place on ``z`` (uint64; returned)."""
    t = z >> _S30
    z ^= t
    z *= _M1
    np.right_shift(z, _S27, out=t)
    z ^= t
    z *= _M2
    np.right_shift(z, _S31, out=t)
    z ^= t
    return z


def row_keys(x: np.ndarray) -> np.ndarray:
    """(M,) uint64 key of each row of a 2-D array: equal rows have equal keys (SplitMix64 chained
    over the row's 32-bit words; a loop over the columns, vectorised over the rows)."""
    words = np.ascontiguousarray(np.asarray(x, dtype=np.float32)).view(np.uint32).astype(np.uint64)
    h = np.full(words.shape[0], _GOLDEN, dtype=np.uint64)
    for j in range(words.shape[1]):
        h = _mix64(h ^ words[:, j])
    return h


def key_uniforms(keys: np.ndarray, seed: int) -> np.ndarray:
    """(…) float64 in [0, 1): one uniform per key, a pure function of (key, seed)."""
    return (_mix64(np.asarray(keys, dtype=np.uint64) ^ key_from_seed(seed)) >> _S11) * _TO_UNIT


_STREAM_STRIDE = 1 << 12  # stream indices per (episode, step) position
_POS_GOLDEN = np.uint64((_STREAM_STRIDE * int(_GOLDEN)) % (1 << 64))


def uniforms(
    keys: np.ndarray, episode: np.ndarray, step: np.ndarray, n_streams: int, offset: int = 0,
    streams_first: bool = False,
) -> np.ndarray:
    """Uniform numbers in [0, 1) for a batch of (key, episode, step) positions.

    Args:
        keys: (N,) uint64 stream keys, one per sub-environment.
        episode: (N,) integer episode index of each sub-environment.
        step: (N,) or (N, T) integer step index inside the episode.
        n_streams: how many independent numbers to draw at each position.
        offset: first stream index (to keep separate families of draws apart).
        streams_first: lay the result out stream-major, (n_streams, N) or (n_streams, N, T), so that
            each stream's numbers are one contiguous array (the same numbers).

    Returns:
        (N, n_streams) or (N, T, n_streams) float64 uniforms in [0, 1) (``streams_first``:
        (n_streams, N) or (n_streams, N, T)).
    """
    keys = np.asarray(keys, dtype=np.uint64)
    step = np.asarray(step, dtype=np.uint64)
    episode = np.asarray(episode, dtype=np.uint64)
    extra = (step.ndim - 1) * (1,)
    pos = episode.reshape((-1,) + extra) * np.uint64(MAX_EPISODE_STEPS) + step  # (N,) or (N, T)
    # the c-th output of a slot's sequence is mix64(key + (c + 1)·golden), c = pos·4096 + stream index; mod
    # 2^64 that is (key + pos·(4096·golden)) + (stream index + 1)·golden: one product per position
    with np.errstate(over="ignore"):
        base = pos * _POS_GOLDEN
        base += keys.reshape((-1,) + extra)
        per_stream = np.arange(offset + 1, offset + 1 + n_streams, dtype=np.uint64) * _GOLDEN
        if streams_first:
            z = per_stream.reshape((n_streams,) + base.ndim * (1,)) + base
        else:
            z = base[..., None] + per_stream
        _mix64(z)  # in place
    z >>= _S11
    out = z.view(np.int64).astype(np.float64)  # < 2^53: exact either way, int64 converts faster
    out *= _TO_UNIT
    return out


_BUCKET_BITS = (6, 8, 10, 12)
_MIN_TABLE_DRAWS = 64  # fewer draws: one binary search each is as fast as the table


class BucketedCDF:
    """Inverse-CDF draws from one fixed CDF by table lookup: the same index as :func:`categorical`.

    [0, 1) is cut into 2^b equal buckets; ``lo[k]`` counts the CDF entries at or below the bucket's
    left end, and the few entries strictly inside a bucket (``edges``, at most one per bucket for
    the smallest ``b`` of ``_BUCKET_BITS`` that allows it) are compared with ``u``. Every step is
    exact: ``u · 2^b`` is exact, so the bucket is ``floor(u · 2^b)``, and the count of entries ≤ ``u``
    is ``searchsorted(cdf, u, side="right")`` by construction.
    """

    def __init__(self, cdf: np.ndarray):
        cdf = np.asarray(cdf, dtype=np.float64)
        if cdf.ndim != 1 or cdf.size == 0:
            raise ValueError(f"cdf must be a non-empty 1-D array, got shape {cdf.shape}")
        self.n = cdf.shape[0]
        for bits in _BUCKET_BITS:
            B = 1 << bits
            k = np.floor(cdf * B).astype(np.int64)
            inside = (cdf * B != k) & (k < B)  # strictly inside bucket k (not on its left end, below 1)
            per_bucket = np.bincount(k[inside], minlength=B)
            if per_bucket.max(initial=0) <= 1:
                break
        self.scale = float(B)
        left = np.arange(B, dtype=np.float64) / B
        self.lo = np.searchsorted(cdf, left, side="right").astype(np.int64)
        depth = int(per_bucket.max(initial=0))
        self.edges = np.full((depth, B), 2.0)  # 2.0: above every u
        fill = np.zeros(B, dtype=np.int64)
        for i in np.flatnonzero(inside):
            b = k[i]
            self.edges[fill[b], b] = cdf[i]
            fill[b] += 1
        self.clip = bool(cdf[-1] < 1.0)  # u ≥ cdf[-1] possible: the index n must become n − 1

    def __call__(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        k = (u * self.scale).astype(np.int64)  # u in [0, 1): the bucket (clipped: memory-safe for any u)
        idx = self.lo.take(k, mode="clip")
        for e in self.edges:
            idx += u >= e.take(k, mode="clip")
        if self.clip:
            np.minimum(idx, self.n - 1, out=idx)
        return idx


_TABLES: dict[bytes, BucketedCDF] = {}


def _table(cdf: np.ndarray) -> BucketedCDF:
    key = cdf.tobytes()
    t = _TABLES.get(key)
    if t is None:
        if len(_TABLES) >= 256:
            _TABLES.clear()
        t = _TABLES[key] = BucketedCDF(cdf)
    return t


def categorical(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: index ``i`` with ``cdf[i-1] <= u < cdf[i]``.

    Args:
        u: (...,) uniforms.
        cdf: (n,) cumulative probabilities (last entry 1), or (..., n) row-wise CDFs whose
            leading shape matches ``u``.
    """
    if cdf.ndim == 1:
        if np.size(u) >= _MIN_TABLE_DRAWS and cdf.dtype == np.float64 and np.asarray(u).dtype == np.float64:
            return _table(cdf)(u)  # the same indices, by table lookup
        idx = np.searchsorted(cdf, u, side="right")
        return np.minimum(idx, cdf.shape[0] - 1)
    idx = (u[..., None] >= cdf).sum(axis=-1)
    return np.minimum(idx, cdf.shape[-1] - 1)
