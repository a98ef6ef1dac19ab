"""A vector-env wrapper that records what a run did: per-step totals and finished episodes.

It sits between a Gymnasium vector env and whoever steps it — a bandit loop or SB3's training
through :class:`agents.sb3_adapter.SB3VecEnv` — so training steps are recorded exactly like evaluation
steps and a learning curve counts every environment step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import VectorEnv, VectorWrapper


class EpisodeRecorder(VectorWrapper):
    """Records, per vector step, the summed reward and pseudo-regret, and every finished episode.

    Attributes (after a run, see :meth:`arrays`):
        steps: impressions so far (vector steps × num_envs).
        last_obs, last_info: what the latest ``reset`` or ``step`` returned (so a run can continue
            where SB3's training stopped).
    """

    def __init__(self, env: VectorEnv):
        super().__init__(env)
        self.steps = 0
        self._reward: list[float] = []
        self._regret: list[float] = []
        self._episodes: list[tuple[int, float, int]] = []  # (impressions at end, return, length)
        self._ret = np.zeros(self.num_envs)
        self._len = np.zeros(self.num_envs, dtype=np.int64)
        self.last_obs: Any = None
        self.last_info: dict[str, Any] = {}

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._ret[:] = 0.0
        self._len[:] = 0
        self.last_obs, self.last_info = obs, info
        return obs, info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        reward = np.asarray(reward, dtype=np.float64)
        self.steps += self.num_envs
        self._reward.append(float(reward.sum()))
        self._regret.append(float(np.sum(info.get("regret", 0.0))))
        self._ret += reward
        self._len += 1
        done = np.asarray(terminated) | np.asarray(truncated)
        for i in np.flatnonzero(done):
            self._episodes.append((self.steps, float(self._ret[i]), int(self._len[i])))
        self._ret[done] = 0.0
        self._len[done] = 0
        self.last_obs, self.last_info = obs, info
        return obs, reward, terminated, truncated, info

    def arrays(self) -> dict[str, np.ndarray]:
        """``reward`` and ``regret`` (T,) per vector step; ``episode_end``, ``episode_return``,
        ``episode_length`` (E,) per finished episode."""
        ep = np.array(self._episodes, dtype=np.float64).reshape(-1, 3)
        return {"reward": np.array(self._reward), "regret": np.array(self._regret),
                "episode_end": ep[:, 0], "episode_return": ep[:, 1], "episode_length": ep[:, 2]}
