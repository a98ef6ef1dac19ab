"""SlateSelection: fill a page of L ad positions with an ordered slate of distinct candidates."""

from __future__ import annotations

from typing import Any

from adsim.click_models import ClickModel
from adsim.config import EnvConfig, make_config
from adsim.envs.base import BatchedVectorEnv, SingleEnvView, resolve_config
from adsim.envs.creative_selection import _resolve_estimator, vector_core
from adsim.envs.spaces import slate_observation_space
from adsim.slate import SlateCore, check_slate_config


class SlateSelectionEnv(SingleEnvView):
    """
    ## Description
    A stream of ad requests whose page holds L ad positions (``slate_size``). Each step one user
    arrives in a real-time context for a campaign; K candidate creatives are proposed (a persistent
    pool or fresh personalised ones, as in ``adsim/CreativeSelection-v0``) and the agent fills the
    page with an ordered slate of L distinct candidates. Clicks follow a click model over positions
    (``click_model``: position-based ``"pbm"``, ``"cascade"`` or dependent-click ``"dcm"``, see
    ``adsim.click_models``) on each candidate's *attraction*: its true click probability without the
    ad slot's factor, ``σ(logit + β0)`` of the hidden response model (``adsim.response``), with
    CreativeSelection's β0. The core is CreativeSelection's (``adsim.slate.SlateCore``).

    ## Action Space
    ``Slate(K, L)`` (``adsim.envs.spaces``), a ``MultiDiscrete([K] * L)``: entry l is the candidate
    shown at position l (0 = top). A candidate shown twice, an entry outside [0, K) or a non-integer
    raises (``ValueError`` / ``TypeError`` naming the value). ``sample()`` draws a random valid slate.

    ## Observation Space
    CreativeSelection's ``Dict`` plus ``page``:

    | key | shape | min | max | content |
    |-----|-------|-----|-----|---------|
    | user | (user_dim,) | 0 | 1 | observed user features (as CreativeSelection) |
    | context | (22,) | 0 | 1 | hour, weekend, location, weather, device one-hots; the ad-slot one-hot marks slot 0 (the page's top) |
    | campaign | (17,) | 0 | 1 | goal, product category, price tier (one-hots), discount |
    | candidates | (K·9,) | 0 | nvec−1 | the K candidates' id vectors (``adsim.creative``) |
    | ctr_estimate | (K,) | 0 | 1 | the platform's running CTR per candidate over every position it was shown at |
    | page | (L·3,) | 0 | 1 | each position's ad-slot one-hot (positions below the third are slot 2) |

    ## Rewards
    The number of clicks on the page (at most 1 under ``"cascade"``).

    ## Starting State
    As CreativeSelection: ``reset(seed=s)`` gives the env the request stream of seed ``s`` (users,
    contexts, campaigns, candidates and every position's click uniforms) and forgets the CTR
    estimate; the hidden world comes from ``WorldConfig.seed``.

    ## Episode End
    No termination; truncation after ``horizon`` pages.

    ## Info (ground truth, for evaluation only)
    ``attraction`` (K,): every candidate's attraction in the *returned* request; ``click_probs``
    (K, L): the probability that candidate k is clicked at position l when no position above was
    clicked (PBM ``e_l · a_k``; cascade and DCM ``a_k``); ``oracle_slate`` (L,): the slate of most
    expected clicks (exact, ``adsim.click_models``); ``oracle_reward``: its expected clicks.
    After a step, of the slate just shown: ``regret`` (``oracle_reward`` of its request − its
    expected clicks; 0 at reset), ``reward_expected`` (its expected clicks), ``slate_click_probs``
    (L,) (its probability of a click at each position), ``clicks`` (L,) bool and ``clicked`` (any click).

    ## Arguments
    | argument | default | meaning |
    |----------|---------|---------|
    | config | None | an ``EnvConfig``; default ``make_config(preset)`` |
    | preset | "default" | any of ``adsim.config.PRESETS``, e.g. ``slate`` (K = 20, L = 3) |
    | estimator, ctr_model | None | the CTR estimate, as for CreativeSelection |
    | **overrides | | any ``EnvConfig`` / ``WorldConfig`` field: ``slate_size`` (L, 1–10, ≤ K), ``click_model``, ``examination`` (PBM, L values), ``continuation`` (DCM λ, L values, non-increasing), ``mode``, ``n_candidates`` … |

    The PBM's examination defaults to the world's ``slot_factors`` for positions 0–2, continued
    geometrically below (``EnvConfig.slate_examination``); the DCM's continuation to the ratios of
    that examination, made non-increasing (``EnvConfig.slate_continuation``).

    The env's ``click_model`` (``adsim.click_models.ClickModel``) scores any slates offline: the
    expected clicks of slates ``s`` (…, L) of the returned requests are
    ``env.click_model.expected_clicks(np.take_along_axis(info["attraction"], s, axis=-1))``.

    ## Vectorized environment
    ``gymnasium.make_vec("adsim/SlateSelection-v0", num_envs=N, vectorization_mode="vector_entry_point")``
    returns :class:`SlateSelectionVectorEnv` (actions (N, L), ``adsim.envs.spaces.SlateBatch``), with
    CreativeSelection's seeding: ``reset(seed=s)`` gives sub-env i the i-th child stream of
    ``SeedSequence(s)`` (sub-env 0 is the single env reset with ``s``); a list gives sub-env i the
    single-env stream of ``s[i]``. Same-step autoreset at the horizon.

    ## Stacked scenarios
    ``make_vec(..., num_envs=G·B, world_seeds=[w_0, …])``: group g is, bit for bit, the unstacked
    vector env of B sub-envs on world seed ``w_g`` (``adsim.stacking.StackedCore``).

    ## Version History
    * v0: initial version.
    """

    def __init__(self, config: EnvConfig | None = None, preset: str = "default", render_mode: str | None = None,
                 estimator=None, ctr_model: str | None = None, **overrides: Any):
        config = resolve_config(config, EnvConfig, make_config, preset, overrides)
        check_slate_config(config)
        core = SlateCore(config, 1, estimator=_resolve_estimator(config, estimator, ctr_model))
        self.click_model = core.click_model
        self._init_view(core, slate_observation_space(core.world, config.n_candidates, config.slate_size), render_mode)


class SlateSelectionVectorEnv(BatchedVectorEnv):
    """Native batched SlateSelection: N pages stepped by one NumPy computation.

    See :class:`SlateSelectionEnv` for spaces and semantics. ``info`` holds batched arrays:
    ``attraction`` (N, K), ``click_probs`` (N, K, L), ``oracle_slate`` (N, L), ``oracle_reward``,
    ``regret``, ``reward_expected``, ``clicked`` (N,), ``clicks`` and ``slate_click_probs`` (N, L);
    ``click_model`` is the env's :class:`adsim.click_models.ClickModel`.
    """

    pages = True
    """A slate env: each request is a page of ``slate_size`` positions (what runners check)."""

    def __init__(self, num_envs: int = 1, config: EnvConfig | None = None, preset: str = "default",
                 render_mode: str | None = None, estimator=None, ctr_model: str | None = None,
                 world_seeds=None, **overrides: Any):
        config = resolve_config(config, EnvConfig, make_config, preset, overrides)
        check_slate_config(config)
        core, world = vector_core(SlateCore, config, num_envs, estimator, ctr_model, world_seeds)
        self.click_model = ClickModel.from_config(config)  # every stacked world's: they share the config
        self._init_vector(core, slate_observation_space(world, config.n_candidates, config.slate_size), render_mode)
