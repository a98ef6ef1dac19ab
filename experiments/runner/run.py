"""One run: a policy on one scenario seed, with common random numbers and delayed feedback.

Every policy of a scenario seed faces the same hidden world (``WorldConfig.seed`` = scenario seed)
and the same request streams (slot i reads the i-th child stream of ``SeedSequence(seed)``), so the same users,
contexts, candidates and click uniforms whatever it does (``adsim.rng``). A run steps the native
vector env ``steps`` times with ``batch_size`` concurrent requests per step (``BenchConfig.size``); the feedback of batch
t reaches the policy (``update``) before it chooses batch ``t + delay``.

Per step the run records (vectorised over the batch, summed in a fixed order, so a run's numbers
do not depend on where it executes): reward, expected reward of the chosen creatives, pseudo-regret
against the per-request oracle (``info["regret"]``: the best of the request's K candidates, the
generator's in a generated scenario, ``ScenarioSpec.generator``), clicks, true click probability of the chosen
creatives, and the wall time spent in the policy's ``select`` and ``update``. On a slate env
(``adsim/SlateSelection-v0``: the action space has a ``slate_size`` L) the policy is reset with
``slate_size=L``, chooses (N, L) slates and learns from the clicks per position (``info["clicks"]``,
or ``info["slate_click_probs"]`` with expected feedback); a request is a page, its reward and
"true CTR" its clicks and expected clicks, the random baseline a uniformly random slate's expected
clicks (``ClickModel.random_clicks``), and the shown candidates' counts include every position. In pool mode it also
counts choices per arm and sums each arm's true expected reward over all requests of the run,
from which the fixed-arm regret and the Lai–Robbins bound follow (see :func:`fixed_arm_regret`).

Several seeds of one (scenario, policy) run as one stacked run (:func:`run_stack`): G groups of
``batch_size`` sub-envs in one vector env, each group its own world and streams
(``adsim.stacking.StackedCore``), and one policy object with its state batched over the
groups (``Policy.reset(group_seeds=…)``). Each group's numbers equal the seed's run alone, bit for
bit; only the wall time changes.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

import adsim  # noqa: F401  (registers the envs)
from experiments.runner.kinds import AUCTION_EXTRA, step_kind
from experiments.runner.spec import BenchConfig
from experiments.runner.stats import lai_robbins_constant
from experiments.threads import one_blas_thread

BERNOULLI_REWARDS = ("click", "conversion")


class Job(NamedTuple):
    """One (scenario, policy, seed) run of a benchmark."""

    config: BenchConfig
    scenario: int  # index into config.scenarios
    policy: int  # index into config.policies
    seed: int  # scenario seed
    artifacts: str | None = None  # folder for what a run leaves besides metrics (RL: models, SB3 logs)

    @property
    def name(self) -> str:
        """``scenario/policy/seed``: how outputs and messages name the run."""
        return f"{self.config.scenarios[self.scenario].name}/{self.config.policies[self.policy].label}/seed{self.seed}"


class TruthWithheld(Mapping):
    """What a policy that is not a reference gets instead of the env's ``info`` (the ground truth):
    reading it raises an error saying why."""

    def __init__(self, policy: str):
        self.policy = policy

    def _refuse(self, *_: Any):
        raise PermissionError(f"policy {self.policy!r} read the env's info, which holds the ground truth (true click "
                              f"probabilities); only reference policies (class attribute reference = True, like "
                              f"the oracle) are given it. Learn from obs and rewards instead.")

    __getitem__ = __contains__ = _refuse

    def __iter__(self):
        self._refuse()

    def __len__(self) -> int:
        self._refuse()


class RunResult(NamedTuple):
    """Per-bucket cumulative metrics of one run (arrays of shape (n_buckets,) unless noted)."""

    step: np.ndarray  # int: batches done
    impressions: np.ndarray  # int
    cum_reward: np.ndarray
    cum_expected_reward: np.ndarray
    cum_regret: np.ndarray
    cum_fixed_regret: np.ndarray  # NaN outside pool mode
    lai_robbins: np.ndarray  # NaN unless pool mode, Bernoulli reward, no fatigue
    cum_clicks: np.ndarray
    bucket_ctr: np.ndarray
    bucket_true_ctr: np.ndarray
    policy_seconds: np.ndarray
    arm_means: np.ndarray  # (K,) population-mean expected reward per arm; empty outside pool mode
    cum_episodes: np.ndarray  # episodes (sessions) finished
    cum_episode_return: np.ndarray  # summed return of the finished episodes
    cum_random_regret: np.ndarray  # the regret a uniformly random choice would have had on the same requests
    # auction runs (adsim/AdAuction-v0; NaN, and day_spend empty, for other envs):
    cum_spend: np.ndarray  # money spent
    cum_wins: np.ndarray  # auctions won
    cum_regret_allocation: np.ndarray  # the parts of cum_regret (adsim.auction), summing to it
    cum_regret_estimation: np.ndarray
    cum_regret_overbid: np.ndarray
    cum_regret_underbid: np.ndarray
    day_spend: np.ndarray  # (horizon,) mean cumulative spend of a campaign-day (a sub-env's episode) after each request of the day


def bucket_steps(steps: int, n_buckets: int, spacing: str) -> np.ndarray:
    """Sorted distinct steps (1-based batch counts) at which metrics are recorded; the last is ``steps``."""
    if spacing == "log":
        raw = np.geomspace(1, steps, n_buckets)
    else:
        raw = np.linspace(steps / n_buckets, steps, n_buckets)
    points = np.unique(np.clip(np.round(raw).astype(np.int64), 1, steps))
    return np.union1d(points, [steps])


def policy_seed(seed: int, label: str) -> int:
    """The policy's own random stream under scenario seed ``seed``, from its label (not its position
    in the config), separate from the scenario's exogenous streams."""
    return int(np.random.SeedSequence([seed, 0x706F6C, zlib.crc32(label.encode())]).generate_state(1)[0])


def training_seed(seed: int) -> int:
    """Stream seed an RL agent trains on under scenario seed ``seed``: the same world, other users
    and coin flips than the evaluated run (no test-on-train)."""
    hi, lo = np.random.SeedSequence([seed, 0x747261696E]).generate_state(2)
    return (int(hi) << 32) | int(lo)


@functools.lru_cache(maxsize=4)
def _vector_env(env_id: str, kwargs: tuple[tuple[str, Any], ...], batch: int, ctr_model: str | None = None,
                world_seeds: tuple[int, ...] | None = None, generator: str | None = None) -> gym.vector.VectorEnv:
    """One vector env per (scenario config, batch, stacked world seeds) and process, reused by the
    runs (policies) on the same worlds; ``generator``: the directory of the generator writing its
    candidates (``ScenarioSpec.generator_dir``).

    ``reset(seed=…)`` re-seeds every stream and forgets the CTR estimate, the episode count and
    the fatigue memory, so a reused env behaves exactly like a fresh one (tested); reusing it
    saves building the creative pools and calibrating β0 (and training a ``ctr_model``) per policy.
    """
    extra = {} if ctr_model is None else {"ctr_model": ctr_model}
    if world_seeds is not None:
        extra["world_seeds"] = world_seeds
    if generator is not None:
        extra["generator"] = generator
    return gym.make_vec(env_id, num_envs=batch, vectorization_mode="vector_entry_point", **dict(kwargs), **extra)


def scenario_env(job: Job, world_seeds: tuple[int, ...] | None = None) -> gym.vector.VectorEnv:
    """The (cached) vector env of a job's scenario seed; G stacked seeds when ``world_seeds`` is given."""
    cfg = job.config
    scenario = cfg.scenarios[job.scenario]
    steps, batch = cfg.size(job.scenario)
    G = 1 if world_seeds is None else len(world_seeds)
    return _vector_env(scenario.env, scenario.env_kwargs(job.seed, steps), G * batch, scenario.ctr_model,
                       world_seeds, scenario.generator_dir)


def stackable(job) -> bool:
    """Whether a job can run stacked with other seeds: a benchmark run whose policy stacks (all but
    the RL agents) and whose env takes ``world_seeds`` (a capability check). Jobs of other study
    kinds (an OPE log) never stack."""
    if not isinstance(job, Job):
        return False
    return bool(job.config.policies[job.policy].make().stackable) and job.config.scenarios[job.scenario].stackable


def uses_generator(job) -> bool:
    """Whether a job's candidates are written by a generator (a generated scenario)."""
    return isinstance(job, Job) and job.config.scenarios[job.scenario].generator_dir is not None


def generator_worlds(jobs: Sequence) -> list[tuple[str, Any]]:
    """(generator directory, env config) for each distinct world the generated scenarios of ``jobs``
    serve, in job order: what :func:`adsim.generator.scenario.warm_generator` warms before the runs."""
    worlds: dict[tuple, tuple[str, Any]] = {}
    for job in jobs:
        if uses_generator(job):
            scenario = job.config.scenarios[job.scenario]
            config = scenario.env_config(job.seed, job.config.size(job.scenario)[0])
            worlds.setdefault((scenario.generator_dir, config.world, config.n_candidates),
                              (scenario.generator_dir, config))
    return list(worlds.values())


def run_unit(jobs: Sequence) -> list:
    """Run one unit of work, what the backends send to a worker: stacked benchmark runs
    (:func:`run_stack`), or jobs of another study kind, each by its own ``run()`` (an OPE log,
    ``experiments.ope.study.OpeJob``; such a job also names its ``result_type``)."""
    if isinstance(jobs[0], Job):
        return run_stack(jobs)
    return [job.run() for job in jobs]


def _train(policy, env, job: Job) -> None:
    """RL agents: "train for train_steps, then evaluate", on other streams of the same world; SB3's
    logs and the trained model go to the job's artifacts folder."""
    if job.artifacts is not None:
        folder = Path(job.artifacts) / job.name.replace("/", "__")
        if hasattr(policy, "log_dir"):
            policy.log_dir = str(folder)
    policy.learn(env, scenario_seed=training_seed(job.seed))
    if job.artifacts is not None and callable(getattr(policy, "save", None)):
        policy.save(folder / "model.zip")


def _simulate(jobs: Sequence[Job]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, Any]:
    """Step the env for G jobs that differ only in their seed, stacked side by side (G = 1: one job).

    Returns per-step sums (G, steps) per metric, per-step arm counts (G, steps, K), arm reward
    sums (G, K) and the env's config. Group g's numbers equal those of the job run alone, bit for
    bit (tested).
    """
    job, G = jobs[0], len(jobs)
    cfg, seeds = job.config, [j.seed for j in jobs]
    if any((j.config, j.scenario, j.policy) != (cfg, job.scenario, job.policy) for j in jobs):
        raise ValueError("stacked jobs must share config, scenario and policy; they differ only in the seed")
    spec = cfg.policies[job.policy]
    steps, batch = cfg.size(job.scenario)
    policy = spec.make()
    env = scenario_env(job) if G == 1 else scenario_env(job, tuple(seeds))
    kind = step_kind(env)
    K = int(getattr(env, "n_candidates", None) or env.single_action_space.n)
    if G == 1:
        policy.reset(K, seed=policy_seed(job.seed, spec.label), **kind.reset_kwargs)
        if callable(getattr(policy, "learn", None)):
            _train(policy, env, job)
        obs, info = env.reset(seed=cfg.stream_seed(job.seed))
    else:
        policy.reset(K, group_seeds=[policy_seed(s, spec.label) for s in seeds], **kind.reset_kwargs)
        obs, info = env.reset(seed=[cfg.stream_seed(s) for s in seeds])
    sees_truth = bool(policy.reference)
    realised = cfg.scenarios[job.scenario].feedback == "realised"
    withheld = TruthWithheld(spec.label)
    keys = ("reward", "expected", "regret", "random_regret", "clicks", "true_ctr", "seconds", "episodes",
            "episode_return", *kind.extra)
    per_step = {k: np.zeros((G, steps)) for k in keys}
    counts = np.zeros((G, steps, K), dtype=np.int64)
    arm_sums = None
    group_arm = np.repeat(np.arange(G) * K, batch)[:, None]
    ret = np.zeros(G * batch)
    pending: deque = deque()

    def total(values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).reshape(G, batch).sum(axis=1)

    for t in range(steps):
        t0 = time.perf_counter()
        actions = kind.select(policy, obs, info if sees_truth else withheld)
        seconds = time.perf_counter() - t0
        (next_obs, reward, terminated, truncated, info), n = kind.step(actions, info, realised)
        pending.append((obs, actions, n.feedback))
        if len(pending) >= cfg.delay:
            t0 = time.perf_counter()
            kind.learn(policy, *pending.popleft())
            seconds += time.perf_counter() - t0
        done = np.asarray(terminated) | np.asarray(truncated)
        ret += reward
        per_step["reward"][:, t] = total(reward)
        per_step["expected"][:, t] = total(info["reward_expected"])
        per_step["regret"][:, t] = total(info["regret"])
        # the best action's value is regret + the chosen one's
        per_step["random_regret"][:, t] = total(info["regret"] + info["reward_expected"] - n.random_value)
        per_step["clicks"][:, t] = total(n.clicks)
        per_step["true_ctr"][:, t] = total(n.true_ctr)
        for name, values in n.extra.items():
            per_step[name][:, t] = total(values)
        per_step["seconds"][:, t] = seconds / G  # the batch's policy time, shared equally
        per_step["episodes"][:, t] = total(done)
        per_step["episode_return"][:, t] = total(np.where(done, ret, 0.0))
        ret[done] = 0.0
        counts[:, t] = np.bincount((group_arm + n.shown).ravel(), minlength=G * K).reshape(G, K)
        if n.arm_expected is not None:
            arm_sums = n.arm_expected.reshape(G, batch, K).sum(axis=1) + (0.0 if arm_sums is None else arm_sums)
        obs = next_obs
    return per_step, counts, arm_sums, env.config


def fixed_arm_regret(counts: np.ndarray, arm_means: np.ndarray) -> np.ndarray:
    """Per-step fixed-arm pseudo-regret ``Σ_k n_k(t) (μ* − μ_k)``.

    Args:
        counts: (steps, K) how often each arm was chosen at each step.
        arm_means: (K,) population-mean expected reward of each arm.

    Returns:
        (steps,) regret against always showing the best fixed arm, summed over the batch.
    """
    return counts @ (arm_means.max() - arm_means)


def run_job(job: Job) -> RunResult:
    """Run one policy on one scenario seed and return its bucketed cumulative metrics."""
    return run_stack([job])[0]


def run_stack(jobs: Sequence[Job]) -> list[RunResult]:
    """Run jobs that differ only in their scenario seed as one stacked run (see :func:`_simulate`);
    return each job's metrics, identical to :func:`run_job` on it alone."""
    cfg, job = jobs[0].config, jobs[0]
    steps, batch = cfg.size(job.scenario)
    with one_blas_thread(None):  # identical BLAS results wherever the job runs
        per_step, counts, arm_sums, env_config = _simulate(jobs)
    return [_result(env_config, steps, batch, cfg, {k: v[g] for k, v in per_step.items()}, counts[g],
                    None if arm_sums is None else arm_sums[g]) for g in range(len(jobs))]


def _result(env_config: Any, steps: int, batch: int, cfg: BenchConfig, per_step: dict[str, np.ndarray],
            counts: np.ndarray, arm_sums: np.ndarray | None) -> RunResult:
    """Bucketed cumulative metrics of one run from its per-step sums (``arm_sums`` None: a slate or
    auction run, whose fixed-arm regret and Lai–Robbins bound are not defined)."""
    at = bucket_steps(steps, cfg.n_buckets, cfg.buckets) - 1
    cum = {k: np.cumsum(v)[at] for k, v in per_step.items()}
    imps = (at + 1) * batch
    prev = np.concatenate([[0], imps[:-1]])
    window = imps - prev

    def bucket(values: np.ndarray) -> np.ndarray:
        return np.diff(np.concatenate([[0.0], values])) / window

    nan = np.full(at.shape, np.nan)
    fixed, bound, arm_means = nan, nan, np.empty(0)
    if arm_sums is not None and getattr(env_config, "mode", None) == "pool":  # persistent arms: the best fixed arm is defined
        arm_means = arm_sums / (steps * batch)
        if getattr(env_config, "fatigue_strength", None) == 0:  # with fatigue the arms' means depend on past actions
            fixed = np.cumsum(fixed_arm_regret(counts, arm_means))[at]
            if getattr(env_config, "reward", None) in BERNOULLI_REWARDS:
                bound = lai_robbins_constant(arm_means) * np.log(imps)
    return RunResult(step=at + 1, impressions=imps, cum_reward=cum["reward"], cum_expected_reward=cum["expected"],
                     cum_regret=cum["regret"], cum_fixed_regret=fixed, lai_robbins=bound,
                     cum_clicks=cum["clicks"], bucket_ctr=bucket(cum["clicks"]),
                     bucket_true_ctr=bucket(cum["true_ctr"]), policy_seconds=cum["seconds"], arm_means=arm_means,
                     cum_episodes=cum["episodes"], cum_episode_return=cum["episode_return"],
                     cum_random_regret=cum["random_regret"], day_spend=_day_spend(env_config, per_step, batch),
                     **{f"cum_{k}": cum.get(k, nan) for k in AUCTION_EXTRA})


def _day_spend(env_config: Any, per_step: dict[str, np.ndarray], batch: int) -> np.ndarray:
    """(horizon,) an auction run's mean cumulative spend per campaign-day after each of its requests:
    the per-step spends of the run's whole days folded by step of the day, averaged over days and
    sub-envs (every sub-env starts its day together); empty for other runs or runs shorter than a day."""
    H = getattr(env_config, "horizon", None)
    if "spend" not in per_step or not H or per_step["spend"].shape[0] < H:
        return np.empty(0)
    days = per_step["spend"].shape[0] // H
    return np.cumsum(per_step["spend"][:days * H].reshape(days, H).mean(axis=0)) / batch
