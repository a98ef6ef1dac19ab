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
    batch_size = 64          # the run size, "ctr_model", "policies" (a subset) and "horizon"

    [policies.random]        # the table name is the label; "policy" names the registered
    [policies.eps_fixed]     # policy (or "package.module:ClassName", your own) when it differs
    policy = "epsilon_greedy"  # from the label; other keys are hyperparameters
    epsilon = 0.1

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

from adsim.validation import check_choice, check_int
from adsim.memory import check_memory, run_bytes
from agents.base import Policy
from agents.registry import make_policy

TOP_KEYS = ("name", "seeds", "steps", "batch_size", "delay", "buckets", "n_buckets", "reference", "scenarios",
            "policies")
BUCKETS = ("log", "linear")
DEFAULT_ENV = "adsim/CreativeSelection-v0"
RUNNER_OWNED = ("seed", "world")
"""Env keys a scenario may not set: the runner sets the world seed to the scenario seed."""
MAX_BATCH = 1 << 20
"""Most concurrent requests per step."""


SIZE_KEYS = ("steps", "batch_size")
"""Run-size keys a scenario may override."""
EXTRA_KEYS = ("env", "ctr_model", "policies")
"""Scenario keys that are not env-config fields: the env id, its learned CTR model, a subset of policies."""


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
    env: str = DEFAULT_ENV
    """A registered Gymnasium id with a native vector env (``adsim/CreativeSelection-v0``, ``adsim/AdSession-v0``, …)."""

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
        if self.ctr_model is not None:
            if not env_accepts(self.env, "ctr_model"):
                raise ValueError(f"scenarios.{self.name}.ctr_model: env {self.env!r} takes no ctr_model")
            _check_ctr_model(f"scenarios.{self.name}.ctr_model", self.ctr_model)
        if self.policies is not None and (not isinstance(self.policies, tuple) or not self.policies
                                          or not all(isinstance(p, str) for p in self.policies)):
            raise TypeError(f"scenarios.{self.name}.policies must be a non-empty list of policy labels, "
                            f"got {self.policies!r}")
        if self.steps is not None:
            check_int(f"scenarios.{self.name}.steps", self.steps, 1, 10**7)
        if self.batch_size is not None:
            check_int(f"scenarios.{self.name}.batch_size", self.batch_size, 1, MAX_BATCH)
        if getattr(base, "mode", None) == "pool" and "campaign" not in self.overrides:
            # pool arms must mean the same creatives in every slot: fix the campaign
            object.__setattr__(self, "overrides", {**self.overrides, "campaign": 0})

    @property
    def mode(self) -> str | None:
        """The env config's ``mode`` (``"pool"`` / ``"personalized"``), ``None`` if it has none."""
        return getattr(resolve_env_config(self.env, self.preset, self.overrides), "mode", None)

    @property
    def stackable(self) -> bool:
        """Whether the env stacks scenario seeds (takes ``world_seeds``): a capability, not a name."""
        return env_accepts(self.env, "world_seeds")

    def env_kwargs(self, seed: int, steps: int) -> tuple[tuple[str, Any], ...]:
        """Keyword arguments of the env for scenario seed ``seed`` (hashable, sorted)."""
        kwargs = {"horizon": steps, **self.overrides, "seed": seed}
        return tuple(sorted({"preset": self.preset, **kwargs}.items()))

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

    def __post_init__(self):
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"policy label == {self.label!r}, must be a non-empty str")
        object.__setattr__(self, "hyper", {k: _freeze(v) for k, v in self.hyper.items()})
        self.make()  # unknown policy / hyperparameter / bad value raise here

    def make(self) -> Policy:
        try:
            return make_policy(self.policy, **self.hyper)
        except (TypeError, ValueError) as err:
            raise type(err)(f"policies.{self.label}: {err}") from None


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
        if self.reference is not None:
            check_choice("reference", self.reference, tuple(labels))
        for i, sc in enumerate(self.scenarios):
            for label in sc.policies or ():
                check_choice(f"scenarios.{sc.name}.policies entry", label, tuple(labels))
            steps, _ = self.size(i)
            if self.delay > steps:
                raise ValueError(f"delay == {self.delay}, must be <= steps ({steps} in scenario {sc.name!r})")
            env_cfg = sc.env_config(self.seeds[0], steps)  # every env value validated now
            check_memory(run_bytes(env_cfg, steps, self.size(i)[1], len(self.seeds)),
                         f"scenario {sc.name!r} with steps == {steps}, batch_size == {self.size(i)[1]} and "
                         f"{len(self.seeds)} seeds", "steps, batch_size or the number of seeds")

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
        scenarios = {}
        for i, sc in enumerate(self.scenarios):
            steps, batch = self.size(i)
            env = dataclasses.asdict(sc.env_config(self.seeds[0], steps))
            env["world"]["seed"] = "scenario seed"
            scenarios[sc.name] = {"env": sc.env, "preset": sc.preset, "overrides": sc.overrides, "steps": steps,
                                  "batch_size": batch, "impressions_per_run": steps * batch, "resolved": env,
                                  "ctr_model": sc.ctr_model,
                                  "policies": [self.policies[j].label for j in self.policy_indices(i)]}
        return {
            "name": self.name, "seeds": list(self.seeds), "steps": self.steps, "batch_size": self.batch_size,
            "delay": self.delay,
            "buckets": self.buckets, "n_buckets": self.n_buckets,
            "reference": self.reference,
            "scenarios": scenarios,
            "policies": {p.label: {"policy": p.policy, **p.hyper} for p in self.policies},
            "stream_seeds": "slot i of scenario seed s reads the i-th child stream of SeedSequence(s)",
        }

    def fingerprint(self) -> str:
        """A hash of everything that determines the runs' numbers (not the name or the reference):
        a results folder made by another config has another fingerprint."""
        doc = self.to_dict()
        for key in ("name", "reference"):
            doc.pop(key)
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
        table = dict(_table(table, f"policies.{label}"))
        policies.append(PolicySpec(label, table.pop("policy", label), table))
    seeds = data.get("seeds", BenchConfig.seeds)
    if not isinstance(seeds, (list, tuple)):
        raise TypeError(f"seeds must be a list of ints, got {type(seeds).__name__} {seeds!r}")
    scalars = {k: data[k] for k in SCALAR_KEYS if k in data}
    return BenchConfig(name=data.get("name", default_name), scenarios=tuple(scenarios), policies=tuple(policies),
                       seeds=tuple(seeds), **scalars)


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
