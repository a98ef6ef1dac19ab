"""CreativeSelection: choose which of K candidate creatives to show to each arriving user."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from adsim.config import EnvConfig, make_config
from adsim.core import OBS_KEYS, SelectionCore, StackedSelectionCore, check_world_seeds
from adsim.envs.spaces import (
    check_actions,
    observation_space,
    render_candidates,
    seed_single_env,
)


def _resolve_config(config: EnvConfig | None, preset: str, overrides: dict) -> EnvConfig:
    if config is None:
        return make_config(preset, **overrides)
    if not isinstance(config, EnvConfig):
        raise TypeError(f"config must be an EnvConfig or None, got {type(config).__name__}")
    return config.replace(**overrides) if overrides else config


def _resolve_estimator(config: EnvConfig, estimator, ctr_model):
    """The CTR estimator of an env: ``estimator``, a saved model at ``ctr_model``, or None (running CTR)."""
    if estimator is not None and ctr_model is not None:
        raise ValueError("pass either estimator= or ctr_model=, not both")
    if ctr_model is not None:
        from adsim.ctr.learned import LearnedCTR  # imports torch: only when asked for

        estimator = LearnedCTR.from_arg(config, ctr_model)
    if estimator is None:
        return None
    missing = [m for m in ("reset", "estimate", "observe") if not callable(getattr(estimator, m, None))]
    if missing:
        raise TypeError(f"estimator {type(estimator).__name__} lacks {missing} of adsim.estimate.CTREstimator")
    if callable(getattr(estimator, "check_config", None)):
        estimator.check_config(config)
    return estimator


def _stacked_estimators(config: EnvConfig, seeds: tuple[int, ...], estimator, ctr_model) -> list | None:
    """One CTR estimator per stacked world (``estimator``: a sequence of them), or None (running CTRs)."""
    if estimator is None and ctr_model is None:
        return None
    if estimator is not None and (isinstance(estimator, (str, bytes)) or not hasattr(estimator, "__len__")):
        raise TypeError("with world_seeds, estimator= must be a sequence of CTR estimators, one per world")
    given = [None] * len(seeds) if estimator is None else list(estimator)
    if len(given) != len(seeds):
        raise ValueError(f"got {len(given)} estimators for {len(seeds)} world_seeds; pass one per world")
    if estimator is not None and any(e is None for e in given):
        raise TypeError("estimator= holds None; pass a CTR estimator for every world (or estimator=None)")
    return [_resolve_estimator(config.replace(seed=s), e, ctr_model) for s, e in zip(seeds, given)]


class CreativeSelectionEnv(gym.Env):
    """
    ## Description
    A stream of ad requests on an e-commerce platform. Each step one user arrives in a real-time
    context for a campaign (ad item + ad goal); K candidate creatives are proposed and the agent
    shows one of them. The user clicks (and may convert) according to a hidden response model over
    latent interests (see ``adsim.response``). In ``"pool"`` mode the K creatives of a campaign
    persist across steps, so they are arms; in ``"personalized"`` mode K fresh creatives are built
    for every request from the user's observed profile.

    ## Action Space
    ``Discrete(K)``: the index of the candidate to show. Out-of-range or non-integer actions raise.

    ## Observation Space
    A ``Dict`` describing the *current* request (everything observable, never the hidden appeal):

    | key | shape | min | max | content |
    |-----|-------|-----|-----|---------|
    | user | (user_dim,) | 0 | 1 | demographics one-hot (age band, gender, occupation, city tier), interest-tag weights, category shares of the behaviour history, activity, purchase rate, mean price tier bought |
    | context | (22,) | 0 | 1 | hour (sin, cos, bucket one-hot), weekend, location type, weather, device, ad slot (one-hots) |
    | campaign | (17,) | 0 | 1 | goal, product category, price tier (one-hots), discount |
    | candidates | (K·9,) | 0 | nvec−1 | K creatives' id vectors ``[4 phrase slots, template, color, image style, CTA, unparsed tokens]`` (``adsim.creative``) |
    | ctr_estimate | (K,) | 0 | 1 | the platform's CTR estimate per candidate (``adsim.estimate``) |

    ## Rewards
    ``reward="click"`` (default): 1 for a click; ``"conversion"``: 1 for a purchase after the
    click; ``"revenue"``: price × (1 − discount) for a purchase.

    ## Starting State
    ``reset(seed=s)`` gives the env the request stream of seed ``s`` and forgets the CTR estimate;
    each episode draws its campaign (unless ``campaign`` is fixed) from that stream. The hidden
    world comes from ``WorldConfig.seed`` and never changes within an env.

    ## Episode End
    No termination; truncation after ``horizon`` impressions. ``reset()`` without a seed starts the
    next episode of the same stream (the CTR estimate persists).

    ## Info (ground truth, for evaluation only)
    ``click_probs`` (K,): true click probabilities of the candidates in the *returned* observation;
    ``expected_reward`` (K,) likewise in reward units; ``optimal_action``: argmax of it (so an oracle
    can act); ``regret``: pseudo-regret of the action just taken (expected-reward units, 0 at
    reset); ``clicked`` / ``converted``: the outcome of that action.

    ## Arguments
    | argument | default | meaning |
    |----------|---------|---------|
    | config | None | an ``EnvConfig``; default ``make_config(preset)`` |
    | preset | "default" | ``default``, ``easy``, ``hard``, ``personalized``, ``drifting`` |
    | estimator | None | a ``CTREstimator`` for ``ctr_estimate`` (default: ``adsim.estimate.RunningCTR``) |
    | ctr_model | None | a saved CTR model's path, or ``"deepfm:50000"`` (train at set-up), served as ``adsim.ctr.LearnedCTR`` |
    | **overrides | | any ``EnvConfig`` or ``WorldConfig`` field, e.g. ``mode="personalized"``, ``n_candidates=8`` |

    ## Vectorized environment
    ``gymnasium.make_vec("adsim/CreativeSelection-v0", num_envs=N, vectorization_mode="vector_entry_point")``
    returns :class:`CreativeSelectionVectorEnv`: one NumPy computation per step for all N slots,
    same-step autoreset. ``reset(seed=s)`` gives sub-env i the i-th child stream of
    ``SeedSequence(s)`` (sub-env 0 sees exactly what a single env reset with ``s`` sees; different
    seeds never share streams); ``reset(seed=[s_0, …, s_{N-1}])`` makes sub-env i see exactly what
    a single env reset with ``s_i`` sees. The CTR estimate is shared across slots (one platform
    model).

    ## Stacked scenarios
    ``make_vec(..., num_envs=G·B, world_seeds=[w_0, …, w_{G-1}])`` puts G independent scenarios
    side by side (``adsim.core.StackedSelectionCore``): sub-envs ``[g·B, (g+1)·B)`` live in the
    world of seed ``w_g`` with its own creative pools, β0 and CTR estimate (a ``ctr_model`` is
    trained or loaded once per world). ``reset(seed=[s_0, …, s_{G-1}])`` seeds group g's request
    streams with ``s_g``; group g then sees exactly, bit for bit, what an unstacked vector env of B
    sub-envs with world seed ``w_g`` reset with ``s_g`` sees. This is how the benchmark runner runs
    many scenario seeds in one loop.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, config: EnvConfig | None = None, preset: str = "default", render_mode: str | None = None,
                 estimator=None, ctr_model: str | None = None, **overrides: Any):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode == {render_mode!r}, must be None or one of {self.metadata['render_modes']}")
        self.config = _resolve_config(config, preset, overrides)
        self.render_mode = render_mode
        self.core = SelectionCore(self.config, 1, estimator=_resolve_estimator(self.config, estimator, ctr_model))
        self.action_space = spaces.Discrete(self.config.n_candidates)
        self.observation_space = observation_space(self.core)
        self._last = None

    def _obs(self) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.core.observation().items()}

    def _info(self, outcome=None) -> dict[str, Any]:
        c = self.core
        info = {
            "click_probs": c.click_probs[0],
            "expected_reward": c.expected[0],
            "optimal_action": int(np.argmax(c.expected[0])),
            "regret": 0.0 if outcome is None else float(outcome.regret[0]),
        }
        if outcome is not None:
            info["clicked"] = bool(outcome.clicked[0])
            info["converted"] = bool(outcome.converted[0])
        return info

    def step(self, action):
        a = check_actions(action, self.config.n_candidates, None)
        if getattr(self.core, "keys", None) is None:
            raise RuntimeError("call reset() before step()")
        out = self.core.step(a)
        self._last = (a[0], out)
        return self._obs(), float(out.reward[0]), False, self.core.truncated, self._info(out)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        seed_single_env(self, self.core, seed)
        self.core.start_episode()
        self._last = None
        return self._obs(), self._info()

    def render(self):
        if self.render_mode != "ansi":
            return None
        c = self.core
        return render_candidates(self.config.language, f"t={c.t} campaign={int(c.campaign[0])} user={int(c.user[0])}",
                                 c.candidates[0], c.click_probs[0], "est", c.ctr_estimate[0])


class CreativeSelectionVectorEnv(VectorEnv):
    """Native batched CreativeSelection: N request slots stepped by one NumPy computation.

    See :class:`CreativeSelectionEnv` for spaces and semantics. Autoreset is same-step: when the
    horizon is reached, the returned observation is the next episode's first request and
    ``info["final_obs"]`` / ``info["final_info"]`` hold the last ones. ``info`` holds batched
    arrays: ``click_probs`` and ``expected_reward`` (N, K), ``optimal_action``, ``regret``,
    ``clicked``, ``converted`` and ``reward_expected`` (N,).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, config: EnvConfig | None = None, preset: str = "default",
                 render_mode: str | None = None, estimator=None, ctr_model: str | None = None,
                 world_seeds=None, **overrides: Any):
        if render_mode is not None:
            raise ValueError(f"render_mode == {render_mode!r}; the vector env does not render")
        config = _resolve_config(config, preset, overrides)
        if world_seeds is None:
            self.core = SelectionCore(config, num_envs, estimator=_resolve_estimator(config, estimator, ctr_model))
        else:
            seeds = check_world_seeds(world_seeds, num_envs)
            estimators = _stacked_estimators(config, seeds, estimator, ctr_model)
            self.core = StackedSelectionCore(config, num_envs, seeds, estimators=estimators)
        self.config = self.core.config
        self.num_envs = self.core.num_envs
        self.render_mode = None
        self.single_action_space = spaces.Discrete(self.config.n_candidates)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = observation_space(self.core)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

    def _info(self, outcome=None) -> dict[str, Any]:
        c = self.core
        info = {"click_probs": c.click_probs, "expected_reward": c.expected,
                "optimal_action": np.argmax(c.expected, axis=1)}
        if outcome is not None:
            info.update(regret=outcome.regret, clicked=outcome.clicked, converted=outcome.converted,
                        reward_expected=outcome.expected_reward)
        else:
            info["regret"] = np.zeros(self.num_envs)
        return info

    def step(self, actions):
        a = check_actions(actions, self.config.n_candidates, self.num_envs)
        if self.core.keys is None:
            raise RuntimeError("call reset() before step()")
        out = self.core.step(a)
        truncated = np.full(self.num_envs, self.core.truncated)
        terminated = np.zeros(self.num_envs, dtype=bool)
        info = self._info(out)
        if self.core.truncated:
            final_obs, final_info = self.core.observation(), info
            self.core.start_episode()
            info = self._info(out)
            info["final_obs"] = final_obs
            info["final_info"] = final_info
            info["_final_obs"] = truncated
            info["_final_info"] = truncated
        return self.core.observation(), out.reward, terminated, truncated, info

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed if seed is None or isinstance(seed, (int, np.integer)) else None)
        if seed is None and self.core.keys is not None:
            self.core.start_episode()
            return self.core.observation(), self._info()
        if seed is None:
            seed = int(self.np_random.integers(0, 2**63 - self.num_envs))
        self.core.seed(seed)
        self.core.start_episode()
        return self.core.observation(), self._info()


OBS_KEYS = OBS_KEYS
