"""Checks a study passes in the parent before its first run, beyond the config's own validation:
policy × reward compatibility, learned CTR models loaded and matched to their world, the memory of
the parallel workers, and a rough plan (runs, impressions, time) for ``--dry-run``."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from experiments.runner.kinds import step_kind
from experiments.runner.run import BERNOULLI_REWARDS, TruthWithheld, _vector_env
from experiments.runner.spec import BenchConfig

PROBE_REWARD = 2.5
"""A reward outside [0, 1] fed to each policy of a scenario whose rewards are not clicks."""


def _probe_env(config: BenchConfig, i: int, batch: int = 2):
    sc = config.scenarios[i]
    steps, _ = config.size(i)
    return _vector_env(sc.env, sc.env_kwargs(config.seeds[0], steps), batch, None, None, sc.generator_dir)


def check_rewards(config: BenchConfig) -> None:
    """Every policy can learn from its scenarios' rewards: on a scenario whose reward is not a
    click or conversion (``reward = "revenue"``), each policy gets one probe update with reward
    2.5; one that rejects it (Beta-Bernoulli Thompson, KL-UCB, EXP3, hybrid) is reported now."""
    for i, sc in enumerate(config.scenarios):
        reward = getattr(sc.env_config(config.seeds[0], config.size(i)[0]), "reward", None)
        if reward is None or reward in BERNOULLI_REWARDS:
            continue
        env = _probe_env(config, i)
        obs, info = env.reset(seed=0)
        for j in config.policy_indices(i):
            spec = config.policies[j]
            policy = spec.make()
            if callable(getattr(policy, "learn", None)):
                continue  # RL agents learn any real reward
            policy.reset(int(env.single_action_space.n), seed=0)
            actions = policy.select(obs, info if policy.reference else TruthWithheld(spec.label))
            try:
                policy.update(obs, actions, np.full(env.num_envs, PROBE_REWARD))
            except (ValueError, TypeError) as err:
                raise ValueError(f"policies.{spec.label} cannot learn from scenarios.{sc.name}'s reward "
                                 f"{reward!r} (rewards beyond [0, 1]): {err}. Use reward = 'click' or "
                                 f"'conversion' there, or leave this policy out of the scenario") from None


def check_ctr_models(config: BenchConfig) -> None:
    """A ``ctr_model`` given as a saved model's path is loaded now and matched to its world."""
    from pathlib import Path

    for i, sc in enumerate(config.scenarios):
        if sc.ctr_model is None or not Path(sc.ctr_model).exists():
            continue  # "NAME:IMPRESSIONS" models are trained at set-up in each worker
        env_config = sc.env_config(config.seeds[0], config.size(i)[0])
        from adsim.ctr import LearnedCTR

        try:
            LearnedCTR.from_arg(env_config, sc.ctr_model).check_config(env_config)
        except Exception as err:  # noqa: BLE001 - any failure to load is a bad path
            raise ValueError(f"scenarios.{sc.name}.ctr_model == {sc.ctr_model!r} is not a CTR model of "
                             f"this world: {type(err).__name__}: {err}") from None


def worker_bytes(config: BenchConfig, stack: bool = True) -> int:
    """Peak bytes one worker needs for the largest unit of the study: the interpreter with its
    libraries (:data:`adsim.memory.WORKER_BYTES`), the scenario's world and its (stacked) run (an
    OPE study's unit is one seed's world: never stacked; its logs' size is checked by the config)."""
    from adsim.memory import WORKER_BYTES, run_bytes, world_bytes

    need, n_seeds = 0, len(config.seeds) if stack and config.ope is None else 1
    for i, sc in enumerate(config.scenarios):
        steps, batch = config.size(i)
        env_cfg = sc.env_config(config.seeds[0], steps)
        world = getattr(env_cfg, "world", None)
        need = max(need, (world_bytes(world) if world is not None else 0) * n_seeds
                   + run_bytes(env_cfg, steps, batch, n_seeds))
    return WORKER_BYTES + need


def check_workers(config: BenchConfig, workers: int, units: int, stack: bool = True) -> None:
    """The workers that will run at once (``min(workers, units)``), each holding the study's largest
    unit, fit in the memory limit together with the parent; else a ``ValueError`` naming ``--jobs``."""
    from adsim.memory import WORKER_BYTES, check_memory

    busy = max(1, min(workers, units))
    per = worker_bytes(config, stack)
    check_memory(busy * per + (WORKER_BYTES if busy > 1 else 0),
                 f"--jobs == {workers} ({busy} workers at once, each about {per / 2**30:.1f} GiB)",
                 "--jobs (or the study's sizes)")


def check_all(config: BenchConfig, workers: int = 1, units: int = 1, stack: bool = True) -> None:
    check_rewards(config)
    check_ctr_models(config)
    check_workers(config, workers, units, stack)


def plan(config: BenchConfig, workers: int, units: int, pilot_steps: int = 3) -> dict[str, Any]:
    """Runs, impressions and an estimate of the wall time: each scenario's env is stepped
    ``pilot_steps`` times at its batch size with random actions (env time only; policies and
    RL training add their own), scaled to its runs and divided by the workers."""
    rows, seconds = [], 0.0
    for i, sc in enumerate(config.scenarios):
        steps, batch = config.size(i)
        runs = len(config.seeds) * len(config.policy_indices(i))
        env = _probe_env(config, i, batch)
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        kind = step_kind(env)
        for _ in range(min(pilot_steps, steps)):
            env.step(kind.random_actions(rng))
        per_step = (time.perf_counter() - t0) / min(pilot_steps, steps)
        seconds += per_step * steps * runs
        rows.append({"scenario": sc.name, "env": sc.env, "runs": runs, "impressions_per_run": steps * batch})
    return {"runs": sum(r["runs"] for r in rows), "units": units, "workers": workers,
            "impressions": sum(r["runs"] * r["impressions_per_run"] for r in rows), "scenarios": rows,
            "estimated_seconds": round(seconds / max(1, min(workers, units)), 1),
            "estimate": "env stepping only (policies and RL training add their own time)"}
