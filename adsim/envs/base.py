"""The generic batched environment: one vector env and its single-env view for every core.

An environment of adsim is a *core* — N request slots stepped by NumPy — plus its spaces. Every
core (``adsim.selection.SelectionCore``, ``adsim.session.SessionCore``, a stacked
``adsim.stacking.StackedCore`` of any, ``adsim.slate.SlateCore``, ``adsim.auction_core.AuctionCore``) offers the same
small interface, and the two classes here turn it into Gymnasium envs:

* ``num_envs``, ``config`` (with ``n_candidates``), ``keys`` (None until seeded);
* ``seed(seed)``: an int gives slot i the i-th child stream of ``SeedSequence(seed)``, a list of N
  ints gives slot i the single-env stream of ``seed[i]`` (a stacked core also takes one per group);
* ``restart(rows)``: begin the next episode of those slots; ``serve()``: make every slot's current
  request current (true click probabilities, request, CTR estimate);
* ``step(actions) -> outcome`` with ``reward``, ``terminated`` and ``truncated`` (N,) among its fields;
* ``observation()``, ``info(outcome=None)`` (batched dicts), ``final(rows, outcome)`` (the
  observation of the ended rows and the final info), ``render(row)`` (ANSI text);
* optionally its own action space: ``action_space`` (one sub-env's space) and
  ``check_actions(actions, num_envs)`` (validated actions with leading axis N; ``num_envs`` None for
  the single env's one action). A core without them has ``Discrete(K)`` actions checked by
  :func:`adsim.envs.spaces.check_actions` (CreativeSelection, AdSession); the slate core declares
  ``Slate(K, L)``, the auction core ``Dict(creative=Discrete(K), bid=Box(0, max_bid))`` (its checked
  actions are a structured (N,) array, which stacked cores split like any array).

:class:`BatchedVectorEnv` does reset, step, same-step autoreset per sub-env, action checks and
seeding; :class:`SingleEnvView` is the batch of one as a ``gym.Env``. Both treat seeds alike in
every environment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from adsim.envs.spaces import check_actions
from adsim.validation import check_seed


def core_actions(core) -> tuple[spaces.Space, Callable]:
    """A core's single action space and action check (see the module docstring): its own, or
    ``Discrete(K)`` and :func:`adsim.envs.spaces.check_actions`."""
    space = getattr(core, "action_space", None)
    if space is None:
        K = core.config.n_candidates
        return spaces.Discrete(K), lambda actions, num_envs: check_actions(actions, K, num_envs)
    return space, core.check_actions


def resolve_config(config, config_type: type, make, preset: str, overrides: dict):
    """The env config: ``make(preset, **overrides)``, or ``config`` with ``overrides`` applied."""
    if config is None:
        return make(preset, **overrides)
    if not isinstance(config, config_type):
        article = "an" if config_type.__name__[0] in "AEIOU" else "a"
        raise TypeError(f"config must be {article} {config_type.__name__} or None, got {type(config).__name__}")
    return config.replace(**overrides) if overrides else config


class SingleEnvView(gym.Env):
    """One sub-env of a core of one slot as a ``gym.Env``: the single env is the batch of one.

    ``reset(seed=s)`` seeds the slot's stream with ``s`` (the stream sub-env 0 of a vector env reset
    with ``s`` gets) and forgets the CTR estimate; ``reset()`` continues the stream with its next
    episode (an unseeded first reset draws a seed from Gymnasium's ``np_random``).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def _init_view(self, core, observation_space: spaces.Dict, render_mode: str | None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode == {render_mode!r}, must be None or one of {self.metadata['render_modes']}")
        self.core, self.render_mode = core, render_mode
        self.config = core.config
        self.n_candidates = core.config.n_candidates
        self.action_space, self._check_actions = core_actions(core)
        self._discrete = isinstance(self.action_space, spaces.Discrete)
        self.observation_space = observation_space
        self._rows = np.arange(1)
        self._done = True

    def _obs(self) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.core.observation().items()}

    def _info(self, outcome=None) -> dict[str, Any]:
        return {k: v[0] if v.ndim > 1 else v.item() for k, v in self.core.info(outcome).items()}

    def step(self, action):
        if self._discrete and type(action) is int and 0 <= action < self.n_candidates:  # the common case, cheaply
            a = np.array([action], dtype=np.int64)
        else:
            a = self._check_actions(action, None)
        if self._done:
            raise RuntimeError("the episode is over (terminated or truncated) or never started: call reset() before step()")
        core = self.core
        out = core.step(a)
        core.serve()
        terminated, truncated = bool(out.terminated[0]), bool(out.truncated[0])
        self._done = terminated or truncated
        return self._obs(), float(out.reward[0]), terminated, truncated, self._info(out)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        seed = None if seed is None else check_seed(seed, many=False, seed_sequence=False)
        super().reset(seed=seed)
        core = self.core
        if seed is not None or core.keys is None:
            if seed is None:  # unseeded first reset: a fresh stream from Gymnasium's seeding
                seed = int(self.np_random.integers(0, 2**63 - 1))
            core.seed(seed)
        core.restart(self._rows)
        core.serve()
        self._done = False
        return self._obs(), self._info()

    def render(self):
        """``ansi``: the current request as text; ``rgb_array``: that text drawn as an (H, W, 3)
        uint8 image (for video wrappers and for SB3's ``make_vec_env``, which asks for it)."""
        if self.render_mode == "ansi":
            return self.core.render(0)
        if self.render_mode == "rgb_array":
            return text_image(self.core.render(0))
        return None


def text_image(text: str, dpi: int = 72) -> np.ndarray:
    """(H, W, 3) uint8: ``text`` in a monospace font on white (matplotlib's Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lines = text.splitlines() or [""]
    width, height = 0.1 + 0.09 * max(len(line) for line in lines), 0.2 + 0.17 * len(lines)
    fig = Figure(figsize=(width, height), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    fig.text(0.02, 0.98, "\n".join(lines), family="monospace", fontsize=10, va="top", ha="left")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class BatchedVectorEnv(VectorEnv):
    """A native Gymnasium vector env over a core of N slots (see the module docstring).

    Autoreset is same-step and per sub-env: where an episode ended (``terminated | truncated``) the
    returned observation is the next episode's first one, ``info["final_obs"]`` is a batched dict
    holding the last observation in those rows (other rows hold the returned observation) and
    ``info["final_info"]`` the final info; ``info["_final_obs"]`` / ``info["_final_info"]`` mark the rows.
    ``reset(seed=s)``: an int gives sub-env i the i-th child stream of ``SeedSequence(s)`` (sub-env 0
    is the single env reset with ``s``; different seeds never share a stream); a list gives sub-env i
    the single-env stream of ``s[i]``; ``None`` continues the streams.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def _init_vector(self, core, single_observation_space: spaces.Dict, render_mode: str | None) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode == {render_mode!r}; the vector env does not render")
        self.core, self.render_mode = core, None
        self.config, self.num_envs = core.config, core.num_envs
        self.n_candidates = core.config.n_candidates
        self.single_action_space, self._check_actions = core_actions(core)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = single_observation_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self._all = np.arange(self.num_envs)

    def step(self, actions):
        a = self._check_actions(actions, self.num_envs)
        core = self.core
        if core.keys is None:
            raise RuntimeError("call reset() before step()")
        out = core.step(a)
        done = out.terminated | out.truncated
        final = None
        if done.any():
            ended = np.flatnonzero(done)
            final = core.final(ended, out)
            core.restart(ended)
        core.serve()
        obs, info = core.observation(), core.info(out)
        if final is not None:
            final_obs, final_info = final
            if ended.size < self.num_envs:  # rows that did not end hold the returned observation
                rows_obs = final_obs
                final_obs = {k: v.copy() for k, v in obs.items()}
                for k, v in rows_obs.items():
                    final_obs[k][ended] = v
            info.update(final_obs=final_obs, final_info=final_info, _final_obs=done, _final_info=done)
        return obs, out.reward, out.terminated, out.truncated, info

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        seed = None if seed is None else check_seed(seed, seed_sequence=False)
        super().reset(seed=seed if seed is None or isinstance(seed, (int, np.integer)) else None)
        core = self.core
        if seed is not None or core.keys is None:
            if seed is None:
                seed = int(self.np_random.integers(0, 2**63 - self.num_envs))
            core.seed(seed)
        core.restart(self._all)
        core.serve()
        return core.observation(), core.info()


__all__ = ["BatchedVectorEnv", "SingleEnvView", "core_actions", "resolve_config"]
