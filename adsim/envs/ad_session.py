"""AdSession: show a sequence of creatives to one user during a browsing session."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from adsim.validation import check_seed
from adsim.envs.spaces import check_actions, observation_space, render_candidates, seed_single_env
from adsim.session import N_SESSION_SCALARS, SessionConfig, SessionCore, SessionOutcome, make_session_config


def _resolve_config(config: SessionConfig | None, preset: str, overrides: dict) -> SessionConfig:
    if config is None:
        return make_session_config(preset, **overrides)
    if not isinstance(config, SessionConfig):
        raise TypeError(f"config must be a SessionConfig or None, got {type(config).__name__}")
    return config.replace(**overrides) if overrides else config


def session_space(core: SessionCore) -> spaces.Dict:
    """CreativeSelection's Dict space plus the ``session`` Box (see the env docstring)."""
    base = observation_space(core)
    n_session = N_SESSION_SCALARS + 2 * core.config.n_candidates + core.n_attr_values
    return spaces.Dict({**base.spaces, "session": spaces.Box(0.0, 1.0, (n_session,), np.float32)})


class AdSessionEnv(gym.Env):
    """
    ## Description
    One user's browsing session on an e-commerce platform. At every impression the agent shows one
    of the K creatives of the session's campaign pool; the user clicks or not according to the same
    hidden response model as ``adsim/CreativeSelection-v0`` (``adsim.response``, calibrated β0),
    plus session dynamics (``adsim.session``): **fatigue** from repeated creatives and repeated
    visual attributes, **interest drift** (a click moves the user's interests towards what was
    clicked) and **leaving**: after an unclicked impression the user leaves with a probability that
    grows with annoyance (the fatigue penalty of what was just shown). Long-term value therefore differs
    from the myopic choice: always showing the currently best creative tires the user and ends the
    session early.

    ## Action Space
    ``Discrete(K)``: the index of the pool creative to show. Out-of-range or non-integer actions raise.

    ## Observation Space
    A ``Dict`` (SB3: ``MultiInputPolicy``, which one-hot encodes ``candidates``):

    | key | shape | min | max | content |
    |-----|-------|-----|-----|---------|
    | user | (user_dim,) | 0 | 1 | observed user features (as CreativeSelection) |
    | context | (22,) | 0 | 1 | session context (hour, weekend, location, weather, device) and this impression's ad slot |
    | campaign | (17,) | 0 | 1 | goal, product category, price tier (one-hots), discount |
    | candidates | (K·9,) | 0 | nvec−1 | the K pool creatives' id vectors (``adsim.creative``) |
    | ctr_estimate | (K,) | 0 | 1 | the platform's running CTR estimate per creative (shared by all sessions) |
    | session | (3 + 2K + 26,) | 0 | 1 | impressions shown / H, clicks / H, impressions since the last click / H, one-hot of the last creative shown (K), decayed exposure of each creative (K) and of each of the 26 attribute values, each divided by its supremum 1 / (1 − decay) |

    ## Rewards
    1 for a click, 0 otherwise. The session return is the number of clicks in the session.

    ## Starting State
    ``reset(seed=s)`` gives the env the session stream of seed ``s`` and forgets the CTR estimate.
    Each session draws a user, a real-time context and (unless ``campaign`` is fixed) a campaign
    from that stream; exposure memory, annoyance and counters start at zero.

    ## Episode End
    ``terminated``: the user left. ``truncated``: ``horizon`` impressions were shown. ``reset()``
    without a seed starts the next session of the same stream (the CTR estimate persists).

    ## Info (ground truth, for evaluation only)
    ``click_probs`` (K,): true click probabilities of the candidates at the *returned* impression
    (fatigue included); ``expected_reward`` (K,): the same (reward is the click);
    ``optimal_action``: the **myopic** optimum, argmax of ``click_probs``. It is a reference, not the
    optimal policy: it ignores that a click-maximising choice now can tire the user and make them
    leave, so a policy that plans over the session can beat it. ``regret``: myopic pseudo-regret
    ``max_k p_k − p_action`` of the action just taken (0 at reset); ``clicked``; ``leave_prob``:
    the probability with which the user would leave after that impression if not clicked.

    ## Arguments
    | argument | default | meaning |
    |----------|---------|---------|
    | config | None | a ``SessionConfig``; default ``make_session_config(preset)`` |
    | preset | "default" | ``default``, ``fatigue``, ``myopic``, ``tiny`` (``adsim.session.SESSION_PRESETS``) |
    | **overrides | | any ``SessionConfig`` or ``WorldConfig`` field, e.g. ``horizon=30``, ``fatigue_creative=2.0`` |

    ## Vectorized environment
    ``gymnasium.make_vec("adsim/AdSession-v0", num_envs=N, vectorization_mode="vector_entry_point")``
    returns :class:`AdSessionVectorEnv`: one NumPy computation per impression for all N sessions,
    same-step autoreset per sub-env. ``reset(seed=s)`` gives sub-env i the i-th child stream of
    ``SeedSequence(s)`` (sub-env 0 is a single env reset with ``s``; different seeds never share a
    stream); with ``reset(seed=[s_0, …])`` sub-env i sees the same users, contexts, ad slots, click
    and leave uniforms as a single env reset with ``s_i``, whatever the actions. The CTR estimate is
    shared across sub-envs.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, config: SessionConfig | None = None, preset: str = "default",
                 render_mode: str | None = None, **overrides: Any):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode == {render_mode!r}, must be None or one of {self.metadata['render_modes']}")
        self.config = _resolve_config(config, preset, overrides)
        self.render_mode = render_mode
        self.core = SessionCore(self.config, 1)
        self.action_space = spaces.Discrete(self.config.n_candidates)
        self.observation_space = session_space(self.core)
        self._done = True

    def _obs(self) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.core.observation().items()}

    def _info(self, out: SessionOutcome | None = None) -> dict[str, Any]:
        p = self.core.click_probs[0]
        info: dict[str, Any] = {"click_probs": p, "expected_reward": p.copy(),
                                "optimal_action": int(np.argmax(p)),
                                "regret": 0.0 if out is None else float(out.regret[0])}
        if out is not None:
            info["clicked"] = bool(out.clicked[0])
            info["leave_prob"] = float(out.leave_prob[0])
        return info

    def step(self, action):
        a = check_actions(action, self.config.n_candidates, None)
        if self.core.keys is None or self._done:
            raise RuntimeError("the session is over (or never started): call reset() before step()")
        out = self.core.step(a)
        self.core.serve()
        terminated, truncated = bool(out.terminated[0]), bool(out.truncated[0])
        self._done = terminated or truncated
        return self._obs(), float(out.reward[0]), terminated, truncated, self._info(out)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        seed = None if seed is None else check_seed(seed, many=False, seed_sequence=False)
        super().reset(seed=seed)
        seed_single_env(self, self.core, seed)
        self.core.reset_all()
        self._done = False
        return self._obs(), self._info()

    def render(self):
        if self.render_mode != "ansi":
            return None
        c = self.core
        header = f"t={int(c.t[0])} clicks={int(c.clicks[0])} campaign={int(c.campaign[0])} user={int(c.user[0])}"
        return render_candidates(self.config.language, header, c.pools[c.campaign[0]], c.click_probs[0],
                                 "fatigue", c.penalty[0])


class AdSessionVectorEnv(VectorEnv):
    """Native batched AdSession: N sessions stepped by one NumPy computation.

    See :class:`AdSessionEnv` for spaces and semantics. Autoreset is same-step and per sub-env:
    where a session ended (``terminated | truncated``) the returned observation is the next
    session's first impression, ``info["final_obs"]`` is a batched dict holding the last
    observation in those rows (rows where ``info["_final_obs"]`` is False hold the returned
    observation) and ``info["final_info"]`` the outcome part of the step's info (``regret``,
    ``clicked``, ``leave_prob``, ``reward_expected``; the click probabilities of a finished
    session's would-be next impression are not computed). ``info`` holds
    batched arrays: ``click_probs`` and ``expected_reward`` (N, K) of the returned impressions,
    ``optimal_action`` (myopic), ``regret``, ``clicked``, ``leave_prob`` and ``reward_expected`` (N,).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, config: SessionConfig | None = None, preset: str = "default",
                 render_mode: str | None = None, **overrides: Any):
        if render_mode is not None:
            raise ValueError(f"render_mode == {render_mode!r}; the vector env does not render")
        self.config = _resolve_config(config, preset, overrides)
        self.core = SessionCore(self.config, num_envs)
        self.num_envs = self.core.num_envs
        self.render_mode = None
        self.single_action_space = spaces.Discrete(self.config.n_candidates)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = session_space(self.core)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

    def _info(self, out: SessionOutcome | None = None) -> dict[str, Any]:
        p = self.core.click_probs
        info: dict[str, Any] = {"click_probs": p, "expected_reward": p.copy(), "optimal_action": np.argmax(p, axis=1)}
        if out is None:
            info["regret"] = np.zeros(self.num_envs)
        else:
            info.update(regret=out.regret, clicked=out.clicked, leave_prob=out.leave_prob,
                        reward_expected=out.expected_reward)
        return info

    def step(self, actions):
        a = check_actions(actions, self.config.n_candidates, self.num_envs)
        if self.core.keys is None:
            raise RuntimeError("call reset() before step()")
        core = self.core
        out = core.step(a)
        done = out.terminated | out.truncated
        ended = np.flatnonzero(done)
        final = None
        if ended.size:
            final = core.final_observation(ended)
            core.start_sessions(ended)
        core.serve()
        obs, info = core.observation(), self._info(out)
        if final is not None:  # rows that did not end hold the returned observation
            final_obs = {k: v.copy() for k, v in obs.items()}
            for k, v in final.items():
                final_obs[k][ended] = v
            final_info = {k: info[k] for k in ("regret", "clicked", "leave_prob", "reward_expected")}
            info.update(final_obs=final_obs, final_info=final_info, _final_obs=done, _final_info=done)
        return obs, out.reward, out.terminated, out.truncated, info

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        """Sub-env i gets the i-th child stream of ``SeedSequence(seed)`` (or the stream of ``seed[i]``
        for a list); ``None`` continues the streams."""
        seed = None if seed is None else check_seed(seed, seed_sequence=False)
        super().reset(seed=int(seed[0]) if isinstance(seed, (list, tuple, np.ndarray)) else seed)
        if seed is None and self.core.keys is not None:
            self.core.reset_all()
            return self.core.observation(), self._info()
        if seed is None:
            seed = int(self.np_random.integers(0, 2**63 - self.num_envs))
        self.core.seed(seed)
        self.core.reset_all()
        return self.core.observation(), self._info()
