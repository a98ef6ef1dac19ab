"""The one adapter from Gymnasium's ``VectorEnv`` to Stable-Baselines3's ``VecEnv``.

The two vector APIs differ:

| | Gymnasium ``VectorEnv`` (1.x) | SB3 ``VecEnv`` |
|---|---|---|
| step | ``obs, reward, terminated, truncated, info`` | ``obs, reward, done, infos`` |
| info | one dict of batched arrays (``_key`` masks) | a list of N dicts |
| episode end | same-step autoreset: ``info["final_obs"]`` | ``infos[i]["terminal_observation"]``, ``infos[i]["TimeLimit.truncated"]`` |
| seeding | ``reset(seed=...)`` | ``seed(s)`` then ``reset()`` |

:class:`SB3VecEnv` wraps a same-step-autoreset Gymnasium vector env (the native vector envs of
``adsim``, or ``SyncVectorEnv`` with ``autoreset_mode=SAME_STEP``) so SB3 algorithms train on it
directly. ``final_obs`` may be a batched dict / array (adsim's native envs) or an object array of
per-env observations (Gymnasium's ``SyncVectorEnv``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env import VecEnv

_SKIP = ("final_obs", "final_info")


def select_keys(obs: Any, keys: tuple[str, ...] | None) -> Any:
    """The observation restricted to ``keys`` (a dict observation), or unchanged when ``keys`` is None."""
    return obs if keys is None else {k: obs[k] for k in keys}


def _row(obs: Any, i: int) -> Any:
    """Observation ``i`` of a batched observation (dict of arrays, array, or object array)."""
    if isinstance(obs, dict):
        return {k: v[i] for k, v in obs.items()}
    return obs[i]


class SB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` view of a Gymnasium ``VectorEnv`` with same-step autoreset.

    Args:
        env: the Gymnasium vector env (its ``metadata["autoreset_mode"]`` must be ``SAME_STEP``).
        seed: if given, the first :meth:`reset` calls ``env.reset(seed=seed)`` (adsim's vector envs
            then give sub-env i the i-th child stream of ``SeedSequence(seed)``); otherwise it passes
            ``seed=None`` (the env continues its stream, if it has one).
        keys: for a ``Dict`` observation space, the keys the agent sees (``None``: all of them).
        info_keys: the batched info keys copied into each sub-env's info dict (``None``: all of
            them). SB3 itself reads only ``terminal_observation`` and ``TimeLimit.truncated``, which
            are always there; ``()`` skips the copies, which otherwise cost about as much per step as
            the env itself at N = 1024 (callbacks that read ``infos[i]["regret"]`` name it here).
    """

    def __init__(self, env: VectorEnv, seed: int | None = None, keys: tuple[str, ...] | None = None,
                 info_keys: tuple[str, ...] | None = None):
        if not isinstance(env, VectorEnv):
            raise TypeError(f"env must be a gymnasium.vector.VectorEnv, got {type(env).__name__}")
        mode = env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"env autoreset_mode == {mode!r}, must be AutoresetMode.SAME_STEP")
        self.env = env
        space = env.single_observation_space
        if keys is not None:
            if not isinstance(space, spaces.Dict):
                raise ValueError(f"keys == {keys!r} needs a Dict observation space, got {type(space).__name__}")
            unknown = [k for k in keys if k not in space.spaces]
            if unknown or not keys:
                raise ValueError(f"keys == {keys!r}: unknown {unknown!r}; allowed: {list(space.spaces)}")
            space = spaces.Dict({k: space.spaces[k] for k in keys})
            keys = tuple(keys)
        self.keys = keys
        if info_keys is not None:
            if isinstance(info_keys, str) or not all(isinstance(k, str) for k in info_keys):
                raise TypeError(f"info_keys == {info_keys!r}, must be None or a sequence of info keys")
            info_keys = frozenset(info_keys)
        self.info_keys = info_keys
        super().__init__(env.num_envs, space, env.single_action_space)
        if seed is not None:
            self.seed(seed)
        self._actions: np.ndarray | None = None

    # ----------------------------------------------------------------- stepping
    def reset(self):
        seeds: int | list[int] | None = None
        if any(s is not None for s in self._seeds):
            seeds = [int(s) for s in self._seeds]
            if seeds == list(range(seeds[0], seeds[0] + self.num_envs)):
                seeds = seeds[0]  # SB3's seed(s) sets s + i: hand the env its base seed s
        options = self._options[0] or None
        obs, info = self.env.reset(seed=seeds, options=options)
        self.reset_infos = self._split(info, np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool))
        self._reset_seeds()
        self._reset_options()
        return select_keys(obs, self.keys)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape((self.num_envs,) + self.action_space.shape)  # (N,) or (N, d)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        self._actions = None
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        dones = terminated | truncated
        infos = self._split(info, terminated, truncated)
        if dones.any():
            final = info["final_obs"]
            if isinstance(final, dict):
                final = select_keys(final, self.keys)  # the rows of the keys the agent sees
                for i in np.flatnonzero(dones):
                    infos[i]["terminal_observation"] = _row(final, int(i))
            else:
                for i in np.flatnonzero(dones):
                    infos[i]["terminal_observation"] = select_keys(_row(final, int(i)), self.keys)
        return select_keys(obs, self.keys), np.asarray(reward, dtype=np.float32), dones, infos

    def _split(self, info: dict[str, Any], terminated: np.ndarray, truncated: np.ndarray) -> list[dict]:
        """The batched info dict as N per-env dicts (keys whose ``_key`` mask is False are left out).

        Built column by column (one C-level ``list(array)`` per key, then one ``zip`` per row): the
        values are the same NumPy scalars / row views as ``info[k][i]``, at a fraction of the cost of
        indexing every key in a Python loop (this runs on every step of every sub-env).
        """
        n = self.num_envs
        full, partial = [], []
        for k, v in info.items():
            if k in _SKIP or k.startswith("_") or not isinstance(v, np.ndarray) or v.shape[:1] != (n,):
                continue
            if self.info_keys is not None and k not in self.info_keys:
                continue
            mask = info.get(f"_{k}")
            (full if mask is None or np.all(mask) else partial).append((k, v, mask))
        timeout = (truncated & ~terminated).tolist()
        if full:
            keys = [k for k, _, _ in full] + ["TimeLimit.truncated"]
            columns = [list(v) for _, v, _ in full] + [timeout]
            infos = [dict(zip(keys, row)) for row in zip(*columns)]
        else:
            infos = [{"TimeLimit.truncated": t} for t in timeout]
        for k, v, mask in partial:
            for i in np.flatnonzero(mask):
                infos[i][k] = v[i]
        return infos

    def close(self) -> None:
        self.env.close()

    # ----------------------------------------------------------------- attribute access
    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        """The vector env's attribute, once per requested sub-env (sub-envs share one object)."""
        value = getattr(self.env, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._indices(indices)]
