"""Stacked scenario seeds: G independent scenarios side by side in one vector env, with the
policies' state batched over them. The contract is exactness: group g of a stacked run is, bit for
bit, the unstacked run of its seed — env (requests, outcomes, autoreset, fatigue, CTR estimate),
every built-in policy (state and random draws) and the runner's metrics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import adsim  # noqa: F401  (registers the envs)
from adsim.config import make_config
from adsim.stacking import StackedCore
from agents.base import Policy
from agents.registry import POLICIES
from experiments.runner import make_jobs, make_units, parse_config, run_jobs
from experiments.runner.report import TIMING_COLUMNS, metrics_frame

ENV_ID = "adsim/CreativeSelection-v0"
SMALL = {"n_users": 300, "n_products": 40, "n_campaigns": 4}
SEEDS = [3, 7, 11]
STACKABLE = [n for n in POLICIES if POLICIES[n].stackable]
SCENARIOS = {
    "personalized": dict(preset="personalized", **SMALL),
    "pool": dict(preset="easy", campaign=0, **SMALL),
    "pool_campaigns_fatigue": dict(preset="easy", fatigue_strength=0.5, **SMALL),  # campaigns change per episode
}


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(1):
        yield


def envs(scenario: dict, B: int, horizon: int = 25, **kw):
    """A stacked env of len(SEEDS) groups of B sub-envs, and the unstacked env of each seed."""
    cfg = make_config(**scenario, horizon=horizon)
    stacked = gym.make_vec(ENV_ID, num_envs=B * len(SEEDS), vectorization_mode="vector_entry_point", config=cfg,
                           world_seeds=SEEDS, **kw)
    alone = [gym.make_vec(ENV_ID, num_envs=B, vectorization_mode="vector_entry_point", config=cfg.replace(seed=s), **kw)
             for s in SEEDS]
    return stacked, alone


def cat(dicts, key):
    return np.concatenate([d[key] for d in dicts])


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_stacked_env_is_each_seeds_env_side_by_side(scenario):
    B = 6
    stacked, alone = envs(SCENARIOS[scenario], B)
    obs, info = stacked.reset(seed=SEEDS)
    parts = [e.reset(seed=s) for e, s in zip(alone, SEEDS)]
    rng = np.random.default_rng(0)
    for t in range(60):  # crosses two autoresets (horizon 25)
        for k in obs:
            np.testing.assert_array_equal(obs[k], cat([p[0] for p in parts], k), err_msg=f"obs[{k}] at step {t}")
        for k in ("click_probs", "expected_reward", "regret"):
            np.testing.assert_array_equal(info[k], cat([p[-1] for p in parts], k), err_msg=f"info[{k}] at step {t}")
        a = rng.integers(0, 8, size=B * len(SEEDS))
        obs, reward, _, trunc, info = stacked.step(a)
        steps = [e.step(a[g * B:(g + 1) * B]) for g, e in enumerate(alone)]
        np.testing.assert_array_equal(reward, np.concatenate([s[1] for s in steps]))
        np.testing.assert_array_equal(trunc, np.concatenate([s[3] for s in steps]))
        parts = [(s[0], s[4]) for s in steps]
    assert stacked.observation_space.contains(obs)
    with pytest.raises(ValueError, match=r"got 2 seeds; pass one per stacked world \(3\), one per sub-env \(18\)"):
        stacked.reset(seed=[1, 2])
    # the worlds really differ: each group has its own β0 and users
    core = stacked.unwrapped.core
    assert isinstance(core, StackedCore) and len({c.beta0 for c in core.cores}) == len(SEEDS)
    assert not hasattr(core, "world") and len(core.worlds) == len(SEEDS)


def test_stacked_worlds_keep_their_ctr_estimates_apart():
    stacked, _ = envs(SCENARIOS["pool"], 4)
    stacked.reset(seed=SEEDS)
    estimators = [c.estimator for c in stacked.unwrapped.core.cores]
    assert len({id(e) for e in estimators}) == len(SEEDS)
    for _ in range(30):
        obs, *_ = stacked.step(np.zeros(12, dtype=np.int64))
    # group 0 and 1 showed arm 0 on different worlds: their estimates differ
    assert not np.array_equal(obs["ctr_estimate"][0], obs["ctr_estimate"][4])


def test_a_learned_ctr_model_is_built_per_world():
    from adsim.ctr.learned import LearnedCTR

    stacked, alone = envs(SCENARIOS["personalized"], 4, ctr_model="lr:1500")
    obs, _ = stacked.reset(seed=SEEDS)
    models = [c.estimator for c in stacked.unwrapped.core.cores]
    assert len(models) == len(SEEDS) and all(isinstance(m, LearnedCTR) for m in models)
    parts = [e.reset(seed=s)[0] for e, s in zip(alone, SEEDS)]
    np.testing.assert_array_equal(obs["ctr_estimate"], cat(parts, "ctr_estimate"))


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"world_seeds": [1, 2], "num_envs": 5}, ValueError, r"num_envs == 5 is not a multiple of len\(world_seeds\) == 2"),
    ({"world_seeds": [], "num_envs": 4}, ValueError, r"world_seeds == \[\]: must be a non-empty sequence of ints >= 0"),
    ({"world_seeds": [1, -2], "num_envs": 4}, ValueError, r"world_seeds == \[1, -2\].*\(-2 is not\)"),
    ({"world_seeds": 3, "num_envs": 4}, TypeError, r"world_seeds must be a sequence of ints >= 0, got int 3"),
    ({"world_seeds": [1, 2], "num_envs": 4, "estimator": [None]}, ValueError, r"got 1 estimators for 2 world_seeds"),
    ({"world_seeds": [1, 2], "num_envs": 4, "estimator": [None, None]}, TypeError, r"estimator= holds None"),
    ({"world_seeds": [1, 2], "num_envs": 0}, ValueError, r"num_envs == 0, must be an int >= 1"),
])
def test_bad_stacking_arguments_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        gym.make_vec(ENV_ID, vectorization_mode="vector_entry_point", **SMALL, **kwargs)


# ----------------------------------------------------------------------------- policies
def play(policy_name, scenario: dict, steps: int = 40, B: int = 6):
    """(stacked actions, per-seed actions) of a policy (a registry name or a factory), each learning
    from its own feedback."""
    make = POLICIES[policy_name] if isinstance(policy_name, str) else policy_name
    stacked, alone = envs(scenario, B)
    pol = make()
    pol.reset(8, group_seeds=[s + 100 for s in SEEDS])
    singles = [make() for _ in SEEDS]
    for p, s in zip(singles, SEEDS):
        p.reset(8, seed=s + 100)
    obs, info = stacked.reset(seed=SEEDS)
    parts = [e.reset(seed=s) for e, s in zip(alone, SEEDS)]
    got, want = [], []
    for _ in range(steps):
        a = pol.select(obs, info)
        singles_a = [p.select(o, i) for p, (o, i) in zip(singles, parts)]
        nobs, r, _, _, info = stacked.step(a)
        pol.update(obs, a, r)
        res = [e.step(x) for e, x in zip(alone, singles_a)]
        for p, (o, _), x, out in zip(singles, parts, singles_a, res):
            p.update(o, x, out[1])
        parts, obs = [(out[0], out[4]) for out in res], nobs
        got.append(a)
        want.append(np.concatenate(singles_a))
    return np.array(got), np.array(want), pol, singles, obs, parts


@pytest.mark.parametrize("name", STACKABLE)
@pytest.mark.parametrize("scenario", ["personalized", "pool_campaigns_fatigue"])
def test_a_stacked_policy_acts_exactly_like_one_policy_per_seed(name, scenario):
    got, want, pol, singles, obs, parts = play(name, SCENARIOS[scenario])
    np.testing.assert_array_equal(got, want)
    p = pol.probabilities(obs, {"expected_reward": cat([i for _, i in parts], "expected_reward")})
    q = np.concatenate([s.probabilities(o, i) for s, (o, i) in zip(singles, parts)])
    np.testing.assert_array_equal(p, q)
    # the groups act differently (their worlds differ), so a mix-up of groups could not pass unseen
    assert len({tuple(got[:, g * 6]) for g in range(len(SEEDS))}) > 1


def test_an_epsilon_mixture_stacks_like_the_policy_it_wraps():
    from agents.mixture import EpsilonMixture

    got, want, *_ = play(lambda: EpsilonMixture(POLICIES["linucb_shared"](), 0.2), SCENARIOS["personalized"])
    np.testing.assert_array_equal(got, want)
    assert not EpsilonMixture(POLICIES["ppo"](), 0.2).stackable


def test_stacked_groups_really_learn_apart():
    """UCB1's statistics of group g hold only group g's feedback: counts equal the unstacked ones."""
    _, _, pol, singles, *_ = play("ucb1", SCENARIOS["pool"], steps=30)
    stacked_counts = {(pol.index.group[r], pol.index.local[r]): pol.counts[r] for r in range(len(pol.index))}
    for g, single in enumerate(singles):
        for r in range(len(single.index)):
            np.testing.assert_array_equal(stacked_counts[(g, r)], single.counts[r])
    assert pol.counts.sum() == 30 * 6 * len(SEEDS)


def test_stacking_needs_a_policy_that_supports_it_and_whole_groups():
    class Plain(Policy):
        def probabilities(self, obs, info=None):
            return np.full((self.batch_size(obs), self.n_actions), 1 / self.n_actions)

    with pytest.raises(TypeError, match="cannot stack scenario seeds"):
        Plain().reset(8, group_seeds=[1, 2])
    with pytest.raises(TypeError, match="cannot stack scenario seeds"):
        POLICIES["ppo"]().reset(8, group_seeds=[1, 2])
    with pytest.raises(ValueError, match="pass seed= or group_seeds=, not both"):
        POLICIES["ucb1"]().reset(8, seed=1, group_seeds=[1, 2])
    pol = POLICIES["random"]()
    pol.reset(8, group_seeds=[1, 2])
    obs = {"ctr_estimate": np.zeros((5, 8))}
    with pytest.raises(ValueError, match="a batch of 5 requests cannot be split into the policy's 2 groups"):
        pol.select(obs)


# ----------------------------------------------------------------------------- runner
def bench_config():
    doc = {
        "seeds": [3, 4, 5], "steps": 15, "batch_size": 6, "delay": 2, "n_buckets": 5,
        "scenarios": {"pers": {"preset": "personalized", **SMALL},
                      "pool": {"preset": "easy", "campaign": 1, **SMALL},
                      "learned": {"preset": "personalized", **SMALL, "ctr_model": "lr:1500",
                                  "policies": ["greedy", "hybrid"]}},
        "policies": {n: {} for n in ("random", "oracle", "greedy", "epsilon_greedy", "ucb1", "thompson", "exp3",
                                     "linucb", "linucb_shared", "lin_ts", "hybrid")},
    }
    return parse_config(doc)


def test_the_runner_stacks_seeds_and_its_metrics_do_not_change():
    cfg = bench_config()
    jobs = make_jobs(cfg)
    units = make_units(jobs)
    assert len(units) == 11 + 11 + 2 and all(len(u) == 3 for u in units)
    assert all(len({jobs[i].seed for i in u}) == 3 and len({(jobs[i].scenario, jobs[i].policy) for i in u}) == 1
               for u in units)
    stacked = run_jobs(jobs, progress=False, stack=True)
    alone = run_jobs(jobs, progress=False, stack=False)
    def frame(results):
        return metrics_frame(jobs, results).drop(columns=list(TIMING_COLUMNS))

    pd.testing.assert_frame_equal(frame(stacked), frame(alone), check_exact=True)
    for a, b in zip(stacked, alone):  # arm means and fixed-arm regret too
        np.testing.assert_array_equal(a.arm_means, b.arm_means)
        np.testing.assert_array_equal(a.cum_fixed_regret, b.cum_fixed_regret)


def test_rl_agents_and_unknown_policies_are_not_stacked(monkeypatch):
    doc = {"seeds": [1, 2], "steps": 4, "batch_size": 4, "scenarios": {"pool": {"preset": "easy", **SMALL}},
           "policies": {"ppo": {"train_steps": 0}, "random": {}}}
    jobs = make_jobs(parse_config(doc))
    units = make_units(jobs)
    labels = sorted((jobs[u[0]].config.policies[jobs[u[0]].policy].label, len(u)) for u in units)
    assert labels == [("ppo", 1), ("ppo", 1), ("random", 2)]
    assert make_units(jobs, stack=False) == [[i] for i in range(len(jobs))]


# ----------------------------------------------------------------------------- AdSession and policy generators
def test_a_stacked_ad_session_is_each_seeds_env_side_by_side():
    """AdSession stacks like CreativeSelection: same world_seeds= keyword, same seed-list semantics,
    group g bit for bit the unstacked env of its seed (sessions end at different steps per slot)."""
    from adsim.session import make_session_config

    cfg = make_session_config("tiny", horizon=8, campaign=None)
    B, sid = 5, "adsim/AdSession-v0"
    stacked = gym.make_vec(sid, num_envs=B * len(SEEDS), vectorization_mode="vector_entry_point", config=cfg,
                           world_seeds=SEEDS)
    alone = [gym.make_vec(sid, num_envs=B, vectorization_mode="vector_entry_point", config=cfg.replace(seed=s))
             for s in SEEDS]
    obs, info = stacked.reset(seed=SEEDS)
    parts = [e.reset(seed=s) for e, s in zip(alone, SEEDS)]
    rng = np.random.default_rng(1)
    ended = 0
    for t in range(40):
        for k in obs:
            np.testing.assert_array_equal(obs[k], cat([p[0] for p in parts], k), err_msg=f"obs[{k}] at step {t}")
        np.testing.assert_array_equal(info["click_probs"], cat([p[-1] for p in parts], "click_probs"))
        a = rng.integers(0, cfg.n_candidates, size=B * len(SEEDS))
        obs, reward, term, trunc, info = stacked.step(a)
        steps = [e.step(a[g * B:(g + 1) * B]) for g, e in enumerate(alone)]
        for i, name in ((1, "reward"), (2, "terminated"), (3, "truncated")):
            np.testing.assert_array_equal([reward, term, trunc][i - 1], np.concatenate([s[i] for s in steps]), name)
        if "final_obs" in info:
            ended += int(info["_final_obs"].sum())
            for k in info["final_obs"]:
                np.testing.assert_array_equal(info["final_obs"][k], np.concatenate(
                    [s[4]["final_obs"][k] if "final_obs" in s[4] else s[0][k] for s in steps]))
        parts = [(s[0], s[4]) for s in steps]
    assert ended > 0 and stacked.observation_space.contains(obs)
    core = stacked.unwrapped.core
    assert len({c.beta0 for c in core.cores}) == len(SEEDS)
    with pytest.raises(ValueError, match=r"got 2 seeds; pass one per stacked world \(3\), one per sub-env \(15\)"):
        stacked.reset(seed=[1, 2])
    with pytest.raises(ValueError, match=r"num_envs == 4 is not a multiple of len\(world_seeds\) == 3"):
        gym.make_vec(sid, num_envs=4, vectorization_mode="vector_entry_point", config=cfg, world_seeds=SEEDS)


def test_a_stacked_policy_rng_draws_each_groups_numbers():
    """``Policy.rng`` is never None: stacked, it draws each group's rows from that group's generator."""
    stacked, singles = POLICIES["random"](), [POLICIES["random"]() for _ in SEEDS]
    stacked.reset(8, group_seeds=SEEDS)
    for p, s in zip(singles, SEEDS):
        p.reset(8, seed=s)
    got = np.concatenate([stacked.rng.random((12, 3)), stacked.rng.integers(0, 5, size=6)[:, None].repeat(3, 1)])
    want = np.concatenate([np.concatenate([p.rng.random((4, 3)) for p in singles]),
                           np.concatenate([p.rng.integers(0, 5, size=2) for p in singles])[:, None].repeat(3, 1)])
    np.testing.assert_array_equal(got, want)
    a = np.arange(1.0, 25.0).reshape(12, 2)  # per-row parameters: each group's rows to its generator
    got = stacked.rng.beta(a, a[::-1], size=a.shape)
    want = np.concatenate([p.rng.beta(a[4 * g:4 * g + 4], a[::-1][4 * g:4 * g + 4]) for g, p in enumerate(singles)])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(stacked.rng.normal(np.array([0.0, 100.0]), 1.0, size=(6, 2)),  # broadcast as
                                  np.concatenate([p.rng.normal(np.array([0.0, 100.0]), 1.0, size=(2, 2))  # unstacked
                                                  for p in singles]))
    with pytest.raises(TypeError, match=r"needs size=\(n, \.\.\.\)"):
        stacked.rng.random()
    with pytest.raises(ValueError, match="a batch of 4 requests cannot be split into the policy's 3 groups"):
        stacked.rng.normal(0.0, 1.0, size=4)
    with pytest.raises(AttributeError, match="use self.rngs"):
        stacked.rng.shuffle
