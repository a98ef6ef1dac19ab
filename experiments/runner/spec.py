"""What a study is: scenarios × policies × scenario seeds, read from one TOML schema.

Every study — the benchmark, bandits vs RL, your own — is a file of this one schema::

    name = "mystudy"         # optional; defaults to the file's stem
    seeds = [0, 1, 2]        # scenario seeds: world seed and request streams
    steps = 50               # vector-env steps (batches) per run
    batch_size = 16          # B concurrent requests per step
    delay = 1                # feedback of batch t reaches the policy before batch t + delay
    buckets = "log"          # where metrics are recorded: "log" or "linear" steps
    n_buckets = 20
    reference = "ucb1"       # paired differences are taken to this policy (default: see below)

    [scenarios.pool]         # env = any registered Gymnasium id (default CreativeSelection);
    env = "adsim/CreativeSelection-v0"
    preset = "easy"          # the env's preset, plus any key of its config (EnvConfig / SessionConfig
    campaign = 0             # and WorldConfig fields), plus "steps" / "batch_size" to override
    batch_size = 64          # the run size, "ctr_model", "policies" (a subset), "feedback" and "horizon"

    [policies.random]        # the table name is the label; "policy" names the registered
    [policies.eps_fixed]     # policy (or "package.module:ClassName", your own) when it differs
    policy = "epsilon_greedy"  # from the label; other keys are hyperparameters
    epsilon = 0.1
    [policies.oracle_mix]    # "uniform_mix" (any policy): the ε-mixture (1 − ε)·policy + ε·uniform
    policy = "oracle"
    uniform_mix = 0.1

An **OPE study** is the same file with an ``[ope]`` table (:class:`OpeSpec`): its units are logs —
(scenario, logging policy, log size, seed) — instead of runs; every target policy is estimated from
each log by every estimator and compared with the simulator's truth::

    [ope]
    logging = ["random", "oracle_mix"]   # policy labels of [policies.*]
    targets = ["oracle", "random"]       # policy labels
    sizes = [500, 2000, 8000]            # logged rounds

Everything is validated when the config is built (:func:`parse_config`), before anything runs:
unknown keys, unknown policies, bad hyperparameters and bad env values raise ``ValueError`` or
``TypeError`` naming the key, the value and what is allowed. :func:`apply_overrides` applies
command-line ``--set dotted.key=value`` changes to the parsed document first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import sys
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from adsim.validation import check_choice, check_float, check_int
from adsim.memory import check_memory, run_bytes
from agents.base import Policy
from agents.registry import make_policy

TOP_KEYS = ("name", "seeds", "steps", "batch_size", "delay", "buckets", "n_buckets", "reference", "scenarios",
            "policies", "ope")
MIX_KEY = "uniform_mix"
"""Policy-table key of any policy: wrap it in ``agents.mixture.EpsilonMixture`` with this weight."""
BUCKETS = ("log", "linear")
DEFAULT_ENV = "adsim/CreativeSelection-v0"
SLATE_ENV = "adsim/SlateSelection-v0"
RUNNER_OWNED = ("seed", "world")
"""Env keys a scenario may not set: the runner sets the world seed to the scenario seed."""
MAX_BATCH = 1 << 20
"""Most concurrent requests per step."""


SIZE_KEYS = ("steps", "batch_size")
"""Run-size keys a scenario may override."""
EXTRA_KEYS = ("env", "ctr_model", "policies", "feedback", "generator", "compare_ctr_to", "observable_bound")
"""Scenario keys that are not env-config fields: the env id, its learned CTR model, a subset of
policies, the feedback, the generator writing its candidates, the scenario its CTR is compared with,
the observable-feature bound the report measures policies against."""
REPORT_KEYS = ("observable_bound",)
"""Scenario keys that change only the report, not a run's numbers: kept out of the fingerprint (a
results folder can be re-reported with them by ``--resume``)."""
FEEDBACK = ("realised", "expected")


@lru_cache(maxsize=None)
def env_class(env_id: str) -> type:
    """The native vector env class registered for ``env_id`` (``ValueError`` if there is none)."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    import adsim  # noqa: F401  (registers the adsim envs)

    if env_id not in gym.registry:
        check_choice("env", env_id, tuple(k for k in gym.registry if "/" in k) or tuple(gym.registry))
    spec = gym.spec(env_id)
    if spec.vector_entry_point is None:
        raise ValueError(f"env {env_id!r} has no vector_entry_point; the runner steps native vector envs")
    entry = spec.vector_entry_point
    return load_env_creator(entry) if isinstance(entry, str) else entry


def env_accepts(env_id: str, keyword: str) -> bool:
    """Capability check: whether the env's vector class takes ``keyword`` (e.g. ``world_seeds``)."""
    return keyword in inspect.signature(env_class(env_id)).parameters


def resolve_env_config(env_id: str, preset: str, overrides: dict[str, Any]):
    """The env's config object for ``preset`` + ``overrides`` (validated by the env's own config code).

    Uses the env module's config resolver when it has one (cheap); otherwise builds a one-slot env."""
    cls = env_class(env_id)
    resolver = getattr(sys.modules[cls.__module__], "_resolve_config", None)
    if resolver is not None:
        return resolver(None, preset, dict(overrides))
    return cls(num_envs=1, preset=preset, **overrides).config


def _freeze(value: Any) -> Any:
    """TOML arrays as tuples, so env kwargs are hashable (the runner caches envs by them)."""
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


@dataclass(frozen=True)
class ScenarioSpec:
    """One env scenario: a registered env, its preset plus overrides; the runner adds the world seed
    (and the horizon, unless the scenario sets it)."""

    name: str
    """Label used in outputs (the TOML table name)."""
    preset: str = "default"
    """A preset of the env (``adsim.config.PRESETS`` for CreativeSelection, ``SESSION_PRESETS`` for AdSession)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Fields of the env's config (and ``WorldConfig``); in pool mode ``campaign`` defaults to 0.
    ``horizon`` defaults to the run's steps (one episode per run); set it for envs whose episodes
    are sessions."""
    steps: int | None = None
    """Steps per run here (``None``: the config's ``steps``)."""
    batch_size: int | None = None
    """Requests per step here (``None``: the config's ``batch_size``)."""
    ctr_model: str | None = None
    """The env's CTR estimate from a learned model: a saved model's path, or ``"NAME:IMPRESSIONS"``
    (e.g. ``"deepfm:20000"``) trained at set-up on impressions logged in this scenario's world
    (``adsim.ctr.LearnedCTR``); ``None`` keeps the running-CTR estimate."""
    policies: tuple[str, ...] | None = None
    """Labels of the policies run on this scenario (``None``: all of them)."""
    feedback: str = "realised"
    """What a policy's ``update`` receives as rewards: ``"realised"`` — the clicks (or conversions,
    revenue) the users gave, as in production; ``"expected"`` — each shown creative's true expected
    reward (``info["reward_expected"]``), noise-free feedback: how well a policy's model class can
    do when the data is not the limit (an ablation, not a deployable setting; regret is measured the
    same way)."""
    env: str = DEFAULT_ENV
    """A registered Gymnasium id with a native vector env (``adsim/CreativeSelection-v0``, ``adsim/AdSession-v0``, …)."""
    generator: str | None = None
    """Who writes every request's K candidates in a personalised scenario of an env that takes a
    candidate source (``adsim/CreativeSelection-v0``): ``"default"`` (``models/generator``, which
    set-up fills) or a directory written by ``adsim train-generator``; ``None``: the template
    sampler. The world, request streams and β0 stay those of the template scenario of the same seed
    (``adsim.generator.scenario``), so true CTRs compare; the oracle, and regret, are over the
    generated candidates. The generator's weights hash and architecture are part of the study's
    fingerprint."""
    compare_ctr_to: str | None = None
    """Another scenario of the study (same world, candidates per request, mode, reward, steps and
    batch size; the seeds are the study's) whose CTR every policy run on both is compared with,
    seed by seed: a paired table in summary.md and ``ctr_comparison.csv``. ``None``: no comparison."""
    observable_bound: float | None = None
    """The share of the oracle's margin over random that the best policy acting on observations alone
    keeps (the *observable-feature bound*, measured by ``adsim train-ctr --labels truth``: a model
    fitted to true click probabilities, acting greedily), in (0, 1]. The summary then measures every
    policy against it: its share of the bound (margin recovered ÷ bound, whole run and last decade)
    and the log-log slope of its regret *in excess of the bound's*, R − (1 − bound) · R_random over
    the last decade (the bound's expected regret on the same requests). Report only: not part of the
    fingerprint. ``None``: against the oracle only."""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"scenario name == {self.name!r}, must be a non-empty str")
        if not isinstance(self.env, str):
            raise TypeError(f"scenarios.{self.name}.env must be a str, got {type(self.env).__name__} {self.env!r}")
        try:
            env_class(self.env)
        except ValueError as err:
            raise ValueError(f"scenarios.{self.name}.env: {err}") from None
        object.__setattr__(self, "overrides", {k: _freeze(v) for k, v in self.overrides.items()})
        for key in self.overrides:
            if key in RUNNER_OWNED:
                raise ValueError(f"scenarios.{self.name}.{key} is set by the runner (world seed = scenario "
                                 f"seed); remove it")
        try:
            base = resolve_env_config(self.env, self.preset, self.overrides)
        except (TypeError, ValueError) as err:
            raise type(err)(f"scenarios.{self.name}: {err}") from None
        check_choice(f"scenarios.{self.name}.feedback", self.feedback, FEEDBACK)
        if self.ctr_model is not None:
            if not env_accepts(self.env, "ctr_model"):
                raise ValueError(f"scenarios.{self.name}.ctr_model: env {self.env!r} takes no ctr_model")
            _check_ctr_model(f"scenarios.{self.name}.ctr_model", self.ctr_model)
        object.__setattr__(self, "_generator_dir", None if self.generator is None else self._check_generator(base))
        if self.compare_ctr_to is not None and (not isinstance(self.compare_ctr_to, str) or not self.compare_ctr_to):
            raise TypeError(f"scenarios.{self.name}.compare_ctr_to must be a scenario name (str), got "
                            f"{type(self.compare_ctr_to).__name__} {self.compare_ctr_to!r}")
        if self.observable_bound is not None:
            check_float(f"scenarios.{self.name}.observable_bound", self.observable_bound, 0.0, 1.0, open_low=True)
        if self.policies is not None and (not isinstance(self.policies, tuple) or not self.policies
                                          or not all(isinstance(p, str) for p in self.policies)):
            raise TypeError(f"scenarios.{self.name}.policies must be a non-empty list of policy labels, "
                            f"got {self.policies!r}")
        if self.steps is not None:
            check_int(f"scenarios.{self.name}.steps", self.steps, 1, 10**7)
        if self.batch_size is not None:
            check_int(f"scenarios.{self.name}.batch_size", self.batch_size, 1, MAX_BATCH)
        pin = getattr(base, "mode", None) == "pool" and "campaign" not in self.overrides
        object.__setattr__(self, "_campaign_pinned", pin)
        if pin:  # pool arms must mean the same creatives in every slot: fix the campaign
            object.__setattr__(self, "overrides", {**self.overrides, "campaign": 0})

    def _check_generator(self, base) -> str:
        """The absolute directory of ``generator``, checked before any work: a str naming a generator
        of this world's shape, on an env that takes a candidate source, in personalised mode."""
        from adsim.generator.scenario import check_generator

        where = f"scenarios.{self.name}.generator"
        if not isinstance(self.generator, str):
            raise TypeError(f"{where} must be 'default' or a directory path (str), got "
                            f"{type(self.generator).__name__} {self.generator!r}")
        if not env_accepts(self.env, "generator"):
            raise ValueError(f"{where}: env {self.env!r} takes no candidate source; a generator writes the "
                             f"candidates of personalised {DEFAULT_ENV!r} scenarios: remove it or use that env")
        mode = getattr(base, "mode", None)
        if mode != "personalized":
            raise ValueError(f"{where} == {self.generator!r} needs mode == 'personalized' (candidates written for "
                             f"each request: preset = 'personalized' or mode = 'personalized'), got mode == {mode!r}")
        return str(check_generator(self.generator, base.world.n_interest_tags, where))

    @property
    def generator_dir(self) -> str | None:
        """The absolute directory of the scenario's generator (``None``: template candidates)."""
        return self._generator_dir

    @property
    def mode(self) -> str | None:
        """The env config's ``mode`` (``"pool"`` / ``"personalized"``), ``None`` if it has none."""
        return getattr(resolve_env_config(self.env, self.preset, self.overrides), "mode", None)

    @property
    def slate_size(self) -> int | None:
        """L, the positions of a page, on a slate env (``adsim/SlateSelection-v0``: its vector env's
        ``pages = True``); ``None`` on a one-creative env."""
        if not getattr(env_class(self.env), "pages", False):
            return None
        return int(resolve_env_config(self.env, self.preset, self.overrides).slate_size)

    @property
    def auctions(self) -> bool:
        """Whether every request is an auction (``adsim/AdAuction-v0``: its vector env's ``auctions = True``)."""
        return bool(getattr(env_class(self.env), "auctions", False))

    @property
    def stackable(self) -> bool:
        """Whether the env stacks scenario seeds (takes ``world_seeds``): a capability, not a name."""
        return env_accepts(self.env, "world_seeds")

    def env_kwargs(self, seed: int, steps: int) -> tuple[tuple[str, Any], ...]:
        """Keyword arguments of the env for scenario seed ``seed`` (hashable, sorted)."""
        kwargs = {"horizon": steps, **self.overrides, "seed": seed}
        return tuple(sorted({"preset": self.preset, **kwargs}.items()))

    def log_config(self, seed: int):
        """The env config an OPE study logs in under scenario seed ``seed``: the scenario's world
        (world seed = scenario seed) with the preset's horizon and campaigns (unless set here; the
        campaign a benchmark fixes for its pool arms is not fixed in a log)."""
        overrides = dict(self.overrides)
        if self._campaign_pinned:
            overrides.pop("campaign")
        try:
            return resolve_env_config(self.env, self.preset, {**overrides, "seed": seed})
        except (TypeError, ValueError) as err:
            raise type(err)(f"scenarios.{self.name}: {err}") from None

    def env_config(self, seed: int, steps: int):
        """The resolved env config of scenario seed ``seed`` (validated by the env's config)."""
        kwargs = dict(self.env_kwargs(seed, steps))
        try:
            return resolve_env_config(self.env, kwargs.pop("preset"), kwargs)
        except (TypeError, ValueError) as err:
            raise type(err)(f"scenarios.{self.name}: {err}") from None


def _check_ctr_model(where: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a str, got {type(value).__name__} {value!r}")
    name, sep, budget = value.partition(":")
    if Path(value).exists():
        return
    from adsim.ctr.models import MODELS

    if not sep or not budget.isdigit() or int(budget) < 1000:
        raise ValueError(f"{where} == {value!r}: expected a saved model's path or 'NAME:IMPRESSIONS' "
                         f"with IMPRESSIONS >= 1000, e.g. 'deepfm:20000'")
    check_choice(f"{where} model", name, MODELS)


@dataclass(frozen=True)
class PolicySpec:
    """A policy (registered name or ``"package.module:Class"`` import path) with hyperparameters, under a label."""

    label: str
    """Name in outputs (the TOML table name)."""
    policy: str
    """Registered policy name (``agents.registry.POLICIES``) or an import path ``"package.module:Class"``:
    the string travels to the workers, which resolve it themselves."""
    hyper: dict[str, Any] = field(default_factory=dict)
    """Hyperparameters passed to ``make_policy``."""
    uniform_mix: float = 0.0
    """Weight ε of the uniform policy in an ε-mixture ``(1 − ε)·policy + ε·uniform``
    (``agents.mixture.EpsilonMixture``; 0: the policy itself), the ``uniform_mix`` key of a table."""

    def __post_init__(self):
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"policy label == {self.label!r}, must be a non-empty str")
        if not isinstance(self.policy, str):
            raise TypeError(f"policies.{self.label}.policy must be a str (a registered name or "
                            f"'package.module:ClassName'), got {type(self.policy).__name__} {self.policy!r}")
        check_float(f"policies.{self.label}.{MIX_KEY}", self.uniform_mix, 0.0, 1.0)
        object.__setattr__(self, "uniform_mix", float(self.uniform_mix))
        object.__setattr__(self, "hyper", {k: _freeze(v) for k, v in self.hyper.items()})
        self.make()  # unknown policy / hyperparameter / bad value raise here

    def make(self) -> Policy:
        try:
            policy = make_policy(self.policy, **self.hyper)
        except (TypeError, ValueError) as err:
            raise type(err)(f"policies.{self.label}: {err}") from None
        if self.uniform_mix > 0:
            from agents.mixture import mix

            return mix(policy, self.uniform_mix)
        return policy

    def to_dict(self) -> dict[str, Any]:
        """The policy's table (``uniform_mix`` only when set, so older configs keep their fingerprints)."""
        mix = {MIX_KEY: self.uniform_mix} if self.uniform_mix > 0 else {}
        return {"policy": self.policy, **self.hyper, **mix}

    def same_policy(self, other: PolicySpec) -> bool:
        """Whether two specs build the same policy (whatever their labels)."""
        return (self.policy, self.hyper, self.uniform_mix) == (other.policy, other.hyper, other.uniform_mix)


def policy_spec(label: str, table: dict[str, Any]) -> PolicySpec:
    """A :class:`PolicySpec` from a ``[policies.<label>]`` table (or a policy file of the same keys):
    ``policy`` (default: the label), ``uniform_mix``, and hyperparameters."""
    table = dict(_table(table, f"policies.{label}"))
    mix = table.pop(MIX_KEY, 0.0)
    return PolicySpec(label, table.pop("policy", label), table, mix)


def describe(spec: PolicySpec) -> str:
    """A policy spec in one line: ``name``, ``name(k=v,…)``, ``…@ε`` for a uniform mixture."""
    extra = ",".join(f"{k}={v}" for k, v in sorted(spec.hyper.items()))
    base = f"{spec.policy}({extra})" if extra else spec.policy
    return f"{base}@{spec.uniform_mix:g}" if spec.uniform_mix > 0 else base


def policy_from_arg(text: str, sets: list[str] | None = None, flag: str = "--policy") -> PolicySpec:
    """A policy named on the command line, in the schema's spelling: a registered name or
    ``"package.module:Class"`` (``name@ε`` is short for ``uniform_mix = ε``), or a ``.toml`` file
    holding one ``[policies.<label>]`` table's keys (``policy``, ``uniform_mix``, hyperparameters);
    ``sets`` are ``KEY=VALUE`` hyperparameters (TOML values) on top."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{flag} {text!r}: expected a policy name, 'package.module:Class' or a .toml file")
    if text.endswith(".toml"):
        table = read_toml(text)
        if isinstance(table.get("hyperparameters"), dict):
            raise ValueError(f"{flag} {text!r}: the [hyperparameters] table is gone; put hyperparameters at the top "
                             f"level, as in a study's [policies.<label>] table (policy = …, uniform_mix = …, c = …)")
        if "policy" not in table:
            raise ValueError(f"{flag} {text!r}: missing key 'policy' (a registered name or 'package.module:Class')")
    else:
        name, at, eps = text.partition("@")
        table = {"policy": name.strip()}
        if at:
            try:
                table[MIX_KEY] = float(eps)
            except ValueError:
                raise ValueError(f"{flag} {text!r}: {eps!r} after '@' is not a number; use NAME or NAME@EPSILON "
                                 f"(uniform_mix)") from None
    for item in sets or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {item!r}: expected KEY=VALUE, e.g. alpha=0.5")
        table[key.strip()] = parse_value(value.strip())
    try:
        spec = policy_spec(str(table["policy"]), table)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{flag} {text!r}: {err}") from None
    return dataclasses.replace(spec, label=describe(spec))


OPE_KEYS = ("logging", "targets", "sizes", "estimators", "clip", "tau", "alpha", "ci", "n_folds", "num_envs")
"""Keys of the ``[ope]`` table (``slate`` is set from the scenarios, not written)."""
OPE_REFERENCE = "dr_true_q"
"""DR with the simulator's truth as its reward model: a reference row of an OPE study, not an estimator."""
NOT_IN_OPE = ("steps", "batch_size", "delay", "buckets", "n_buckets", "reference")
"""Run keys an OPE study does not use (its units are logs of ``[ope] sizes`` rounds)."""


@dataclass(frozen=True)
class OpeSpec:
    """The ``[ope]`` table: an off-policy-evaluation study over (scenario, logging policy, log size,
    seed) logs. Each log is collected by the logging policy through the one logging path
    (``adsim.collect``) in the scenario's world (world seed = scenario seed, its request streams
    from the seed too); one reward model is fitted on it; every target is estimated from it by
    every estimator and compared with its true value on the logged requests."""

    logging: tuple[str, ...]
    """Labels (of ``[policies.*]``) of the logging policies."""
    targets: tuple[str, ...]
    """Labels of the target policies; a target that is the logging policy is skipped on its logs."""
    sizes: tuple[int, ...] = (500, 2000, 8000)
    """Log sizes (logged rounds, >= 10)."""
    estimators: tuple[str, ...] | None = None
    """Estimators reported: one-slot studies ``adsim.ope.ESTIMATORS`` and ``"dr_true_q"``; slate studies
    (``adsim/SlateSelection-v0`` scenarios) ``adsim.ope.slate.SLATE_ESTIMATORS``; ``None``: all of them
    (a slate study's default leaves ``pseudo_inverse`` out when a logging policy has no closed form of it)."""
    clip: float = 5.0
    """Weight cap of ``dr_clip``."""
    tau: float = 5.0
    """Switch threshold of ``switch_dr``."""
    alpha: float = 0.05
    """1 − confidence level of the intervals."""
    ci: str = "normal"
    """Intervals: ``"normal"`` (asymptotic), ``"bootstrap"`` (percentile, 200 replicates) or
    ``"bootstrap_t"`` (studentised bootstrap, 200 replicates: ``adsim.ope.estimators``)."""
    n_folds: int = 2
    """Cross-fitting folds of the reward model (logistic regression, ``adsim.ope.predict_rewards``)."""
    num_envs: int = 4096
    """Request slots per logging step (a log of n rounds uses min(n, num_envs))."""
    slate: bool = False
    """Whether the study's scenarios are slate pages (set by :class:`BenchConfig` from its scenarios,
    not a key of the table): its logs are ``adsim.collect.collect_slate_log`` pages, its estimators
    the slate ones."""

    def __post_init__(self):
        from adsim.ope.estimators import CI_METHODS, ESTIMATORS
        from adsim.ope.slate import SLATE_ESTIMATORS

        for key in ("logging", "targets", "sizes"):
            value = getattr(self, key)
            if not isinstance(value, tuple) or not value:
                raise ValueError(f"ope.{key} == {value!r}, must be a non-empty list")
        for key in ("logging", "targets"):
            for label in getattr(self, key):
                if not isinstance(label, str):
                    raise TypeError(f"ope.{key} entries must be policy labels (str), got {label!r}")
            if len(set(getattr(self, key))) != len(getattr(self, key)):
                raise ValueError(f"ope.{key} == {list(getattr(self, key))}, must be distinct")
        for n in self.sizes:
            check_int("ope.sizes[]", n, 10, 10**9)
        if len(set(self.sizes)) != len(self.sizes):
            raise ValueError(f"ope.sizes == {list(self.sizes)}, must be distinct")
        if self.estimators is not None:
            if not isinstance(self.estimators, tuple) or not self.estimators:
                raise ValueError(f"ope.estimators == {self.estimators!r}, must be a non-empty list")
            for name in self.estimators:
                check_choice("ope.estimators entry", name, (*ESTIMATORS, OPE_REFERENCE, *SLATE_ESTIMATORS))
            if len(set(self.estimators)) != len(self.estimators):
                raise ValueError(f"ope.estimators == {list(self.estimators)}, must be distinct")
        check_float("ope.clip", self.clip, 0.0, None, open_low=True)
        check_float("ope.tau", self.tau, 0.0, None, open_low=True)
        check_float("ope.alpha", self.alpha, 0.0, 0.5, open_low=True)
        check_choice("ope.ci", self.ci, CI_METHODS)
        check_int("ope.n_folds", self.n_folds, 2, 100)
        check_int("ope.num_envs", self.num_envs, 1, MAX_BATCH)

    @property
    def reported(self) -> tuple[str, ...]:
        """The estimators in the outputs, in the order of ``adsim.ope.ESTIMATORS``, then the reference
        (a slate study: in the order of ``adsim.ope.slate.SLATE_ESTIMATORS``)."""
        from adsim.ope.estimators import ESTIMATORS
        from adsim.ope.slate import SLATE_ESTIMATORS

        every = SLATE_ESTIMATORS if self.slate else (*ESTIMATORS, OPE_REFERENCE)
        return every if self.estimators is None else tuple(e for e in every if e in self.estimators)

    def to_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["estimators"] = list(self.reported)
        if not self.slate:
            doc.pop("slate")  # one-slot studies keep their fingerprints
        return {k: list(v) if isinstance(v, tuple) else v for k, v in doc.items()}


def parse_ope(value: Any) -> OpeSpec:
    table = dict(_table(value, "ope"))
    for key in table:
        check_choice("ope key", key, OPE_KEYS)
    for key in ("logging", "targets", "sizes", "estimators"):
        if key in table:
            if not isinstance(table[key], list):
                raise TypeError(f"ope.{key} must be a list, got {type(table[key]).__name__} {table[key]!r}")
            table[key] = tuple(table[key])
    for key in ("logging", "targets"):
        if key not in table:
            raise ValueError(f"ope.{key} is missing: name the {key} policies by their [policies.*] labels")
    return OpeSpec(**table)


@dataclass(frozen=True)
class BenchConfig:
    """A whole study: every scenario × every policy × every seed."""

    name: str
    """Run name (config.json, plot titles)."""
    scenarios: tuple[ScenarioSpec, ...]
    policies: tuple[PolicySpec, ...]
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Scenario seeds (distinct ints >= 0): world seed and request streams."""
    steps: int = 200
    """Vector-env steps per run; each step serves ``batch_size`` requests (a scenario may override)."""
    batch_size: int = 64
    """B concurrent requests per step (slots of the vector env; a scenario may override)."""
    delay: int = 1
    """Feedback of batch t is given to the policy before it chooses batch t + delay (>= 1, <= steps)."""
    buckets: str = "log"
    """Steps at which metrics are recorded: ``"log"`` (log-spaced) or ``"linear"``."""
    n_buckets: int = 40
    """How many recording points (log spacing merges duplicates, so there may be fewer)."""
    reference: str | None = None
    """Label of the policy the paired differences are taken to (``None``: per scenario, the strongest
    policy that does not read the truth, i.e. the lowest mean final regret)."""
    ope: OpeSpec | None = None
    """An off-policy-evaluation study (the ``[ope]`` table): units are logs, not runs."""

    def __post_init__(self):
        check_int("steps", self.steps, 1, 10**7)
        check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        check_int("delay", self.delay, 1, 10**7)
        check_choice("buckets", self.buckets, BUCKETS)
        check_int("n_buckets", self.n_buckets, 1, 10**5)
        if not isinstance(self.seeds, tuple) or not self.seeds:
            raise ValueError(f"seeds == {self.seeds!r}, must be a non-empty list of ints >= 0")
        for i, s in enumerate(self.seeds):
            check_int(f"seeds[{i}]", s, 0, 2**40)
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, got {type(self.name).__name__} {self.name!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds == {list(self.seeds)}, must be distinct")
        # one canonical order: interval estimates (bootstrap resamples) must not depend on how the
        # seeds were listed
        object.__setattr__(self, "seeds", tuple(sorted(self.seeds)))
        for kind, items in (("scenarios", self.scenarios), ("policies", self.policies)):
            if not items:
                raise ValueError(f"{kind} is empty; define at least one [{kind}.<name>] table")
        labels = [p.label for p in self.policies]
        if len(set(labels)) != len(labels):
            raise ValueError(f"policy labels {labels} must be distinct")
        if self.reference is not None:
            check_choice("reference", self.reference, tuple(labels))
        if self.ope is not None:
            self._check_ope(tuple(labels))
            return
        for i, sc in enumerate(self.scenarios):
            for label in sc.policies or ():
                check_choice(f"scenarios.{sc.name}.policies entry", label, tuple(labels))
            steps, _ = self.size(i)
            if self.delay > steps:
                raise ValueError(f"delay == {self.delay}, must be <= steps ({steps} in scenario {sc.name!r})")
            env_cfg = sc.env_config(self.seeds[0], steps)  # every env value validated now
            if sc.auctions:
                if sc.feedback != "realised":
                    raise ValueError(f"scenarios.{sc.name}.feedback == {sc.feedback!r}: an auction's bidders learn "
                                     f"from its outcome (won, price, clicks); use feedback = 'realised' there")
                self._check_policy_kind(i, sc, "select_bids", "a bidding policy", "is an auction",
                                        "a bidder of agents.bidding (e.g. 'truthful', 'pid_pacer', 'dual_pacer', "
                                        "'learned_shader', 'oracle_bidder')")
            elif sc.slate_size is not None:
                self._check_policy_kind(i, sc, "select_slate", "a slate policy",
                                        f"shows pages of slate_size == {sc.slate_size}",
                                        "a slate policy of agents.slate (e.g. 'random_slate', 'oracle_slate', "
                                        "'top_ucb1', 'cascade_klucb')")
            check_memory(run_bytes(env_cfg, steps, self.size(i)[1], len(self.seeds)),
                         f"scenario {sc.name!r} with steps == {steps}, batch_size == {self.size(i)[1]} and "
                         f"{len(self.seeds)} seeds", "steps, batch_size or the number of seeds")
            if sc.compare_ctr_to is not None:
                self._check_compare(i)

    COMPARED_FIELDS = ("mode", "n_candidates", "reward")
    """Env-config fields two scenarios must share for their CTRs to compare (and the world, the size)."""

    def compared(self, i: int) -> int | None:
        """Index of the scenario scenario ``i``'s CTR is compared with (``compare_ctr_to``), or None."""
        name = self.scenarios[i].compare_ctr_to
        return None if name is None else [sc.name for sc in self.scenarios].index(name)

    def _check_compare(self, i: int) -> None:
        """``compare_ctr_to`` of scenario ``i`` names another scenario of the same world (world seed =
        scenario seed: the study's seeds), candidates per request, mode, reward and size, with a policy
        in common: then every such policy's CTR differs between them only by who wrote the candidates
        (or what else the two set apart, e.g. the CTR estimate)."""
        sc = self.scenarios[i]
        where = f"scenarios.{sc.name}.compare_ctr_to"
        others = tuple(o.name for o in self.scenarios if o.name != sc.name)
        if sc.compare_ctr_to == sc.name:
            raise ValueError(f"{where} == {sc.name!r} names the scenario itself; name another one of {list(others)}")
        check_choice(where, sc.compare_ctr_to, others)
        j = self.compared(i)
        other = self.scenarios[j]
        if other.env != sc.env:
            raise ValueError(f"{where} == {other.name!r}: its env {other.env!r} is not this scenario's {sc.env!r}")
        if self.size(j) != self.size(i):
            raise ValueError(f"{where} == {other.name!r}: its steps × batch_size {self.size(j)} is not this "
                             f"scenario's {self.size(i)}; CTRs compare over the same impressions with the same "
                             f"update schedule: set the same steps and batch_size on both")
        mine, theirs = (self.scenarios[k].env_config(self.seeds[0], self.size(k)[0]) for k in (i, j))
        if mine.world != theirs.world:
            diff = sorted(f.name for f in dataclasses.fields(mine.world)
                          if getattr(mine.world, f.name) != getattr(theirs.world, f.name))
            raise ValueError(f"{where} == {other.name!r} lives in another world (world fields {diff} differ); "
                             f"a CTR comparison needs the same world: set the same world fields on both")
        for key in self.COMPARED_FIELDS:
            if getattr(mine, key, None) != getattr(theirs, key, None):
                raise ValueError(f"{where} == {other.name!r}: its {key} == {getattr(theirs, key, None)!r} is not "
                                 f"this scenario's {getattr(mine, key, None)!r}; set the same {key} on both")
        labels = {self.policies[k].label for k in self.policy_indices(j)}
        if not any(self.policies[k].label in labels for k in self.policy_indices(i)):
            raise ValueError(f"{where} == {other.name!r}: the two scenarios run no policy in common; a CTR "
                             f"comparison is per policy (scenarios.<name>.policies)")

    def _check_policy_kind(self, i: int, sc: ScenarioSpec, method: str, kind: str, what: str, use: str) -> None:
        """Every policy run on scenario ``i`` has ``method`` (a slate env's pages need slate policies,
        an auction env's auctions bidders); else a ValueError naming the policy and the scenario."""
        for j in self.policy_indices(i):
            if not callable(getattr(self.policies[j].make(), method, None)):
                raise ValueError(f"policies.{self.policies[j].label} ({describe(self.policies[j])}) is not {kind}, "
                                 f"and scenarios.{sc.name} {what} (env {sc.env!r}); use {use} or leave it out "
                                 f"of the scenario (scenarios.{sc.name}.policies)")

    def _check_ope(self, labels: tuple[str, ...]) -> None:
        from adsim.config import EnvConfig
        from adsim.memory import env_bytes, impressions_bytes

        ope = self.ope
        for key in ("logging", "targets"):
            for label in getattr(ope, key):
                check_choice(f"ope.{key} entry", label, labels)
        for sc in self.scenarios:
            for key in ("steps", "batch_size", "ctr_model", "policies", "generator", "compare_ctr_to"):
                if getattr(sc, key) is not None:
                    raise ValueError(f"scenarios.{sc.name}.{key} is not used by an OPE study (its logs have "
                                     f"[ope] sizes rounds, logged by [ope] logging); remove it")
            if sc.feedback != "realised":
                raise ValueError(f"scenarios.{sc.name}.feedback == {sc.feedback!r}: an OPE study's logs record "
                                 "what users did; remove it")
            env_cfg = sc.log_config(self.seeds[0])
            if not isinstance(env_cfg, EnvConfig):
                raise ValueError(f"scenarios.{sc.name}.env == {sc.env!r}: an OPE study logs "
                                 f"{DEFAULT_ENV!r} or {SLATE_ENV!r} scenarios only")
            n = max(ope.sizes)
            if sc.slate_size is None:
                check_memory(env_bytes(env_cfg, min(n, ope.num_envs)) + impressions_bytes(n),
                             f"scenario {sc.name!r} with a log of {n} rounds", "ope.sizes or ope.num_envs")
            else:
                from adsim.ope.slate import all_slates

                try:
                    n_slates = all_slates(env_cfg.n_candidates, sc.slate_size).shape[0]
                except ValueError as err:
                    raise ValueError(f"scenarios.{sc.name}: {err}; a slate OPE log holds every ordered slate's "
                                     "probability: lower n_candidates or slate_size") from None
                check_memory(env_bytes(env_cfg, min(n, ope.num_envs)) + 8 * n * n_slates * (3 + len(ope.targets)),
                             f"scenario {sc.name!r} with a log of {n} pages of {n_slates} ordered slates",
                             "ope.sizes, ope.num_envs or the scenario's n_candidates")
        slate = {sc.name: sc.slate_size is not None for sc in self.scenarios}
        if len(set(slate.values())) > 1:
            one = next(k for k, v in slate.items() if not v)
            many = next(k for k, v in slate.items() if v)
            raise ValueError(f"scenarios.{one} is a one-slot scenario and scenarios.{many} a slate scenario "
                             f"({SLATE_ENV!r}); an OPE study's scenarios are all of one kind: split the study")
        if any(slate.values()):
            self._check_slate_ope()
        else:
            self._check_one_slot_ope()

    def _check_one_slot_ope(self) -> None:
        """A one-slot OPE study: no slate estimators, no slate policies."""
        from adsim.ope.slate import SLATE_ESTIMATORS

        ope = self.ope
        for name in ope.estimators or ():
            if name in SLATE_ESTIMATORS:
                raise ValueError(f"ope.estimators entry {name!r} is a slate estimator; the scenarios "
                                 f"({', '.join(sc.name for sc in self.scenarios)}) are one-slot. A slate study's "
                                 f"scenarios set env = {SLATE_ENV!r}")
        by_label = {p.label: p for p in self.policies}
        for key in ("logging", "targets"):
            for label in getattr(ope, key):
                if hasattr(by_label[label].make(), "slate_probabilities"):
                    raise ValueError(f"ope.{key} entry {label!r} (policy {by_label[label].policy!r}) is a slate "
                                     f"policy; the scenarios are one-slot: name a one-slot policy")

    def _check_slate_ope(self) -> None:
        """A slate OPE study: slate estimators only, fixed slate policies with exact slate
        probabilities, a pseudo-inverse form for every logger when ``pseudo_inverse`` is asked for."""
        from adsim.ope.estimators import ESTIMATORS
        from adsim.ope.slate import SLATE_ESTIMATORS

        ope = self.ope
        for name in ope.estimators or ():
            if name not in SLATE_ESTIMATORS:
                kind = "reference" if name == OPE_REFERENCE else "one-slot estimator"
                raise ValueError(f"ope.estimators entry {name!r} is a {kind}; the scenarios are slate pages "
                                 f"({SLATE_ENV!r}): allowed {list(SLATE_ESTIMATORS)}")
        assert not set(ESTIMATORS) & set(SLATE_ESTIMATORS)
        by_label = {p.label: p for p in self.policies}
        slate_policies = "plackett_luce, random_slate, oracle_slate, top_ucb1, top_kl_ucb, top_linucb, top_lin_ts, ..."
        for key in ("logging", "targets"):
            for label in getattr(ope, key):
                policy = by_label[label].make()
                if not hasattr(policy, "slate_probabilities"):
                    raise ValueError(f"ope.{key} entry {label!r} (policy {describe(by_label[label])!r}) is a "
                                     f"one-slot policy; a slate study needs a slate policy with exact slate "
                                     f"probabilities ({slate_policies})")
                if not getattr(policy, "exact_slate_probabilities", True):
                    raise ValueError(f"ope.{key} entry {label!r} (policy {by_label[label].policy!r}): its slate "
                                     "probabilities are approximate (quadrature), so its propensities would be "
                                     "wrong in the estimators; name a policy with exact ones")
        pi_forms = {label: getattr(by_label[label].make(), "pi_logging", None) for label in ope.logging}
        if ope.estimators is not None and "pseudo_inverse" in ope.estimators:
            for label, form in pi_forms.items():
                if form is None:
                    raise ValueError(f"ope.estimators entry 'pseudo_inverse' needs the logging policy's second "
                                     f"moments in closed form; ope.logging entry {label!r} has none (only the "
                                     "uniform slate logger: random_slate, or uniform_mix = 1): remove it")
        estimators = ope.estimators
        if estimators is None and any(form is None for form in pi_forms.values()):
            estimators = tuple(e for e in SLATE_ESTIMATORS if e != "pseudo_inverse")
        object.__setattr__(self, "ope", dataclasses.replace(ope, slate=True, estimators=estimators))

    def policy_indices(self, scenario: int) -> list[int]:
        """Indices into ``policies`` of the policies run on scenario number ``scenario``."""
        chosen = self.scenarios[scenario].policies
        return [i for i, p in enumerate(self.policies) if chosen is None or p.label in chosen]

    def size(self, scenario: int) -> tuple[int, int]:
        """(steps, batch_size) of runs on scenario number ``scenario``."""
        sc = self.scenarios[scenario]
        return (sc.steps or self.steps, sc.batch_size or self.batch_size)

    @staticmethod
    def stream_seed(seed: int) -> int:
        """Vector-env reset seed of scenario seed ``seed``: slot i then reads the i-th child stream of
        ``SeedSequence(seed)``, so different scenario seeds never share a stream."""
        return seed

    def to_dict(self) -> dict[str, Any]:
        """The resolved config (JSON-ready), each scenario with its full env config."""
        if self.ope is not None:
            return self._ope_dict()
        scenarios = {}
        for i, sc in enumerate(self.scenarios):
            steps, batch = self.size(i)
            env = dataclasses.asdict(sc.env_config(self.seeds[0], steps))
            env["world"]["seed"] = "scenario seed"
            scenarios[sc.name] = {"env": sc.env, "preset": sc.preset, "overrides": sc.overrides, "steps": steps,
                                  "batch_size": batch, "impressions_per_run": steps * batch, "resolved": env,
                                  "ctr_model": sc.ctr_model,
                                  # only when set: the fingerprints of configs without it stay as they were
                                  **({"feedback": sc.feedback} if sc.feedback != "realised" else {}),
                                  **self._generator_dict(sc),
                                  **({"compare_ctr_to": sc.compare_ctr_to} if sc.compare_ctr_to is not None else {}),
                                  **({"observable_bound": sc.observable_bound} if sc.observable_bound is not None else {}),
                                  "policies": [self.policies[j].label for j in self.policy_indices(i)]}
        return {
            "name": self.name, "seeds": list(self.seeds), "steps": self.steps, "batch_size": self.batch_size,
            "delay": self.delay,
            "buckets": self.buckets, "n_buckets": self.n_buckets,
            "reference": self.reference,
            "scenarios": scenarios,
            "policies": {p.label: p.to_dict() for p in self.policies},
            "stream_seeds": "slot i of scenario seed s reads the i-th child stream of SeedSequence(s)",
        }

    @staticmethod
    def _generator_dict(sc: ScenarioSpec) -> dict[str, Any]:
        """A generated scenario's ``generator`` entry: the hash of the weights and the architecture
        (part of the fingerprint: the same weights anywhere give the same numbers); {} without one."""
        if sc.generator is None:
            return {}
        from adsim.generator.scenario import generator_identity

        return {"generator": generator_identity(sc.generator_dir)}

    def generators(self) -> dict[str, dict[str, Any]]:
        """Provenance of every generated scenario's generator: the value given (``"default"`` or a
        path, as written), the hash of its weights, its architecture and how it was trained (its
        ``config.json``)."""
        from adsim.generator.scenario import generator_identity

        return {sc.name: {"given": sc.generator, **generator_identity(sc.generator_dir, training=True)}
                for sc in self.scenarios if sc.generator is not None}

    def _ope_dict(self) -> dict[str, Any]:
        scenarios = {}
        for sc in self.scenarios:
            env = dataclasses.asdict(sc.log_config(self.seeds[0]))
            env["world"]["seed"] = "scenario seed"
            scenarios[sc.name] = {"env": sc.env, "preset": sc.preset, "overrides": sc.overrides, "resolved": env}
        used = {*self.ope.logging, *self.ope.targets}
        return {"name": self.name, "kind": "ope", "seeds": list(self.seeds), "scenarios": scenarios,
                "policies": {p.label: p.to_dict() for p in self.policies if p.label in used},
                "ope": self.ope.to_dict(),
                "stream_seeds": "log of scenario seed s: request streams, policy and action draws are independent "
                                "children of SeedSequence(s) (adsim.collect.LogStreams.from_seed)"}

    def fingerprint(self) -> str:
        """A hash of everything that determines the runs' numbers (not the name or the reference):
        a results folder made by another config has another fingerprint."""
        doc = self.to_dict()
        for key in ("name", "reference"):
            doc.pop(key, None)
        for scenario in doc.get("scenarios", {}).values():
            for key in REPORT_KEYS:
                scenario.pop(key, None)
        text = json.dumps(doc, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{where} must be a table, got {type(value).__name__} {value!r}")
    return value


SCALAR_KEYS = ("steps", "batch_size", "delay", "buckets", "n_buckets", "reference")


def parse_config(data: dict[str, Any], default_name: str = "bench") -> BenchConfig:
    """Build a validated :class:`BenchConfig` from a parsed TOML document."""
    for key in data:
        check_choice("config key", key, TOP_KEYS)
    ope = None
    if "ope" in data:
        for key in NOT_IN_OPE:
            if key in data:
                raise ValueError(f"{key} is not used by an OPE study (its logs have [ope] sizes rounds); remove it")
        ope = parse_ope(data["ope"])
    scenarios = []
    for name, table in _table(data.get("scenarios", {}), "scenarios").items():
        table = dict(_table(table, f"scenarios.{name}"))
        size = {k: table.pop(k) for k in SIZE_KEYS if k in table}
        extra = {k: table.pop(k) for k in EXTRA_KEYS if k in table}
        if isinstance(extra.get("policies"), list):
            extra["policies"] = tuple(extra["policies"])
        scenarios.append(ScenarioSpec(name, table.pop("preset", "default"), table, **size, **extra))
    policies = []
    for label, table in _table(data.get("policies", {}), "policies").items():
        policies.append(policy_spec(label, table))
    seeds = data.get("seeds", BenchConfig.seeds)
    if not isinstance(seeds, (list, tuple)):
        raise TypeError(f"seeds must be a list of ints, got {type(seeds).__name__} {seeds!r}")
    scalars = {k: data[k] for k in SCALAR_KEYS if k in data}
    return BenchConfig(name=data.get("name", default_name), scenarios=tuple(scenarios), policies=tuple(policies),
                       seeds=tuple(seeds), ope=ope, **scalars)


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML document at ``path`` (``ValueError`` if missing or invalid)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"config file {str(path)!r} is a directory; pass a TOML file, e.g. "
                         "experiments/configs/default.toml")
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    with path.open("rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config file {str(path)!r} is not valid TOML: {err}") from None


def parse_value(text: str) -> Any:
    """A ``--set`` value as TOML reads it (``3``, ``0.1``, ``true``, ``"x"``, ``[1, 2]``); a bare word is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], sets: list[str] | None) -> dict[str, Any]:
    """Apply ``--set dotted.key=value`` changes (e.g. ``scenarios.pool.batch_size=32``) to a document."""
    import copy

    data = copy.deepcopy(data)
    for item in sets or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected dotted.key=value, e.g. steps=50 or policies.eps.epsilon=0.2")
        parts = [p.strip() for p in key.split(".")]
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"--set {item!r}: {'.'.join(parts[:depth + 1])} is a value, not a table")
            node = child
        node[parts[-1]] = parse_value(text.strip())
    return data


def load_config(path: str | Path, sets: list[str] | None = None) -> BenchConfig:
    """Read and validate a TOML study config, with optional ``--set`` overrides."""
    return parse_config(apply_overrides(read_toml(path), sets), default_name=Path(path).stem)
