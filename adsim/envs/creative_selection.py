"""CreativeSelection: choose which of K candidate creatives to show to each arriving user."""

from __future__ import annotations

from typing import Any

from adsim.config import EnvConfig, make_config
from adsim.envs.base import BatchedVectorEnv, SingleEnvView, resolve_config
from adsim.envs.spaces import observation_space
from adsim.selection import OBS_KEYS, SelectionCore
from adsim.stacking import StackedCore, check_world_seeds


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
        raise TypeError(f"estimator {type(estimator).__name__} lacks {missing} of adsim.running_ctr.CTREstimator")
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


def _source_kwargs(config: EnvConfig, generator) -> dict[str, Any]:
    """Core keywords of a ``generator=`` argument (``adsim.generator.scenario``): its candidate source
    and the template sampler's β0 of the same world; none without one."""
    if generator is None:
        return {}
    from adsim.generator.scenario import generated_core_kwargs  # imports torch: only when asked for

    return generated_core_kwargs(config, generator)


def vector_core(core_class: type, config: EnvConfig, num_envs: int, estimator, ctr_model, world_seeds,
                generator=None):
    """The core of a vector env over ``config`` and the world its spaces are read from: one
    ``core_class`` (a :class:`SelectionCore` or a subclass) of ``num_envs`` slots, or with
    ``world_seeds`` a :class:`StackedCore` of one per world seed (each with its own CTR estimator,
    and with a ``generator`` its own candidate source and β0)."""
    if world_seeds is None:
        core = core_class(config, num_envs, estimator=_resolve_estimator(config, estimator, ctr_model),
                          **_source_kwargs(config, generator))
        return core, core.world
    seeds = check_world_seeds(world_seeds, num_envs)
    estimators = _stacked_estimators(config, seeds, estimator, ctr_model) or [None] * len(seeds)
    B = num_envs // len(seeds)
    configs = [config.replace(seed=s) for s in seeds]
    core = StackedCore(config, [core_class(c, B, estimator=e, **_source_kwargs(c, generator))
                                for c, e in zip(configs, estimators)])
    return core, core.worlds[0]  # spaces only: every stacked world has the same shapes


class CreativeSelectionEnv(SingleEnvView):
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
    | ctr_estimate | (K,) | 0 | 1 | the platform's CTR estimate per candidate (``adsim.running_ctr``) |

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
    | estimator | None | a ``CTREstimator`` for ``ctr_estimate`` (default: ``adsim.running_ctr.RunningCTR``) |
    | ctr_model | None | a saved CTR model's path, or ``"deepfm:50000"`` (train at set-up), served as ``adsim.ctr.LearnedCTR`` |
    | generator | None | personalised mode: a directory written by ``adsim train-generator`` (``"default"``: ``models/generator``) whose Transformer writes every request's K candidates; the world and β0 stay the template scenario's (``adsim.generator.scenario``) |
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
    side by side (``adsim.stacking.StackedCore``): sub-envs ``[g·B, (g+1)·B)`` live in the
    world of seed ``w_g`` with its own creative pools, β0 and CTR estimate (a ``ctr_model`` is
    trained or loaded once per world; a ``generator`` gets a candidate source per world, and the
    template β0 of that world). ``reset(seed=[s_0, …, s_{G-1}])`` seeds group g's request
    streams with ``s_g``; group g then sees exactly, bit for bit, what an unstacked vector env of B
    sub-envs with world seed ``w_g`` reset with ``s_g`` sees. This is how the benchmark runner runs
    many scenario seeds in one loop.

    ## Version History
    * v0: initial version.
    """

    def __init__(self, config: EnvConfig | None = None, preset: str = "default", render_mode: str | None = None,
                 estimator=None, ctr_model: str | None = None, generator: str | None = None, **overrides: Any):
        config = resolve_config(config, EnvConfig, make_config, preset, overrides)
        core = SelectionCore(config, 1, estimator=_resolve_estimator(config, estimator, ctr_model),
                             **_source_kwargs(config, generator))
        self._init_view(core, observation_space(core.world, config.n_candidates), render_mode)


class CreativeSelectionVectorEnv(BatchedVectorEnv):
    """Native batched CreativeSelection: N request slots stepped by one NumPy computation.

    See :class:`CreativeSelectionEnv` for spaces and semantics. Autoreset is same-step: when the
    horizon is reached, the returned observation is the next episode's first request and
    ``info["final_obs"]`` / ``info["final_info"]`` hold the last ones. ``info`` holds batched
    arrays: ``click_probs`` and ``expected_reward`` (N, K), ``optimal_action``, ``regret``,
    ``clicked``, ``converted`` and ``reward_expected`` (N,).
    """

    def __init__(self, num_envs: int = 1, config: EnvConfig | None = None, preset: str = "default",
                 render_mode: str | None = None, estimator=None, ctr_model: str | None = None,
                 world_seeds=None, generator: str | None = None, **overrides: Any):
        config = resolve_config(config, EnvConfig, make_config, preset, overrides)
        core, world = vector_core(SelectionCore, config, num_envs, estimator, ctr_model, world_seeds, generator)
        self._init_vector(core, observation_space(world, config.n_candidates), render_mode)


OBS_KEYS = OBS_KEYS
