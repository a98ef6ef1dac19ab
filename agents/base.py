"""The one interface every policy implements, and the two reference policies.

A policy acts on a *batch* of requests at once::

    policy.reset(n_actions=K, seed=s)          # fresh state, its own random stream
    probs = policy.probabilities(obs, info)    # (N, K) action probabilities (propensities)
    actions = policy.select(obs, info)         # (N,) ints in [0, K)
    policy.update(obs, actions, rewards)       # learn from a batch of feedback

**Stacked scenario seeds.** ``policy.reset(K, group_seeds=[s_0, …, s_{G-1}])`` makes the policy
G independent copies whose state sits side by side in the same arrays (a leading group axis, or
group-qualified table rows), for a batch of G scenarios stepped together
(``adsim.stacking.StackedCore``). Batches are then group-major: rows ``[g·B, (g+1)·B)``
belong to group g (``policy.groups``, an ``adsim.stacking.GroupLayout``). Copy g draws from its own generator seeded ``s_g`` exactly as an unstacked
policy reset with ``seed=s_g`` would, so a stacked run reproduces each unstacked run bit for bit
(tested). Policies that can do this say so with ``stackable = True`` (every built-in bandit and
reference policy; not the SB3 agents, which train one network per seed, and not, by default, a
new subclass until its state keeps the groups apart).

``obs`` is the batched observation dict of ``adsim/CreativeSelection-v0``'s vector env (keys
``user``, ``context``, ``campaign``, ``candidates``, ``ctr_estimate``, each with a leading batch
axis). ``info`` is the env's info dict; only reference policies (the oracle) may read it.
Context-free policies accept the context and ignore it, so callers never branch on a policy's
type. ``select`` draws from ``probabilities`` with the policy's own ``np.random.Generator``;
deterministic policies report probability 1 for the chosen action.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from adsim.validation import check_seed
from adsim.stacking import GroupedGenerator, GroupLayout

Obs = dict[str, np.ndarray]

UNIFORM_BLOCK = 1024
"""Uniforms drawn at once for the one-request paths (:meth:`Policy.uniform_one`)."""
_NO_UNIFORMS = np.empty(0)
"""The uniform array of a policy without a live array block (:meth:`Policy.uniform_array`)."""


class Policy(ABC):
    """Base class: subclasses implement ``probabilities`` (and ``update`` if they learn)."""

    name: str = "policy"
    stackable: bool = False
    """Whether ``reset(group_seeds=…)`` can stack independent copies (see the module docstring).
    Off by default: a policy opts in once its state keeps groups apart."""
    _u_block: list[float] = []
    _u_taken = 0
    _u_size = UNIFORM_BLOCK
    """Uniforms per block (a policy taking several per decision may draw larger blocks: the stream is the same)."""
    _u_arr: np.ndarray = _NO_UNIFORMS
    """The block as an array in stream order (:meth:`uniform_array`), its next uniform at ``_u_taken``."""
    reference: bool = False
    """Whether the policy is a reference that reads the env's ``info`` (the ground truth, e.g. true
    click probabilities). Runners give ``info`` only to reference policies (the oracle); any other
    policy that reads it gets a clear error."""

    def reset(self, n_actions: int, seed: int | np.random.SeedSequence | None = None,
              group_seeds: Sequence[int] | None = None) -> None:
        """Forget everything learned; (re)seed the policy's random stream (or G streams, one per group)."""
        if isinstance(n_actions, bool) or not isinstance(n_actions, (int, np.integer)) or n_actions < 1:
            raise ValueError(f"n_actions == {n_actions!r}, must be an int >= 1")
        self.n_actions = int(n_actions)
        seed = None if seed is None else check_seed(seed, many=False)
        if group_seeds is None:
            self.rngs = [np.random.default_rng(seed)]
        else:
            if not self.stackable:
                raise TypeError(f"policy {self.name!r} cannot stack scenario seeds (group_seeds); "
                                f"run one seed per policy instance")
            if seed is not None:
                raise ValueError("pass seed= or group_seeds=, not both")
            if isinstance(group_seeds, (str, bytes)) or not hasattr(group_seeds, "__len__") or not group_seeds:
                raise TypeError(f"group_seeds must be a non-empty sequence of seeds, got {group_seeds!r}")
            group_seeds = check_seed(list(group_seeds), "group_seeds")
            self.rngs = [np.random.default_rng(s) for s in group_seeds]
        self.n_groups = len(self._rngs)
        self.groups = GroupLayout(self.n_groups, "the policy's")
        """The layout of the policy's group-major batches (one group unless stacked)."""
        self.rng = self._rngs[0] if self.n_groups == 1 else GroupedGenerator(self._rngs)

    # ------------------------------------------------------------------ generators
    @property
    def rng(self) -> np.random.Generator | GroupedGenerator:
        """The policy's generator; stacked, a :class:`adsim.stacking.GroupedGenerator` whose draws of
        ``size=(n, ...)`` take each group's rows from that group's generator."""
        if self._u_taken:
            self._sync_uniforms()
        return self._rng

    @rng.setter
    def rng(self, value) -> None:
        self._rng = value
        self._u_block: list[float] = []
        self._u_taken = 0
        self._u_arr = _NO_UNIFORMS

    @property
    def rngs(self) -> list[np.random.Generator]:
        """One generator per group (one unless stacked)."""
        if self._u_taken:
            self._sync_uniforms()
        return self._rngs

    @rngs.setter
    def rngs(self, value: list[np.random.Generator]) -> None:
        self._rngs = value
        self._u_block, self._u_taken, self._u_arr = [], 0, _NO_UNIFORMS

    def uniform_one(self) -> float:
        """One uniform from the (unstacked) policy's generator: the float ``self.rng.random()`` would
        return. Drawn in blocks of ``UNIFORM_BLOCK`` from a copy of the generator, which is then
        advanced by the number used before anything else draws from it (``rng``/``rngs`` do that),
        so the stream, and every later draw, is exactly that of calling ``self.rng.random()`` each time."""
        block = self._u_block
        if block:
            self._u_taken += 1
            return block.pop()
        return self._refill_uniforms()

    def uniforms_one(self, n: int) -> list[float]:
        """The next ``n`` uniforms of the (unstacked) policy's stream: :meth:`uniform_one` ``n`` times."""
        block = self._u_block
        if len(block) >= n:
            out = block[:-n - 1:-1]
            del block[-n:]
            self._u_taken += n
            return out
        return [self.uniform_one() for _ in range(n)]

    def _refill_uniforms(self) -> float:
        if self._u_taken:
            self._sync_uniforms()
        rng = self._rng
        bg = getattr(rng, "bit_generator", None)
        if not isinstance(bg, np.random.PCG64):  # stacked or another bit generator: one at a time
            return float(rng.random())
        shadow = getattr(self, "_u_shadow", None)
        if shadow is None:
            shadow = self._u_shadow = np.random.Generator(np.random.PCG64(0))
        shadow.bit_generator.state = bg.state
        block = shadow.random(self._u_size).tolist()
        block.reverse()
        u = block.pop()
        self._u_block, self._u_taken, self._u_arr = block, 1, _NO_UNIFORMS
        return u

    def uniform_array(self) -> np.ndarray:
        """A fresh block of the (unstacked, PCG64) policy's next ``_u_size`` uniforms as an array in
        stream order, for compiled one-request paths: they take the uniforms at ``_u_taken`` (0 now)
        and advance it by the number used, and :meth:`_sync_uniforms` then advances the generator
        exactly as for :meth:`uniform_one`'s blocks (one block is live at a time: each refill drops
        the other)."""
        if self._u_taken:
            self._sync_uniforms()
        shadow = getattr(self, "_u_shadow", None)
        if shadow is None:
            shadow = self._u_shadow = np.random.Generator(np.random.PCG64(0))
        shadow.bit_generator.state = self._rng.bit_generator.state
        self._u_arr = arr = shadow.random(self._u_size)
        self._u_block, self._u_taken = [], 0
        return arr

    def _sync_uniforms(self) -> None:
        """Advance the generator past the block's uniforms used so far and drop the rest."""
        bg = self._rng.bit_generator
        before = bg.state
        bg.advance(self._u_taken)  # one 64-bit step per double, as Generator.random draws them
        after = bg.state  # advance() drops a buffered 32-bit half; random() would not have
        if (after["has_uint32"], after["uinteger"]) != (before["has_uint32"], before["uinteger"]):
            after["has_uint32"], after["uinteger"] = before["has_uint32"], before["uinteger"]
            bg.state = after
        self._u_block, self._u_taken, self._u_arr = [], 0, _NO_UNIFORMS

    def group_rows(self, n: int) -> np.ndarray:
        """(n,) group of each row of a group-major batch of ``n`` requests."""
        return self.groups.rows(n)

    def uniforms(self, n: int, draw: np.ndarray | None = None) -> np.ndarray:
        """(n, 1) uniforms for a group-major batch, group g's from its own generator.

        ``draw`` (G,) bool limits the draws to some groups (the others' rows are NaN)."""
        if draw is None:
            return self.rng.random((n, 1))
        B = self.groups.group_size(n)
        return np.concatenate([r.random((B, 1)) if draw is None or draw[g] else np.full((B, 1), np.nan)
                               for g, r in enumerate(self.rngs)])

    @abstractmethod
    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N, K) probability of each action for each request."""

    def select(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N,) actions drawn from ``probabilities`` with the policy's own generator(s)."""
        p = self.probabilities(obs, info)
        return draw_actions(p, self.uniforms(p.shape[0]))

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from a batch of feedback (no-op for non-learning policies)."""

    # ------------------------------------------------------------------ one request, Python scalars
    def select_one(self, obs: Obs, info: dict[str, Any] | None = None) -> int:
        """The action for a batch of one request, as a Python int: ``select(obs, info)[0]``, the same
        draw from the same stream (the classic bandit loop's call; policies with a lean one-request
        path take it without making an array)."""
        check_one_request(obs)
        return int(self.select(obs, info)[0])

    def update_one(self, obs: Obs, action: int, reward: float) -> None:
        """Learn from one request's feedback, Python scalars: ``update(obs, [action], [reward])``."""
        self.update(obs, *one_feedback(action, reward))

    def __init_subclass__(cls, **kwargs) -> None:
        """A class that redefines ``select`` (or ``update``) but not ``select_one`` (``update_one``)
        gets the generic one, which calls it: an inherited lean path would bypass the new method."""
        super().__init_subclass__(**kwargs)
        for batched, one in (("select", "select_one"), ("update", "update_one")):
            if batched in cls.__dict__ and one not in cls.__dict__:
                setattr(cls, one, getattr(Policy, one))

    @staticmethod
    def batch_size(obs: Obs) -> int:
        return int(obs["ctr_estimate"].shape[0])


def check_one_request(obs: Obs) -> None:
    """``select_one``'s check: a ValueError if ``obs`` is a batch of more (or fewer) than one
    request (anything else wrong with it is for ``select`` to say)."""
    est = obs.get("ctr_estimate") if isinstance(obs, dict) else None
    if est is not None and np.shape(est)[:1] != (1,):
        raise ValueError(f"select_one takes a batch of one request, got obs['ctr_estimate'] of shape {np.shape(est)}")


SCALAR_REWARDS = frozenset({float, int, np.float64, np.float32, np.int64, np.int32})
"""Reward types the lean ``update_one`` paths take as they are (a bool, or anything else, goes
through :func:`one_feedback`'s checks)."""


def one_feedback(action: Any, reward: Any) -> tuple[np.ndarray, np.ndarray]:
    """(1,) int64 and float64 arrays of one request's ``action`` and ``reward`` (``update_one``'s
    arguments), for ``update``, which checks their range; a TypeError naming the argument for an
    action that is not an integer (bools are not) or a reward that is not a real number."""
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        raise TypeError(f"action must be an int, got {type(action).__name__} {action!r}")
    if isinstance(reward, (bool, np.bool_)) or not isinstance(reward, (int, float, np.integer, np.floating)):
        raise TypeError(f"reward must be a real number, got {type(reward).__name__} {reward!r}")
    return np.array([action], dtype=np.int64), np.array([reward], dtype=np.float64)


def draw_actions(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(N,) actions drawn from probabilities (N, K) by inverse CDF with uniforms ``u`` (N, 1)."""
    return np.minimum((u > np.cumsum(p, axis=1)).sum(axis=1), p.shape[1] - 1)


class RandomPolicy(Policy):
    """Uniformly random choice among the K candidates."""

    name = "random"
    stackable = True

    def probabilities(self, obs, info=None):
        n = self.batch_size(obs)
        return np.full((n, self.n_actions), 1.0 / self.n_actions)


class OraclePolicy(Policy):
    """Shows the candidate with the highest *true* expected reward (reads ``info``; reference only)."""

    name = "oracle"
    stackable = True
    reference = True

    def probabilities(self, obs, info=None):
        if info is None or "expected_reward" not in info:
            raise ValueError("the oracle needs the env's info with 'expected_reward' (ground truth)")
        best = np.argmax(np.asarray(info["expected_reward"]), axis=1)
        p = np.zeros((best.shape[0], self.n_actions))
        p[np.arange(best.shape[0]), best] = 1.0
        return p
