"""AdSession: show a sequence of creatives to one user during a browsing session."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from adsim.envs.base import BatchedVectorEnv, SingleEnvView, resolve_config
from adsim.envs.spaces import observation_space
from adsim.session import N_SESSION_SCALARS, SessionConfig, SessionCore, make_session_config
from adsim.stacking import StackedCore, check_world_seeds


def session_space(world, config: SessionConfig) -> spaces.Dict:
    """CreativeSelection's Dict space plus the ``session`` Box (see the env docstring)."""
    base = observation_space(world, config.n_candidates)
    n_session = N_SESSION_SCALARS + 2 * config.n_candidates + world.lexicon.n_attr_values
    return spaces.Dict({**base.spaces, "session": spaces.Box(0.0, 1.0, (n_session,), np.float32)})


class AdSessionEnv(SingleEnvView):
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

    ## Stacked scenarios
    ``make_vec(..., num_envs=G·B, world_seeds=[w_0, …, w_{G-1}])`` puts G independent scenarios side
    by side, exactly as for CreativeSelection (``adsim.stacking.StackedCore``): sub-envs
    ``[g·B, (g+1)·B)`` live in the world of seed ``w_g`` with its own pools, β0 and CTR estimate;
    ``reset(seed=[s_0, …, s_{G-1}])`` makes group g, bit for bit, an unstacked vector env of B
    sub-envs with world seed ``w_g`` reset with ``s_g``.

    ## Version History
    * v0: initial version.
    """

    def __init__(self, config: SessionConfig | None = None, preset: str = "default",
                 render_mode: str | None = None, **overrides: Any):
        config = resolve_config(config, SessionConfig, make_session_config, preset, overrides)
        core = SessionCore(config, 1)
        self._init_view(core, session_space(core.world, config), render_mode)


class AdSessionVectorEnv(BatchedVectorEnv):
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

    def __init__(self, num_envs: int = 1, config: SessionConfig | None = None, preset: str = "default",
                 render_mode: str | None = None, world_seeds=None, **overrides: Any):
        config = resolve_config(config, SessionConfig, make_session_config, preset, overrides)
        if world_seeds is None:
            core = SessionCore(config, num_envs)
            world = core.world
        else:
            seeds = check_world_seeds(world_seeds, num_envs)
            B = num_envs // len(seeds)
            core = StackedCore(config, [SessionCore(config.replace(seed=s), B) for s in seeds])
            world = core.worlds[0]  # spaces only: every stacked world has the same shapes
        self._init_vector(core, session_space(world, config), render_mode)
