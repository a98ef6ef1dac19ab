"""Stacked scenario seeds: G independent scenarios stepped as one group-major batch, by composition.

The benchmark runs many scenario seeds of one (scenario, policy) side by side: G groups of B
request slots, group g living in the world of seed ``world_seeds[g]``. Three pieces, used by the
simulator and by the policies (``agents``) alike:

* :class:`GroupLayout` — the one description of a group-major batch: rows ``[g·B, (g+1)·B)``
  belong to group g; it splits batches, names each row's group and keys per-group table rows.
* :class:`StackedCore` — G cores of any environment (CreativeSelection, AdSession, …), each an
  ordinary unstacked core of B slots on its own world with its own pools, β0, fatigue memory and
  CTR estimate, stepped together behind the same core interface. Group g is therefore, by
  construction, bit for bit the unstacked core of its seed (tested).
* :class:`GroupedGenerator` — a policy's G random generators behind the ``np.random.Generator``
  methods: a draw of n rows of a group-major batch takes group g's rows from generator g, exactly
  what an unstacked policy seeded like group g would draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adsim import rng as crng


def check_world_seeds(world_seeds, num_envs: int) -> tuple[int, ...]:
    """Validate the world seeds of a stacked env: a non-empty sequence of ints >= 0 dividing num_envs."""
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ValueError(f"num_envs == {num_envs!r}, must be an int >= 1")
    if isinstance(world_seeds, (str, bytes)) or not hasattr(world_seeds, "__len__"):
        raise TypeError(f"world_seeds must be a sequence of ints >= 0, got {type(world_seeds).__name__} "
                        f"{world_seeds!r}")
    seeds = tuple(world_seeds)
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0]
    if not seeds or bad:
        raise ValueError(f"world_seeds == {list(seeds)!r}: must be a non-empty sequence of ints >= 0"
                         + (f" ({bad[0]!r} is not)" if bad else ""))
    if num_envs % len(seeds):
        raise ValueError(f"num_envs == {num_envs} is not a multiple of len(world_seeds) == {len(seeds)}: "
                         f"every stacked scenario gets num_envs / len(world_seeds) slots")
    return tuple(int(s) for s in seeds)


class GroupLayout:
    """G groups of a group-major batch of any size n = G·B: rows ``[g·B, (g+1)·B)`` are group g.

    Args:
        n_groups: G >= 1 (1: an unstacked batch).
        owner: who holds the groups, for error messages (e.g. ``"the policy's"``).
    """

    def __init__(self, n_groups: int, owner: str = "the"):
        if isinstance(n_groups, bool) or not isinstance(n_groups, (int, np.integer)) or n_groups < 1:
            raise ValueError(f"n_groups == {n_groups!r}, must be an int >= 1")
        self.n_groups, self.owner = int(n_groups), owner

    def group_size(self, n: int) -> int:
        """B of a batch of ``n`` rows; raises unless ``n`` is a multiple of G."""
        G = self.n_groups
        if n % G:
            raise ValueError(f"a batch of {n} requests cannot be split into {self.owner} {G} groups "
                             f"(group_seeds); it must be a multiple of {G}")
        return n // G

    def rows(self, n: int) -> np.ndarray:
        """(n,) group of each row of a batch of ``n``."""
        return np.repeat(np.arange(self.n_groups), self.group_size(n))

    def slices(self, n: int) -> list[slice]:
        """Each group's rows of a batch of ``n``."""
        B = self.group_size(n)
        return [slice(g * B, (g + 1) * B) for g in range(self.n_groups)]

    def split(self, array: np.ndarray) -> list[np.ndarray]:
        """A batched array (leading axis n) cut into its G groups."""
        return [array[s] for s in self.slices(array.shape[0])]

    def split_rows(self, rows: np.ndarray, n: int) -> list[np.ndarray]:
        """Row indices into a batch of ``n`` cut by group, made local to each group (sorted input)."""
        B = self.group_size(n)
        return [rows[(rows >= g * B) & (rows < (g + 1) * B)] - g * B for g in range(self.n_groups)]

    @staticmethod
    def key(group, local, n_local: int):
        """Row of a per-group table holding ``n_local`` rows per group: ``group · n_local + local``."""
        return group * n_local + local


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _cat_dicts(parts: list[dict]) -> dict:
    return {k: _cat([p[k] for p in parts]) for k in parts[0]}


class StackedCore:
    """G cores of B slots each (one per stacked world) behind the core interface of G·B slots.

    Args:
        config: the shared env config (each core's has its own world seed).
        cores: the G unstacked cores, each of B slots; group g is ``cores[g]``.

    ``worlds`` holds the G worlds (there is no single ``world``). ``seed`` takes an int (slot i of
    the G·B gets the i-th child stream of ``SeedSequence(seed)``), G ints (group g's slots get the
    streams an unstacked env of B slots reset with ``seed[g]`` gets) or G·B ints (one per slot).
    """

    def __init__(self, config, cores: Sequence):
        self.cores = list(cores)
        if not self.cores:
            raise ValueError("a stacked core needs at least one core")
        B = self.cores[0].num_envs
        if any(c.num_envs != B for c in self.cores):
            raise ValueError(f"stacked cores must have the same number of slots, got {[c.num_envs for c in self.cores]}")
        self.config, self.group_size = config, B
        self.layout = GroupLayout(len(self.cores))
        self.num_envs = len(self.cores) * B
        self.worlds = tuple(c.world for c in self.cores)
        self.OUTCOME_INFO = self.cores[0].OUTCOME_INFO
        # a core's own action space and check (``adsim.envs.base``), where it declares them
        self.action_space = getattr(self.cores[0], "action_space", None)
        if self.action_space is not None:
            self.check_actions = self.cores[0].check_actions

    @property
    def keys(self) -> np.ndarray | None:
        keys = [c.keys for c in self.cores]
        return None if any(k is None for k in keys) else np.concatenate(keys)

    def seed(self, seed) -> None:
        G, N = len(self.cores), self.num_envs
        if not isinstance(seed, (int, np.integer)) and hasattr(seed, "__len__") and len(seed) == G and G != N:
            for core, s in zip(self.cores, seed):
                core.seed(s)
            return
        if not isinstance(seed, (int, np.integer)) and hasattr(seed, "__len__") and len(seed) != N:
            raise ValueError(f"got {len(seed)} seeds; pass one per stacked world ({G}), one per sub-env ({N}) "
                             f"or a single int")
        for core, keys in zip(self.cores, self.layout.split(crng.stream_keys(seed, N))):
            core.set_keys(keys)

    def restart(self, rows: np.ndarray) -> None:
        for core, local in zip(self.cores, self.layout.split_rows(rows, self.num_envs)):
            if local.size:
                core.restart(local)

    def serve(self) -> None:
        for core in self.cores:
            core.serve()

    def step(self, actions: np.ndarray):
        outs = [core.step(a) for core, a in zip(self.cores, self.layout.split(actions))]
        return type(outs[0])(*(_cat(list(f)) for f in zip(*outs)))

    def observation(self) -> dict[str, np.ndarray]:
        return _cat_dicts([core.observation() for core in self.cores])

    def info(self, outcome=None) -> dict[str, np.ndarray]:
        parts = [None] * len(self.cores) if outcome is None else self._split_outcome(outcome)
        return _cat_dicts([core.info(o) for core, o in zip(self.cores, parts)])

    def final(self, rows: np.ndarray, outcome) -> tuple[dict, dict]:
        """Final observations (rows of ``rows``, in order) and infos of the slots whose episode ended."""
        obs, infos = [], []
        for core, local, o in zip(self.cores, self.layout.split_rows(rows, self.num_envs), self._split_outcome(outcome)):
            if local.size:
                ob, inf = core.final(local, o)
                obs.append(ob)
                infos.append(inf)
        return _cat_dicts(obs), _cat_dicts(infos)

    def _split_outcome(self, outcome) -> list:
        fields = [self.layout.split(f) for f in outcome]
        return [type(outcome)(*(f[g] for f in fields)) for g in range(len(self.cores))]


class GroupedGenerator:
    """G ``np.random.Generator`` s behind the Generator methods, for group-major batches.

    A draw's first axis is the batch: ``rng.random((n, K))`` takes rows ``[g·B, (g+1)·B)`` from
    generator g (``rng.random((B, K))`` there), so each group draws exactly what an unstacked policy
    seeded like it would. A parameter given per row — an array of the draw's full shape, rows first,
    as ``rng.beta(a, b, size=a.shape)`` with ``a``, ``b`` (n, K) — is split the same way (group g's
    generator gets its rows); other parameters broadcast as they would unstacked. A draw without a
    batch axis (``size=None`` or a size not divisible by G) raises: with stacked seeds every random
    number belongs to one group.
    """

    _SIZE_AT = {"random": 0, "standard_normal": 0, "integers": 2, "uniform": 2, "normal": 2, "beta": 2,
                "gamma": 2, "exponential": 1, "binomial": 2, "poisson": 1, "dirichlet": 1}
    """Position of ``size`` among each method's arguments."""
    _METHODS = tuple(_SIZE_AT)

    def __init__(self, generators: Sequence[np.random.Generator]):
        self.generators = list(generators)
        self.layout = GroupLayout(len(self.generators), "the policy's")

    def __getattr__(self, name: str):
        if name not in GroupedGenerator._METHODS:
            raise AttributeError(f"a stacked policy's rng has no {name!r}; draw with one of "
                                 f"{', '.join(GroupedGenerator._METHODS)} (size=(n, ...) over the batch), or "
                                 f"use self.rngs[g] for group g")

        at = GroupedGenerator._SIZE_AT[name]

        def draw(*args, size=None, **kwargs):
            if size is None and len(args) > at:
                size, args = args[at], args[:at] + args[at + 1:]
            if size is None:
                raise TypeError(f"rng.{name}() of a stacked policy needs size=(n, ...): the draws of a "
                                f"group-major batch of n rows (one generator per group)")
            shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
            B = self.layout.group_size(shape[0])

            def rows(x, g: int):  # group g's rows of a per-row parameter, anything else as it is
                return x[g * B:(g + 1) * B] if np.ndim(x) == len(shape) and np.shape(x)[0] == shape[0] else x

            return _cat([getattr(r, name)(*(rows(x, g) for x in args), size=(B,) + shape[1:],
                                          **{k: rows(v, g) for k, v in kwargs.items()})
                         for g, r in enumerate(self.generators)])

        return draw


__all__ = ["GroupLayout", "GroupedGenerator", "StackedCore", "check_world_seeds"]
