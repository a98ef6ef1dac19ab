"""The one logging path (``adsim.collect``): what it records, that it drives the core exactly as the
vector env does, and that the CTR table and the generator's requests are views of its log."""

from __future__ import annotations

import numpy as np
import pytest

from adsim import make_config
from adsim.collect import (EstimateEpsilonGreedy, LogStreams, UniformLogging, collect_log, draw_actions,
                           shown_request)
from adsim.selection import SelectionCore
from adsim.ctr.data import impressions_from_log, log_impressions
from adsim.envs.creative_selection import CreativeSelectionVectorEnv
from adsim.ope.log import BanditLog, load_log

CFG = make_config("default", horizon=6, n_users=400, n_products=60)


class _Oracleish:
    """A duck-typed policy (no agents import): 0.7 on the best true candidate, the rest uniform; it
    counts its updates."""

    name = "oracleish"

    def reset(self, n_actions, seed=None):
        self.n_actions, self.updates = n_actions, 0

    def probabilities(self, obs, info=None):
        n, K = obs["ctr_estimate"].shape
        p = np.full((n, K), 0.3 / K)
        p[np.arange(n), np.argmax(info["expected_reward"], axis=1)] += 0.7
        return p

    def update(self, obs, actions, rewards):
        self.updates += 1


@pytest.fixture(scope="module")
def log() -> BanditLog:
    return collect_log(_Oracleish(), SelectionCore(CFG, 50), 500, LogStreams.from_seed(4))


def test_draw_actions_worked_by_hand():
    p = np.array([[0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 1.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    # u = 0 skips the zero-probability action 0; u just below 1 never reaches the trailing zero
    np.testing.assert_array_equal(draw_actions(p, np.array([[0.0], [0.999999], [0.6]])), [1, 2, 2])
    np.testing.assert_array_equal(draw_actions(p, np.array([[0.5], [0.0], [0.0]])), [2, 2, 0])


def test_the_log_replays_the_vector_env_with_the_same_actions(log):
    """Same seed, same actions: the observations, truth and rewards the loop logged are the vector
    env's, the autoreset at the horizon (6 steps of 50 slots, then a new episode) included."""
    env = CreativeSelectionVectorEnv(50, config=CFG)
    obs, info = env.reset(seed=LogStreams.from_seed(4).core)
    for t in range(10):
        rows = slice(50 * t, 50 * (t + 1))
        np.testing.assert_array_equal(log.observations(rows)["user"], obs["user"])
        np.testing.assert_array_equal(log.action_context[rows].reshape(50, -1), obs["candidates"])
        np.testing.assert_array_equal(log.ctr_estimate[rows], obs["ctr_estimate"])
        np.testing.assert_array_equal(log.expected_reward[rows], info["expected_reward"])
        obs, reward, _, _, info = env.step(log.action[rows])
        np.testing.assert_array_equal(log.reward[rows], reward)
        np.testing.assert_array_equal(log.click[rows], info["clicked"])


def test_the_log_records_every_column(log):
    n, rows = log.n_rounds, np.arange(log.n_rounds)
    assert n == 500 and log.n_actions == CFG.n_candidates
    np.testing.assert_array_equal(log.pscore, log.pi_b[rows, log.action])
    np.testing.assert_array_equal(log.step, rows // 50)
    np.testing.assert_array_equal(log.slot, rows % 50)
    np.testing.assert_array_equal(log.click_probs, log.expected_reward)  # reward = click
    np.testing.assert_array_equal(log.reward, log.click)
    assert set(np.unique(log.position)) <= {0, 1, 2} and log.campaign_id.max() < CFG.world.n_campaigns
    # the policy's 0.7 on the best candidate shows: the best candidate is taken about 0.7 + 0.3/8 of the time
    best = np.argmax(log.expected_reward, axis=1) == log.action
    assert abs(best.mean() - 0.7375) < 0.06, best.mean()


def test_learning_and_streams():
    policy = _Oracleish()
    collect_log(policy, SelectionCore(CFG, 50), 120, LogStreams.from_seed(0))
    assert policy.updates == 3
    collect_log(policy, SelectionCore(CFG, 50), 120, LogStreams.from_seed(0), learn=False)
    assert policy.updates == 0
    a = collect_log(UniformLogging(), SelectionCore(CFG, 50), 200, LogStreams.from_seed(1))
    b = collect_log(UniformLogging(), SelectionCore(CFG, 50), 200, LogStreams.from_seed(1))
    c = collect_log(UniformLogging(), SelectionCore(CFG, 50), 200, LogStreams.from_seed(2))
    np.testing.assert_array_equal(a.context, b.context)
    np.testing.assert_array_equal(a.action, b.action)
    assert not np.array_equal(a.context, c.context) and not np.array_equal(a.action, c.action)


def test_save_and_load_keep_the_new_columns(log, tmp_path):
    back = load_log(log.save(tmp_path / "log"))
    for name in ("click", "click_probs", "campaign_id", "step", "slot"):
        np.testing.assert_array_equal(getattr(back, name), getattr(log, name))


def test_the_ctr_table_is_a_view_of_the_log(log):
    imp = impressions_from_log(log)
    rows = np.arange(log.n_rounds)
    np.testing.assert_array_equal(imp.creative, log.action_context[rows, log.action])
    np.testing.assert_array_equal(imp.oracle_click_prob, log.click_probs[rows, log.action])
    np.testing.assert_array_equal(imp.user, log.observations()["user"])
    np.testing.assert_array_equal(imp.propensity, log.pscore)
    req = shown_request(log)
    assert req.candidates.shape == (log.n_rounds, 1, log.action_context.shape[2])
    np.testing.assert_array_equal(req.candidates[:, 0], imp.creative)


def test_log_impressions_equals_the_loop_with_its_streams():
    imp = log_impressions(CFG, 300, policy="egreedy", epsilon=0.3, num_envs=60, seed=5)
    streams = LogStreams(5, None, np.random.SeedSequence([5, 7]))
    log = collect_log(EstimateEpsilonGreedy(0.3), SelectionCore(CFG, 60), 300, streams)
    np.testing.assert_array_equal(imp.action, log.action)
    np.testing.assert_array_equal(imp.click, log.click)


@pytest.mark.parametrize("args, error, match", [
    ((object(), 10, LogStreams.from_seed(0)), TypeError, r"lacks \['reset', 'probabilities', 'update'\]"),
    ((UniformLogging(), 0, LogStreams.from_seed(0)), ValueError, r"n_rounds == 0"),
    ((UniformLogging(), 10, 3), TypeError, r"streams must be a LogStreams, got int"),
])
def test_bad_arguments_raise(args, error, match):
    policy, n, streams = args
    with pytest.raises(error, match=match):
        collect_log(policy, SelectionCore(CFG, 5), n, streams)


def test_a_policy_returning_bad_probabilities_raises():
    class Bad(UniformLogging):
        def probabilities(self, obs, info=None):
            return np.full((obs["ctr_estimate"].shape[0], self.n_actions), 0.5)

    with pytest.raises(ValueError, match="not probability distributions"):
        collect_log(Bad(), SelectionCore(CFG, 5), 10, LogStreams.from_seed(0))


def test_bad_new_columns_raise(log):
    with pytest.raises(ValueError, match=r"click == 2, must be 0 or 1"):
        BanditLog(**{**_columns(log), "click": np.full(log.n_rounds, 2, np.int8)})
    with pytest.raises(ValueError, match=r"click_probs must be in \[0, 1\]"):
        BanditLog(**{**_columns(log), "click_probs": log.click_probs + 1.0})
    with pytest.raises(ValueError, match=r"mismatched lengths: slot has 3 rounds"):
        BanditLog(**{**_columns(log), "slot": np.zeros(3, np.int64)})


def _columns(log: BanditLog) -> dict:
    names = ("context", "action_context", "ctr_estimate", "action", "reward", "pscore", "position",
             "expected_reward", "pi_b", "click_probs", "click", "campaign_id", "step", "slot", "obs_dims")
    return {n: getattr(log, n) for n in names}
