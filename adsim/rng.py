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


def uniforms(
    keys: np.ndarray, episode: np.ndarray, step: np.ndarray, n_streams: int, offset: int = 0
) -> np.ndarray:
    """Uniform numbers in [0, 1) for a batch of (key, episode, step) positions.

    Args:
        keys: (N,) uint64 stream keys, one per sub-environment.
        episode: (N,) integer episode index of each sub-environment.
        step: (N,) or (N, T) integer step index inside the episode.
        n_streams: how many independent numbers to draw at each position.
        offset: first stream index (to keep separate families of draws apart).

    Returns:
        (N, n_streams) or (N, T, n_streams) float64 uniforms in [0, 1).
    """
    keys = np.asarray(keys, dtype=np.uint64)
    step = np.asarray(step, dtype=np.uint64)
    episode = np.asarray(episode, dtype=np.uint64)
    extra = (step.ndim - 1) * (1,)
    pos = episode.reshape((-1,) + extra) * np.uint64(MAX_EPISODE_STEPS) + step  # (N,) or (N, T)
    k = keys.reshape((-1,) + extra + (1,))
    z = pos[..., None] * np.uint64(1 << 12) + np.arange(offset + 1, offset + 1 + n_streams, dtype=np.uint64)
    with np.errstate(over="ignore"):  # z = key + (base + 1) · golden (mod 2^64), then mixed, all in place
        z *= _GOLDEN
        z += k
        _mix64(z)
    z >>= _S11
    out = z.view(np.int64).astype(np.float64)  # < 2^53: exact either way, int64 converts faster
    out *= _TO_UNIT
    return out


def categorical(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: index ``i`` with ``cdf[i-1] <= u < cdf[i]``.

    Args:
        u: (...,) uniforms.
        cdf: (n,) cumulative probabilities (last entry 1), or (..., n) row-wise CDFs whose
            leading shape matches ``u``.
    """
    if cdf.ndim == 1:
        idx = np.searchsorted(cdf, u, side="right")
        return np.minimum(idx, cdf.shape[0] - 1)
    idx = (u[..., None] >= cdf).sum(axis=-1)
    return np.minimum(idx, cdf.shape[-1] - 1)
