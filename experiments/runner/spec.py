"""What a benchmark run is: scenarios × policies × scenario seeds, read from a TOML file.

A config file looks like::

    name = "smoke"           # optional; defaults to the file's stem
    seeds = [0, 1, 2]        # scenario seeds: world seed and request streams
    steps = 50               # vector-env steps (batches) per run
    batch_size = 16          # B concurrent requests per step
    delay = 1                # feedback of batch t reaches the policy before batch t + delay
    buckets = "log"          # where metrics are recorded: "log" or "linear" steps
    n_buckets = 20

    [scenarios.pool]         # any EnvConfig / WorldConfig field, plus "preset", and
    preset = "default"       # "steps" / "batch_size" to override the run size here
    campaign = 0
    batch_size = 64

    [policies.random]        # the table name is the label; "policy" names the registered
    [policies.eps_fixed]     # policy when it differs from the label; other keys are
    policy = "epsilon_greedy"  # hyperparameters passed to agents.registry.make_policy
    epsilon = 0.1

Everything is validated when the config is built (:func:`parse_config`), before anything runs:
unknown keys, unknown policies, bad hyperparameters and bad env values raise ``ValueError`` or
``TypeError`` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adsim.config import PRESETS, EnvConfig, WorldConfig, make_config
from adsim.validation import check_choice, check_int
from agents.base import Policy
from agents.registry import make_policy

TOP_KEYS = ("name", "seeds", "steps", "batch_size", "delay", "buckets", "n_buckets", "scenarios", "policies")
BUCKETS = ("log", "linear")
RUNNER_OWNED = ("seed", "horizon", "world")
"""Env keys a scenario may not set: the runner sets the world seed to the scenario seed and the
horizon to ``steps`` (one episode per run)."""
MAX_BATCH = 1 << 20
"""Most concurrent requests per step."""


SIZE_KEYS = ("steps", "batch_size")
"""Run-size keys a scenario may override."""
EXTRA_KEYS = ("ctr_model", "policies")
"""Scenario keys that are not env fields: the env's learned CTR model, and a subset of policies."""


def scenario_keys() -> tuple[str, ...]:
    """Keys a ``[scenarios.*]`` table may hold."""
    env = [f.name for f in dataclasses.fields(EnvConfig)]
    world = [f.name for f in dataclasses.fields(WorldConfig)]
    return ("preset", *SIZE_KEYS, *EXTRA_KEYS, *sorted(k for k in env + world if k not in RUNNER_OWNED))


@dataclass(frozen=True)
class ScenarioSpec:
    """One env scenario: a preset plus overrides; the runner adds world seed and horizon."""

    name: str
    """Label used in outputs (the TOML table name)."""
    preset: str = "default"
    """An ``adsim.config.PRESETS`` name."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """``EnvConfig`` / ``WorldConfig`` fields; in pool mode ``campaign`` defaults to 0."""
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

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"scenario name == {self.name!r}, must be a non-empty str")
        check_choice(f"scenarios.{self.name}.preset", self.preset, tuple(PRESETS))
        for key in self.overrides:
            if key in RUNNER_OWNED:
                raise ValueError(f"scenarios.{self.name}.{key} is set by the runner (world seed = scenario "
                                 f"seed, horizon = steps); remove it")
            check_choice(f"scenarios.{self.name} key", key, scenario_keys()[1 + len(SIZE_KEYS) + len(EXTRA_KEYS):])
        if self.ctr_model is not None:
            _check_ctr_model(f"scenarios.{self.name}.ctr_model", self.ctr_model)
        if self.policies is not None and (not isinstance(self.policies, tuple) or not self.policies
                                          or not all(isinstance(p, str) for p in self.policies)):
            raise TypeError(f"scenarios.{self.name}.policies must be a non-empty list of policy labels, "
                            f"got {self.policies!r}")
        if self.steps is not None:
            check_int(f"scenarios.{self.name}.steps", self.steps, 1, 10**7)
        if self.batch_size is not None:
            check_int(f"scenarios.{self.name}.batch_size", self.batch_size, 1, MAX_BATCH)
        if self.mode == "pool" and "campaign" not in self.overrides:
            # pool arms must mean the same creatives in every slot: fix the campaign
            object.__setattr__(self, "overrides", {**self.overrides, "campaign": 0})

    @property
    def mode(self) -> str:
        return self.overrides.get("mode", PRESETS[self.preset].get("mode", "pool"))

    def env_config(self, seed: int, steps: int) -> EnvConfig:
        """The resolved env config of scenario seed ``seed`` (validated by ``adsim.config``)."""
        try:
            return make_config(self.preset, **self.overrides, seed=seed, horizon=steps)
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
    """A registered policy with hyperparameters, under a label."""

    label: str
    """Name in outputs (the TOML table name)."""
    policy: str
    """Registered policy name (``agents.registry.POLICIES``)."""
    hyper: dict[str, Any] = field(default_factory=dict)
    """Hyperparameters passed to ``make_policy``."""

    def __post_init__(self):
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"policy label == {self.label!r}, must be a non-empty str")
        self.make()  # unknown policy / hyperparameter / bad value raise here

    def make(self) -> Policy:
        try:
            return make_policy(self.policy, **self.hyper)
        except (TypeError, ValueError) as err:
            raise type(err)(f"policies.{self.label}: {err}") from None


@dataclass(frozen=True)
class BenchConfig:
    """A whole benchmark: every scenario × every policy × every seed."""

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

    def __post_init__(self):
        check_int("steps", self.steps, 1, 10**7)
        check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        check_int("delay", self.delay, 1, 10**7)
        check_choice("buckets", self.buckets, BUCKETS)
        check_int("n_buckets", self.n_buckets, 1, 10**5)
        if not isinstance(self.seeds, tuple) or not self.seeds:
            raise ValueError(f"seeds == {self.seeds!r}, must be a non-empty list of ints >= 0")
        for s in self.seeds:
            check_int("seeds[]", s, 0, 2**40)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds == {list(self.seeds)}, must be distinct")
        for kind, items in (("scenarios", self.scenarios), ("policies", self.policies)):
            if not items:
                raise ValueError(f"{kind} is empty; define at least one [{kind}.<name>] table")
        labels = [p.label for p in self.policies]
        for i, sc in enumerate(self.scenarios):
            for label in sc.policies or ():
                check_choice(f"scenarios.{sc.name}.policies entry", label, tuple(labels))
            steps, _ = self.size(i)
            if self.delay > steps:
                raise ValueError(f"delay == {self.delay}, must be <= steps ({steps} in scenario {sc.name!r})")
            sc.env_config(self.seeds[0], steps)  # every env value validated now

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
            scenarios[sc.name] = {"preset": sc.preset, "overrides": sc.overrides, "steps": steps, "batch_size": batch,
                                  "impressions_per_run": steps * batch, "resolved": env,
                                  "ctr_model": sc.ctr_model,
                                  "policies": [self.policies[j].label for j in self.policy_indices(i)]}
        return {
            "name": self.name, "seeds": list(self.seeds), "steps": self.steps, "batch_size": self.batch_size,
            "delay": self.delay,
            "buckets": self.buckets, "n_buckets": self.n_buckets, "scenarios": scenarios,
            "policies": {p.label: {"policy": p.policy, **p.hyper} for p in self.policies},
            "stream_seeds": "slot i of scenario seed s reads the i-th child stream of SeedSequence(s)",
        }


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{where} must be a table, got {type(value).__name__} {value!r}")
    return value


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
    scalars = {k: data[k] for k in ("steps", "batch_size", "delay", "buckets", "n_buckets") if k in data}
    return BenchConfig(name=data.get("name", default_name), scenarios=tuple(scenarios), policies=tuple(policies),
                       seeds=tuple(seeds), **scalars)


def load_config(path: str | Path) -> BenchConfig:
    """Read and validate a TOML benchmark config."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    with path.open("rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config file {str(path)!r} is not valid TOML: {err}") from None
    return parse_config(data, default_name=path.stem)
