"""The RL-vs-bandits study: bandits and SB3 agents on CreativeSelection and AdSession.

A study = environments × policies × scenario seeds (``experiments/configs/rl_vs_bandits.toml``).
Every run steps one native vector env through an :class:`experiments.recorder.EpisodeRecorder`
for the env's ``steps`` impressions. A bandit acts and learns online the whole time; an RL policy
first trains for its ``train_steps`` (SB3, on the same recorded env, so training counts as steps
of the learning curve) and then acts greedily for the rest. Scenario seed ``s`` gives the env
streams for every policy (common random numbers): the vector env is reset with ``s``, so sub-env i
runs the i-th child stream of ``SeedSequence(s)`` and the streams of different scenario seeds never
overlap. The policy's own seed is ``s + policy_seed_offset``.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adsim.validation import check_choice, check_int

ENV_IDS = ("adsim/CreativeSelection-v0", "adsim/AdSession-v0")


@dataclass(frozen=True)
class EnvSpec:
    """One environment of the study."""

    name: str
    id: str
    num_envs: int = 16
    steps: int = 12_000
    """Impressions per run (vector steps × num_envs), training included."""
    config: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``gymnasium.make_vec`` (``preset`` and config overrides)."""

    def __post_init__(self):
        check_choice("env id", self.id, ENV_IDS)
        check_int("num_envs", self.num_envs, 1, 4096)
        check_int("steps", self.steps, self.num_envs)


@dataclass(frozen=True)
class PolicySpec:
    """One policy entry: a registry name (or a study fallback), hyperparameters, a display label."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    envs: tuple[str, ...] = ()
    """Names of the envs this entry runs on (empty: all)."""

    def __post_init__(self):
        object.__setattr__(self, "envs", tuple(self.envs))

    def runs_on(self, env: str) -> bool:
        return not self.envs or env in self.envs

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class StudyConfig:
    envs: tuple[EnvSpec, ...]
    policies: tuple[PolicySpec, ...]
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    policy_seed_offset: int = 1000
    bins: int = 12
    """Buckets of env steps for learning curves."""
    final_fraction: float = 0.25
    """Share of the budget at the end over which final metrics are averaged."""
    workers: int = 2

    def __post_init__(self):
        if len(self.seeds) < 1 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds == {self.seeds!r}, must be distinct and non-empty")
        check_int("bins", self.bins, 2, 1000)
        check_int("workers", self.workers, 1, 64)
        if not 0.0 < self.final_fraction <= 1.0:
            raise ValueError(f"final_fraction == {self.final_fraction}, must be in (0, 1]")
        names = [e.name for e in self.envs]
        for pol in self.policies:
            unknown = [e for e in pol.envs if e not in names]
            if unknown:
                raise ValueError(f"policy {pol.display!r}: unknown env {unknown[0]!r}; allowed: {names}")
        for env in self.envs:
            labels = [p.display for p in self.policies if p.runs_on(env.name)]
            dup = sorted({x for x in labels if labels.count(x) > 1})
            if dup:
                raise ValueError(f"env {env.name!r}: two policy entries labelled {dup[0]!r}; give each a label")
            for pol in self.policies:
                if not pol.runs_on(env.name):
                    continue
                train = pol.params.get("train_steps", 0)
                if train >= env.steps:
                    raise ValueError(f"policy {pol.display!r}: train_steps == {train} must be < steps == "
                                     f"{env.steps} of env {env.name!r} (leave steps to evaluate)")
        for pol in self.policies:
            make_policy_for(pol)  # unknown names or hyperparameters fail here, not inside a worker

    @classmethod
    def from_toml(cls, path: str | Path) -> StudyConfig:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
        envs = tuple(EnvSpec(name=k, **v) for k, v in raw.pop("envs", {}).items())
        policies = tuple(PolicySpec(**p) for p in raw.pop("policies", []))
        if not envs or not policies:
            raise ValueError(f"{path}: needs at least one [envs.<name>] table and one [[policies]] entry")
        return cls(envs=envs, policies=policies, **{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def make_policy_for(spec: PolicySpec):
    """The registry's policy of that name (``agents.registry``)."""
    from agents.registry import make_policy

    return make_policy(spec.name, **spec.params)


def run_one(env: EnvSpec, policy: PolicySpec, seed: int, policy_seed: int) -> dict[str, Any]:
    """One run: returns the recorder's arrays and how many steps were spent training."""
    import gymnasium as gym
    import torch

    import adsim  # noqa: F401  (registers the envs)
    from experiments.recorder import EpisodeRecorder

    torch.set_num_threads(1)
    rec = EpisodeRecorder(gym.make_vec(env.id, num_envs=env.num_envs, vectorization_mode="vector_entry_point",
                                       **env.config))
    pol = make_policy_for(policy)
    pol.reset(rec.single_action_space.n, seed=policy_seed)
    learn = getattr(pol, "learn", None)
    env_seed = seed
    if learn is not None:  # "train for N steps, then evaluate": training runs on the recorded env
        trained = learn(rec, scenario_seed=env_seed)
        obs, info = rec.last_obs, rec.last_info
    else:
        trained = 0
        obs, info = rec.reset(seed=env_seed)
    while rec.steps < env.steps:
        actions = pol.select(obs, info)
        nxt, reward, _, _, info = rec.step(actions)
        pol.update(obs, actions, reward)
        obs = nxt
    return {"env": env.name, "policy": policy.display, "seed": seed, "trained": trained, **rec.arrays()}


def run_study(cfg: StudyConfig, progress: bool = True) -> list[dict[str, Any]]:
    """Every (env, policy, seed) run, in parallel over ``cfg.workers`` processes."""
    from tqdm import tqdm

    jobs = [(e, p, s, s + cfg.policy_seed_offset) for e in cfg.envs for p in cfg.policies if p.runs_on(e.name)
            for s in cfg.seeds]
    if cfg.workers == 1:
        return [run_one(*j) for j in tqdm(jobs, disable=not progress, desc="runs")]
    with ProcessPoolExecutor(cfg.workers) as pool:
        futures = [pool.submit(run_one, *j) for j in jobs]
        return [f.result() for f in tqdm(futures, disable=not progress, desc="runs")]


def config_dict(cfg: StudyConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


__all__ = ["EnvSpec", "PolicySpec", "StudyConfig", "run_one", "run_study", "make_policy_for"]
