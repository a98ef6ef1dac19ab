"""Observation and action spaces shared by the envs: CreativeSelection's request, AdSession's,
SlateSelection's and AdAuction's extensions of it, the slate action space :class:`Slate` and the
auction's (creative, bid) action (:func:`auction_action_space`, :func:`check_auction_actions`)."""

from __future__ import annotations

import copy

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from adsim.creative.parser import MAX_UNPARSED
from adsim.world import CONTEXT_DIM


def observation_space(world, n_candidates: int) -> spaces.Dict:
    """Dict space of one request of ``n_candidates`` candidates on a world (see the env docstring)."""
    w, K = world, n_candidates
    per_creative = np.concatenate([w.lexicon.candidate_nvec, [MAX_UNPARSED + 1]])
    nvec = np.tile(per_creative, K)
    return spaces.Dict(
        {
            "user": spaces.Box(0.0, 1.0, (w.user_dim,), np.float32),
            "context": spaces.Box(0.0, 1.0, (CONTEXT_DIM,), np.float32),
            "campaign": spaces.Box(0.0, 1.0, (w.campaign_dim,), np.float32),
            "candidates": spaces.MultiDiscrete(nvec),
            "ctr_estimate": spaces.Box(0.0, 1.0, (K,), np.float32),
        }
    )


def check_actions(actions, n_candidates: int, num_envs: int | None) -> np.ndarray:
    """Validate actions: integers in [0, K). Raises instead of clipping."""
    a = np.asarray(actions)
    if not np.issubdtype(a.dtype, np.integer):
        if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or not np.all(a == np.round(a)):
            raise TypeError(f"action must be integer, got {a.dtype} {actions!r}")
        a = a.astype(np.int64)
    expected = () if num_envs is None else (num_envs,)
    if a.shape != expected:
        raise ValueError(f"action shape {a.shape}, expected {expected}")
    if a.size and (a.min() < 0 or a.max() >= n_candidates):
        bad = a[(a < 0) | (a >= n_candidates)].flat[0]
        raise ValueError(f"action == {bad}, must be in [0, {n_candidates - 1}] (K = {n_candidates})")
    return a.reshape(-1).astype(np.int64)


class Slate(spaces.MultiDiscrete):
    """An ordered slate of L distinct candidates out of K: ``MultiDiscrete([K] * L)`` without repeats.

    Entry l is the candidate shown at position l (0 = top). ``sample()`` draws L distinct candidates
    uniformly (every ordered slate equally likely); ``contains()`` rejects a slate that shows a
    candidate twice. The vector env's space is :class:`SlateBatch` (``batch_space`` of this).

    Args:
        n_candidates: K >= 1.
        slate_size: L, 1 <= L <= K.
    """

    def __init__(self, n_candidates: int, slate_size: int, seed: int | np.random.Generator | None = None):
        if not 1 <= slate_size <= n_candidates:
            raise ValueError(f"slate_size == {slate_size}, must be in [1, n_candidates == {n_candidates}]")
        self.n_candidates, self.slate_size = int(n_candidates), int(slate_size)
        super().__init__(np.full(self.slate_size, self.n_candidates), dtype=np.int64, seed=seed)

    def sample(self, mask=None, probability=None) -> np.ndarray:
        """L distinct candidates in random order (masks are not supported: a slate has no per-entry mask)."""
        if mask is not None or probability is not None:
            raise NotImplementedError("Slate.sample() takes no mask or probability")
        return self.np_random.permutation(self.n_candidates)[: self.slate_size].astype(np.int64)

    def contains(self, x) -> bool:
        if not super().contains(np.asarray(x) if isinstance(x, (list, tuple)) else x):
            return False
        return bool(np.unique(x).size == self.slate_size)

    def __repr__(self) -> str:
        return f"Slate(n_candidates={self.n_candidates}, slate_size={self.slate_size})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Slate) and (other.n_candidates, other.slate_size) == (self.n_candidates, self.slate_size)


class SlateBatch(spaces.MultiDiscrete):
    """N slates (N, L) of a vector env: each row an ordered slate of L distinct candidates out of K."""

    def __init__(self, n_candidates: int, slate_size: int, n: int, seed: int | np.random.Generator | None = None):
        self.n_candidates, self.slate_size, self.n = int(n_candidates), int(slate_size), int(n)
        super().__init__(np.full((self.n, self.slate_size), self.n_candidates), dtype=np.int64, seed=seed)

    def sample(self, mask=None, probability=None) -> np.ndarray:
        """(N, L): each row L distinct candidates in random order (the top L of a random ranking)."""
        if mask is not None or probability is not None:
            raise NotImplementedError("SlateBatch.sample() takes no mask or probability")
        keys = self.np_random.random((self.n, self.n_candidates))
        return np.argsort(keys, axis=1)[:, : self.slate_size].astype(np.int64)

    def contains(self, x) -> bool:
        if not super().contains(np.asarray(x) if isinstance(x, (list, tuple)) else x):
            return False
        s = np.sort(x, axis=1)
        return bool(not (s[:, 1:] == s[:, :-1]).any())

    def __repr__(self) -> str:
        return f"SlateBatch(n_candidates={self.n_candidates}, slate_size={self.slate_size}, n={self.n})"

    def __eq__(self, other) -> bool:
        return isinstance(other, SlateBatch) and ((other.n_candidates, other.slate_size, other.n)
                                                  == (self.n_candidates, self.slate_size, self.n))


@batch_space.register(Slate)
def _batch_slate(space: Slate, n: int = 1) -> SlateBatch:
    return SlateBatch(space.n_candidates, space.slate_size, n, seed=copy.deepcopy(space.np_random))


def check_slates(actions, n_candidates: int, slate_size: int, num_envs: int | None) -> np.ndarray:
    """Validate slates: integers in [0, K), shape (L,) (single env) or (N, L), no candidate twice in a
    slate. Returns them as (N, L) int64 (N = 1 for the single env). Raises instead of repairing."""
    a = np.asarray(actions)
    if not np.issubdtype(a.dtype, np.integer):
        if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or not np.all(a == np.round(a)):
            raise TypeError(f"slate must be integer candidate indices, got {a.dtype} {actions!r}")
        a = a.astype(np.int64)
    expected = (slate_size,) if num_envs is None else (num_envs, slate_size)
    if a.shape != expected:
        raise ValueError(f"slate shape {a.shape}, expected {expected} (slate_size L = {slate_size} distinct "
                         f"candidates{'' if num_envs is None else ' per sub-env'})")
    a = a.reshape(-1, slate_size).astype(np.int64, copy=False)
    if a.min() < 0 or a.max() >= n_candidates:
        bad = a[(a < 0) | (a >= n_candidates)].flat[0]
        raise ValueError(f"slate entry == {bad}, must be in [0, {n_candidates - 1}] (K = {n_candidates})")
    if slate_size > 1:
        s = np.sort(a, axis=1)
        dup = s[:, 1:] == s[:, :-1]
        if dup.any():
            row = int(np.flatnonzero(dup.any(axis=1))[0])
            value = int(s[row, 1:][dup[row]][0])
            where = "" if num_envs is None else f" of sub-env {row}"
            raise ValueError(f"slate {a[row].tolist()}{where} shows candidate {value} twice; a slate holds "
                             f"{slate_size} distinct candidates")
    return a


def slate_observation_space(world, n_candidates: int, slate_size: int) -> spaces.Dict:
    """CreativeSelection's Dict space plus the ``page`` Box: each position's ad-slot one-hot (L·3,)."""
    from adsim.config import N_SLOTS

    base = observation_space(world, n_candidates)
    return spaces.Dict({**base.spaces, "page": spaces.Box(0.0, 1.0, (slate_size * N_SLOTS,), np.float32)})


AUCTION_ACTION = np.dtype([("creative", np.int64), ("bid", np.float64)])
"""The auction core's validated actions: a structured (N,) array of (creative, bid)."""


def auction_action_space(n_candidates: int, max_bid: float) -> spaces.Dict:
    """One auction's action: ``Dict(creative=Discrete(K), bid=Box(0, max_bid, shape=()))``; its
    ``batch_space`` over N sub-envs takes ``{"creative": (N,), "bid": (N,)}``."""
    return spaces.Dict({"creative": spaces.Discrete(n_candidates),
                        "bid": spaces.Box(0.0, float(max_bid), shape=(), dtype=np.float32)})


def check_auction_actions(actions, n_candidates: int, max_bid: float, num_envs: int | None) -> np.ndarray:
    """Validate (creative, bid) actions: a dict ``{"creative": …, "bid": …}`` of scalars (single env)
    or (N,) arrays (vector env), or a pair (creative, bid) for the single env. Creatives are integers in
    [0, K), bids finite numbers in [0, max_bid]. Returns a structured (N,) :data:`AUCTION_ACTION`
    array (N = 1 for the single env). Raises instead of clipping."""
    if num_envs is None and type(actions) is dict and len(actions) == 2:  # the common case, cheaply
        c, b = actions.get("creative"), actions.get("bid")
        if type(c) is int and type(b) is float and 0 <= c < n_candidates and 0.0 <= b <= max_bid:
            out = np.empty(1, dtype=AUCTION_ACTION)
            out[0] = (c, b)
            return out
    if isinstance(actions, np.ndarray) and actions.dtype.names is not None:
        actions = {name: actions[name] for name in actions.dtype.names}
    if num_envs is None and isinstance(actions, (tuple, list)) and len(actions) == 2:
        actions = {"creative": actions[0], "bid": actions[1]}
    if not isinstance(actions, dict):
        raise TypeError(f"auction actions must be a dict {{'creative': ..., 'bid': ...}}"
                        f"{'' if num_envs is None else ' of (N,) arrays'}, got {type(actions).__name__} {actions!r}")
    if set(actions) != {"creative", "bid"}:
        raise ValueError(f"auction actions have keys {sorted(actions)}, expected exactly ['bid', 'creative']")
    expected = () if num_envs is None else (num_envs,)
    c, b = np.asarray(actions["creative"]), np.asarray(actions["bid"])
    if num_envs is None:  # a (1,) array is one action too
        c, b = c.reshape(()) if c.shape == (1,) else c, b.reshape(()) if b.shape == (1,) else b
    for name, x in (("creative", c), ("bid", b)):
        if x.shape != expected:
            raise ValueError(f"{name} shape {x.shape}, expected {expected}")
    if not np.issubdtype(c.dtype, np.integer):
        if c.dtype == bool or not np.issubdtype(c.dtype, np.number) or not np.all(c == np.round(c)):
            raise TypeError(f"creative must be integer candidate indices, got {c.dtype} {actions['creative']!r}")
    if b.dtype == bool or not np.issubdtype(b.dtype, np.number):
        raise TypeError(f"bid must be numbers, got {b.dtype} {actions['bid']!r}")
    c, b = c.reshape(-1), b.reshape(-1).astype(np.float64)
    where = lambda i: "" if num_envs is None else f" (sub-env {i})"  # noqa: E731
    bad = np.flatnonzero((c < 0) | (c >= n_candidates))
    if bad.size:
        raise ValueError(f"creative == {c[bad[0]]}{where(bad[0])}, must be in [0, {n_candidates - 1}] (K = {n_candidates})")
    bad = np.flatnonzero(~((b >= 0.0) & (b <= max_bid)))  # NaN fails too
    if bad.size:
        raise ValueError(f"bid == {b[bad[0]]}{where(bad[0])}, must be a number in [0, {max_bid}] (max_bid)")
    out = np.empty(c.shape[0], dtype=AUCTION_ACTION)
    out["creative"], out["bid"] = c, b
    return out


def auction_observation_space(world, n_candidates: int, max_value: float) -> spaces.Dict:
    """CreativeSelection's Dict space plus the auction's ``value``, ``cvr_estimate``, ``budget_left``
    and ``day_left`` Boxes of shape (1,)."""
    base = observation_space(world, n_candidates)
    one = lambda high: spaces.Box(0.0, high, (1,), np.float32)  # noqa: E731
    return spaces.Dict({**base.spaces, "value": one(float(max_value)), "cvr_estimate": one(1.0),
                        "budget_left": one(1.0), "day_left": one(1.0)})


def render_candidates(language: str, header: str, candidates: np.ndarray, probs: np.ndarray,
                      extra_name: str, extra: np.ndarray) -> str:
    """ANSI rendering of one request: a header line, then each candidate's true click probability,
    one more per-candidate figure, its headline and its visual attributes."""
    from adsim.creative.parser import HeadlineParser

    parser = HeadlineParser(language)
    lines = [header]
    for k, cand in enumerate(candidates):
        lines.append(f"  [{k}] p={probs[k]:.4f} {extra_name}={extra[k]:.4f} "
                     f"{parser.render_slots(cand[:4])!r} attrs={cand[4:8].tolist()}")
    return "\n".join(lines)
