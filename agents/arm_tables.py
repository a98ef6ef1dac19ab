"""Shared machinery of the bandit policies: input checks, argmax propensities, per-campaign arms.

In pool mode a campaign's K candidates persist, so candidate index ``k`` is an arm. A batch may
mix campaigns (each vector-env slot draws its own), so context-free policies keep one row of arm
statistics per campaign, keyed by the request's public campaign feature vector
(``obs["campaign"]``): :class:`CampaignIndex` maps those rows to table rows, growing the tables
as new campaigns appear. Two campaigns with identical public features would share a row.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from itertools import accumulate
from typing import Any

import numpy as np

from adsim.stacking import GroupLayout
from agents.base import SCALAR_REWARDS, Obs, Policy, check_one_request, one_feedback

REQUIRED_KEYS = ("user", "context", "campaign", "candidates", "ctr_estimate")
_REQUIRED = frozenset(REQUIRED_KEYS)


def check_obs(obs: Obs, keys: tuple[str, ...] = REQUIRED_KEYS, n_actions: int | None = None) -> int:
    """Validate a batched observation dict (K candidates if ``n_actions`` is given); return N."""
    if not isinstance(obs, dict):
        raise TypeError(f"obs must be a dict of batched arrays, got {type(obs).__name__}")
    missing = [k for k in keys if k not in obs]
    if missing:
        raise ValueError(f"obs lacks key {missing[0]!r}; a policy needs {list(keys)}")
    est = obs["ctr_estimate"]
    if getattr(est, "ndim", 0) != 2:
        raise ValueError(f"obs['ctr_estimate'] must be (N, K), got shape {np.shape(est)}")
    if n_actions is not None and est.shape[1] != n_actions:
        raise ValueError(f"obs has {est.shape[1]} candidates, the policy was reset for K == {n_actions}")
    return int(est.shape[0])


def check_feedback(actions: Any, rewards: Any, n: int, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a batch of feedback: ``actions`` (N,) ints in [0, K), ``rewards`` (N,) finite."""
    a = np.asarray(actions)
    r = np.asarray(rewards, dtype=np.float64)
    if a.shape != (n,) or r.shape != (n,):
        raise ValueError(f"actions shape {a.shape} and rewards shape {r.shape}, expected ({n},) each")
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"actions must be integers, got dtype {a.dtype}")
    if n and (a.min() < 0 or a.max() >= n_actions):
        bad = a[(a < 0) | (a >= n_actions)][0]
        raise ValueError(f"action == {bad}, must be in [0, {n_actions - 1}]")
    if not np.all(np.isfinite(r)):
        raise ValueError("rewards must be finite")
    return a.astype(np.int64, copy=False), r


def check_one_feedback(actions: Any, rewards: Any, n_actions: int) -> tuple[int, float]:
    """:func:`check_feedback` for a batch of one request, returning Python scalars (fast path)."""
    if not (type(actions) is np.ndarray and actions.shape == (1,) and actions.dtype.kind in "iu"):
        a, r = check_feedback(actions, rewards, 1, n_actions)
        return int(a[0]), float(r[0])
    a = actions.item()
    r = float(rewards.item()) if type(rewards) is np.ndarray and rewards.shape == (1,) else (
        float(np.asarray(rewards, dtype=np.float64)[0]) if np.shape(rewards) == (1,) else np.nan)
    if not 0 <= a < n_actions or not math.isfinite(r):
        a_arr, r_arr = check_feedback(actions, rewards, 1, n_actions)  # raises the precise error
        return int(a_arr[0]), float(r_arr[0])
    return a, r


def draw_one(p: list[float], u: float) -> int:
    """:func:`agents.base.draw_actions` for one request: the inverse-CDF draw with the same
    sequential cumulative sums (``np.cumsum``), in Python floats."""
    c, action = 0.0, 0
    for x in p:
        c += x
        action += u > c
    return min(action, len(p) - 1)


def draw_cumulative(cums: list[float], u: float) -> int:
    """:func:`draw_one` from cumulative sums that never decrease (``list(accumulate(p))`` of
    probabilities p >= 0, the same sequential sums): the number below ``u`` is a bisection."""
    return min(bisect_left(cums, u), len(cums) - 1)


def check_unit_rewards(rewards: np.ndarray, policy: str) -> None:
    """Beta/KL/EXP3 policies need rewards in [0, 1] (click or conversion rewards)."""
    if rewards.size and (rewards.min() < 0.0 or rewards.max() > 1.0):
        bad = rewards[(rewards < 0) | (rewards > 1)][0]
        raise ValueError(f"reward == {bad}; {policy} needs rewards in [0, 1] (use reward='click' or 'conversion')")


def argmax_probabilities(scores: np.ndarray) -> np.ndarray:
    """(N, K) uniform probability over each row's maximisers (ties share the probability)."""
    top = scores == scores.max(axis=1, keepdims=True)
    return top / top.sum(axis=1, keepdims=True)


class PosteriorDraws:
    """Mixin: a random stream for Monte-Carlo propensities that is a function of the policy's state.

    Policies whose action probabilities are estimated from posterior draws (Thompson sampling)
    take those draws from ``self.draw_rng(g)`` (g = the group, 0 unless seeds are stacked), seeded
    by the group's seed and the policy's number of updates so far. So ``probabilities`` is a pure
    function of state and observation — asking twice gives the same propensities — and ``select``
    draws its actions from exactly them with the policy's own generator.
    """

    def _reset_draws(self) -> None:
        self._draw_keys = [int(r.integers(0, 2**63)) for r in self.rngs]
        self.n_updates = 0

    def draw_rng(self, group: int = 0) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64([self._draw_keys[group], self.n_updates]))

    def per_group(self, row_groups: np.ndarray, draw) -> np.ndarray:
        """``draw(rng, rows)`` on each group's rows (in order) with that group's draw stream,
        put back in row order; ``row_groups`` (U,) is the group of each row."""
        if len(self._draw_keys) == 1:
            return draw(self.draw_rng(0), slice(None))
        parts = [(int(g), np.flatnonzero(row_groups == g)) for g in np.unique(row_groups)]
        outs = [draw(self.draw_rng(g), rows) for g, rows in parts]
        out = np.empty((row_groups.shape[0],) + outs[0].shape[1:], dtype=outs[0].dtype)
        for (_, rows), o in zip(parts, outs):
            out[rows] = o
        return out


class CampaignIndex:
    """Maps campaign feature rows (N, C) to dense table rows (N,), growing as campaigns appear.

    With ``groups`` G > 1 (stacked scenario seeds, group-major batches) a row is a (group,
    campaign) pair, so groups never share a row; ``local`` numbers each group's rows 0, 1, … in
    the order the group first saw them — the row ids an unstacked index would have given.
    """

    def __init__(self, layout: GroupLayout | None = None) -> None:
        self.layout = layout if layout is not None else GroupLayout(1)
        self.groups = groups = self.layout.n_groups
        self._rows: dict[bytes, int] = {}
        self.group: list[int] = []
        """Group of each table row."""
        self.local: list[int] = []
        """Row id inside its group."""
        self._per_group = [0] * groups
        self._last: np.ndarray | None = None
        self._last_id = 0

    def __len__(self) -> int:
        return len(self._rows)

    def _id(self, row: np.ndarray) -> int:
        key = np.ascontiguousarray(row).tobytes()
        if key not in self._rows:
            g = int(row[0]) if self.groups > 1 else 0
            self._rows[key] = len(self._rows)
            self.group.append(g)
            self.local.append(self._per_group[g])
            self._per_group[g] += 1
        return self._rows[key]

    def row_id(self, row: np.ndarray) -> int:
        """Table row of one campaign feature row (C,) (a batch of one request: no groups)."""
        got = self._rows.get(row.tobytes())
        return self._id(row) if got is None else got

    def lookup(self, campaign: np.ndarray) -> np.ndarray:
        """(N,) table rows of the campaigns of a (group-major) batch."""
        campaign = np.asarray(campaign)
        if campaign.ndim != 2:
            raise ValueError(f"obs['campaign'] must be (N, campaign_dim), got shape {campaign.shape}")
        if self.groups > 1:
            g = self.layout.rows(campaign.shape[0]).astype(campaign.dtype)
            campaign = np.concatenate([g[:, None], campaign], axis=1)
        last = self._last
        if last is not None and last.shape == campaign.shape[1:] and (campaign == last).all():
            return np.full(campaign.shape[0], self._last_id, dtype=np.int64)
        rows = np.ascontiguousarray(campaign).view(np.dtype((np.void, campaign.dtype.itemsize * campaign.shape[1])))
        uniq, first, inv = np.unique(rows[:, 0], return_index=True, return_inverse=True)
        ids = np.array([self._id(campaign[i]) for i in first], dtype=np.int64)  # one per distinct row
        if uniq.shape[0] == 1:
            self._last, self._last_id = campaign[0].copy(), int(ids[0])
        return ids[inv.reshape(-1)]


_NOT_AN_ARRAY = object()
"""What the one-request path's last request and campaign array are before the first request (no
argument is this object)."""


class OneRow:
    """One campaign row of the arm tables for the one-request path: ``counts`` and ``sums`` are
    memoryviews of the tables' row (the same memory, read and written as Python floats), ``cums``
    the cumulative sums of the row's probabilities while a policy keeps them cached (else None),
    the last replaced by +inf (so the bisection of a uniform never passes the last arm, as
    :func:`draw_cumulative`'s ``min``), ``cache`` whatever else the policy keeps. ``lo`` and ``hi``
    (K lists, or None) are open bounds of each arm's mean reward (sum / count) inside which the
    cached probabilities hold (a policy whose probabilities depend on the means only through which
    arms lead sets them): an update that leaves the arm's mean inside them changes nothing cached,
    and :meth:`ArmPolicy.update` then skips the policy's hook."""

    __slots__ = ("counts", "sums", "cums", "cache", "lo", "hi")

    def __init__(self, counts: np.ndarray, sums: np.ndarray):
        self.counts, self.sums = memoryview(counts), memoryview(sums)
        self.cums: list[float] | None = None
        self.cache: Any = None
        self.lo: list[float] | None = None
        self.hi: list[float] | None = None


class ArmPolicy(Policy):
    """Base of the context-free pool bandits: per-campaign arm counts and reward sums.

    Subclasses implement :meth:`_slot_probabilities`, the (U, K) action probabilities of U
    campaign rows from their statistics; requests of the same campaign share them.

    A batch of one request (unstacked) takes a lean path with the same result: the same
    probabilities (subclasses compute them in Python floats with the same operations, see
    :meth:`_one_probabilities`), the same uniform, the same inverse-CDF draw, the same additions to
    ``counts`` and ``sums``. ``counts`` and ``sums`` are changed only by :meth:`update` (which keeps
    that path's cached probabilities in step). Its action is a shared read-only (1,) array
    (one per action: no copy per decision); copy it to write to it.
    """

    stackable = True

    def reset(self, n_actions: int, seed: int | np.random.SeedSequence | None = None, group_seeds=None) -> None:
        super().reset(n_actions, seed, group_seeds)
        self.index = CampaignIndex(self.groups)
        self.counts = np.zeros((0, self.n_actions))
        """(campaigns, K) impressions per arm."""
        self.sums = np.zeros((0, self.n_actions))
        """(campaigns, K) summed rewards per arm."""
        self.n_updates = 0
        self._one_shape = (1, self.n_actions)
        self._one_cshape = self._one_key = self._one_last = None
        self._one_obs: Any = _NOT_AN_ARRAY  # never a request (nor None)
        self._one_campaign: Any = _NOT_AN_ARRAY
        self._one_est: Any = _NOT_AN_ARRAY
        """The last request the one-request path checked, its campaign and estimate arrays, the
        campaign's shape and bytes, and its table row."""
        self._one_rows: dict[int, OneRow] = {}
        """:class:`OneRow` of the rows the one-request path used."""
        self._make_actions()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_one_rows"] = {}  # memoryviews do not pickle; remade on use
        state["_one_obs"] = state["_one_campaign"] = state["_one_est"] = _NOT_AN_ARRAY
        state["_action_ids"] = {}  # ids of this object's arrays: remade for the copy
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "_actions" in state:  # unpickled arrays are writeable copies: made anew
            self._make_actions()

    def _make_actions(self) -> None:
        """The (1,) read-only action arrays, one per action, that one-request decisions return:
        views of immutable bytes, which can never be made writeable, so :meth:`update` knows such an
        array (found by its id) still holds its action without checking it."""
        held = np.frombuffer(np.arange(self.n_actions, dtype=np.int64).tobytes(), dtype=np.int64)
        self._actions = [held[k:k + 1] for k in range(self.n_actions)]
        self._action_ids = {id(a): k for k, a in enumerate(self._actions)}

    def _grow(self, n_rows: int) -> None:
        """Called when the tables need ``n_rows`` rows; subclasses with more tables extend it."""
        extra = n_rows - self.counts.shape[0]
        pad = np.zeros((max(extra, self.counts.shape[0]), self.n_actions))
        self.counts = np.concatenate([self.counts, pad])
        self.sums = np.concatenate([self.sums, pad])
        self._one_rows = {}  # their memoryviews are of the old tables

    def slots(self, obs: Obs) -> np.ndarray:
        """(N,) rows of the requests' campaigns in the statistics tables."""
        s = self.index.lookup(obs["campaign"])
        if len(self.index) > self.counts.shape[0]:
            self._grow(len(self.index))
        return s

    # ------------------------------------------------------------------ one request at a time
    def _one_slot(self, obs: Obs) -> int | None:
        """Table row of a well-formed batch of one request (unstacked), or None: take the batched path
        (which also raises the precise error for bad input)."""
        if type(obs) is not dict:
            return None
        campaign = obs.get("campaign")
        if obs is self._one_obs and campaign is self._one_campaign and campaign.tobytes() == self._one_key:
            return self._one_last  # the request just decided on (update after select), unchanged
        if campaign is not self._one_campaign or campaign.shape != self._one_cshape:  # else: checked before
            if type(campaign) is not np.ndarray or campaign.ndim != 2 or campaign.shape[0] != 1 or self.n_groups != 1:
                return None
        est = obs.get("ctr_estimate")
        if (type(est) is not np.ndarray or est.shape != self._one_shape
                or "user" not in obs or "context" not in obs or "candidates" not in obs):
            return None
        key = campaign.tobytes()
        if key != self._one_key:  # another campaign than the last request's
            slot = self.index._rows.get(key)
            if slot is None:  # a new campaign (every path that makes a row grows the tables after it)
                slot = self.index.row_id(campaign[0])
                if slot >= self.counts.shape[0]:
                    self._grow(len(self.index))
            self._one_key, self._one_last = key, slot
        self._one_obs, self._one_campaign, self._one_cshape, self._one_est = obs, campaign, campaign.shape, est
        return self._one_last

    def _one_row(self, slot: int) -> OneRow:
        """The :class:`OneRow` of a campaign row (made on first use)."""
        row = self._one_rows.get(slot)
        if row is None:
            row = self._one_rows[slot] = OneRow(self.counts[slot], self.sums[slot])
        return row

    def _one_probabilities(self, slot: int) -> list[float]:
        """The K probabilities of one campaign row as Python floats, equal to the batched path's;
        subclasses may compute them with scalar arithmetic in the same order (from :meth:`_one_row`)."""
        return self._slot_probabilities(np.array([slot]))[0].tolist()

    def _one_select(self, slot: int) -> int:
        """The action of one request: the inverse-CDF draw of :meth:`_one_probabilities` with one
        uniform (subclasses that cache probabilities set ``row.cums``, which :meth:`select` uses)."""
        return draw_one(self._one_probabilities(slot), self.uniform_one())

    def _one_update(self, row: OneRow, arm: int, reward: float, count: float, total: float) -> None:
        """Hook after one request's feedback added to ``row``: ``arm``'s count and reward sum are now
        ``count`` and ``total``; refresh caches (not called when the row's ``lo``/``hi`` bounds hold
        the arm's new mean)."""
        row.cums = None

    def select_one(self, obs: Obs, info: dict[str, Any] | None = None) -> int:
        if (type(obs) is dict and (campaign := obs.get("campaign")) is self._one_campaign
                and (est := obs.get("ctr_estimate")) is self._one_est and campaign.tobytes() == self._one_key
                and campaign.ndim == 2 and len(campaign) == 1
                and est.ndim == 2 and len(est) == 1 and est.size == self.n_actions
                and "user" in obs and "context" in obs and "candidates" in obs):
            # the arrays :meth:`_one_slot` checked for the last request, unchanged: its checks hold
            # (shapes by ndim, len and size, which make no tuple: (1, C) and its bytes fix the row
            # as the batched lookup's key, (1, K) the estimate)
            self._one_obs = obs
            slot = self._one_last
        else:
            slot = self._one_slot(obs)
            if slot is None:  # input the lean path does not take: the batched path checks it
                check_one_request(obs)
                return int(self._select_batch(obs, info)[0])
        row = self._one_rows.get(slot)
        if row is None or (cums := row.cums) is None:
            return self._one_select(slot)
        block = self._u_block  # Policy.uniform_one, inline
        if block:
            self._u_taken += 1
            u = block.pop()
        else:
            u = self._refill_uniforms()
        return bisect_left(cums, u)

    def select(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N,) actions drawn from ``probabilities``; a batch of one request takes the lean path
        (:meth:`select_one`), its action a shared read-only (1,) array."""
        if (type(obs) is dict and type(est := obs.get("ctr_estimate")) is np.ndarray
                and est.ndim == 2 and len(est) == 1):
            return self._actions[ArmPolicy.select_one(self, obs, info)]  # (not a subclass's: it may call this)
        return self._select_batch(obs, info)

    def _select_batch(self, obs: Obs, info: dict[str, Any] | None) -> np.ndarray:
        """:meth:`select` of a batch (or of input the one-request path does not take)."""
        return super().select(obs, info)

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        check_obs(obs, n_actions=self.n_actions)
        s = self.slots(obs)
        if s.size and (s == s[0]).all():
            p = self._slot_probabilities(s[:1])
            return np.broadcast_to(p, (s.shape[0], self.n_actions)).copy()
        uniq, inv = np.unique(s, return_inverse=True)
        return self._slot_probabilities(uniq)[inv.reshape(-1)]

    def _slot_probabilities(self, slots: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        try:  # (1,) arrays: one dimension, and item() finds one element (else ValueError); an
            # action array of the one-request path is read-only, so it still holds its action
            one = (((a1 := self._action_ids.get(id(actions))) is not None
                    or (type(actions) is np.ndarray and actions.ndim == 1 and type(a1 := actions.item()) is int))
                   and type(rewards) is np.ndarray and rewards.ndim == 1 and type(r1 := rewards.item()) is float)
        except ValueError:
            one = False
        # ArmPolicy's own update_one (the tables'): a subclass that redefines update, calling this
        # one, has the generic update_one, which calls its update
        if one:  # update_one checks the request, the action's range and the reward
            ArmPolicy.update_one(self, obs, a1, r1)
        elif self._one_slot(obs) is not None:  # a request of one with other feedback arrays: check them all
            ArmPolicy.update_one(self, obs, *check_one_feedback(actions, rewards, self.n_actions))
        else:
            self._update_batch(obs, actions, rewards)

    def update_one(self, obs: Obs, action: int, reward: float) -> None:
        if (obs is self._one_obs and (campaign := obs.get("campaign")) is self._one_campaign
                and campaign.tobytes() == self._one_key):  # the request just decided on (_one_slot, inline)
            slot = self._one_last
        else:
            slot = self._one_slot(obs)
        r1 = reward if type(reward) is float else float(reward) if type(reward) in SCALAR_REWARDS else None
        if (slot is None or r1 is None or type(action) is not int or not 0 <= action < self.n_actions
                or not 0.0 <= r1 <= 1.0):
            if slot is None:  # not a request of one: the batched path says why
                self._update_batch(obs, *one_feedback(action, reward))
                return
            action, r1 = check_one_feedback(*one_feedback(action, reward), self.n_actions)  # check it all
            if not 0.0 <= r1 <= 1.0:
                self._check_rewards(np.array([r1]))
        a1 = action
        self.n_updates += 1  # one request: scalar updates, equal to the bincounts of _update_batch
        row = self._one_rows.get(slot)
        if row is None:
            self.counts[slot, a1] += 1.0
            self.sums[slot, a1] += r1
        else:  # the same float additions, through the row's memoryviews
            counts, sums = row.counts, row.sums
            counts[a1] = n1 = counts[a1] + 1.0
            sums[a1] = s1 = sums[a1] + r1
            lo = row.lo  # bounds are set only beside cached probabilities
            if lo is not None:
                if not lo[a1] < s1 / n1 < row.hi[a1]:  # else: nothing cached changes
                    self._one_update(row, a1, r1, n1, s1)
            elif row.cums is not None or row.cache is not None:
                self._one_update(row, a1, r1, n1, s1)

    def _update_batch(self, obs: Obs, actions: Any, rewards: Any) -> None:
        self._one_rows = {}  # a batched update: cached probabilities are stale
        n = check_obs(obs, n_actions=self.n_actions)
        a, r = check_feedback(actions, rewards, n, self.n_actions)
        self._check_rewards(r)
        s = self.slots(obs)
        self.n_updates += 1
        self._add(s, a, r)

    def _add(self, slots: np.ndarray, a: np.ndarray, r: np.ndarray) -> None:
        """Add feedback to the tables: ``a`` (P,) arms shown in campaign rows ``slots`` (P,), rewards ``r`` (P,)."""
        flat = slots * self.n_actions + a
        size = self.counts.size
        self.counts += np.bincount(flat, minlength=size).reshape(self.counts.shape)
        self.sums += np.bincount(flat, weights=r, minlength=size).reshape(self.sums.shape)

    def update_pairs(self, obs: Obs, rows: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from feedback on (request, candidate) pairs of a batch, one update: candidate
        ``actions[i]`` shown to request ``rows[i]`` earned ``rewards[i]`` (each (P,), any number of
        pairs per request, e.g. the examined positions of slates; ``agents.slate``)."""
        check_obs(obs, n_actions=self.n_actions)
        self._check_rewards(rewards)
        self._one_rows = {}  # cached probabilities are stale
        s = self.slots(obs)
        self.n_updates += 1
        self._add(s[rows], actions, rewards)

    def candidate_index(self, obs: Obs) -> np.ndarray:
        """(N, K) per-candidate index of the requests (policies with one, as UCB: :meth:`_slot_index`)."""
        check_obs(obs, n_actions=self.n_actions)
        uniq, inv = np.unique(self.slots(obs), return_inverse=True)
        return self._slot_index(uniq)[inv.reshape(-1)]

    def _slot_index(self, slots: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"policy {self.name!r} has no per-candidate index")

    def _check_rewards(self, rewards: np.ndarray) -> None:
        """Hook for policies that need rewards in a range."""

    def means(self, slots: np.ndarray) -> np.ndarray:
        """(U, K) empirical mean reward per arm; +inf for arms never tried (they go first)."""
        n = self.counts[slots]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, self.sums[slots] / n, np.inf)
