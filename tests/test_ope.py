"""Off-policy evaluation: logs, estimators, and their agreement with the simulator's truth and with
Open Bandit Pipeline."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from adsim import make_config
from adsim.ope import BanditLog, dm, dr, estimate_all, importance_weights, ips, load_log, obp_action_dist, \
    predict_rewards, snips, switch_dr
from agents import OraclePolicy, Policy, RandomPolicy
from agents.mixture import EpsilonMixture
from experiments.cli import main
from experiments.ope.collect import collect_log, on_policy_value, target_probabilities, train_on_log, true_value
from experiments.runner.spec import policy_from_arg

CFG = make_config("default")
# a scenario with large gaps between creatives and a high CTR: importance weighting's variance
# there comes mostly from which action was taken, which a good reward model removes
CONTRAST = make_config("easy", target_ctr=0.3)


@pytest.fixture(scope="module")
def log() -> BanditLog:
    return collect_log(EpsilonMixture(OraclePolicy(), 0.3), CFG, 3000, num_envs=1000, seed=3)


def _target(policy, log_: BanditLog) -> np.ndarray:
    return target_probabilities(policy, log_, seed=0)


# ---------------------------------------------------------------------------- the ε-mixture
def test_mixture_probabilities_worked_by_hand():
    mix = EpsilonMixture(OraclePolicy(), 0.2)
    mix.reset(4, seed=0)
    obs = {"ctr_estimate": np.zeros((2, 4), np.float32)}
    info = {"expected_reward": np.array([[0.1, 0.3, 0.2, 0.0], [0.5, 0.1, 0.1, 0.1]])}
    # best arms 1 and 0: 0.8 · 1 + 0.2 / 4 = 0.85; the others 0.2 / 4 = 0.05
    expected = np.array([[0.05, 0.85, 0.05, 0.05], [0.85, 0.05, 0.05, 0.05]])
    np.testing.assert_allclose(mix.probabilities(obs, info), expected)


@pytest.mark.parametrize("args, error, match", [
    ((OraclePolicy(), 1.5), ValueError, r"epsilon == 1.5, must be in \[0, 1\]"),
    ((OraclePolicy(), -0.1), ValueError, r"epsilon == -0.1"),
    ((OraclePolicy(), "0.1"), TypeError, r"epsilon must be a number"),
    (("oracle", 0.1), TypeError, r"policy must be an agents.base.Policy"),
])
def test_mixture_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        EpsilonMixture(*args)


# ---------------------------------------------------------------------------- the log
def test_log_contents(log):
    n, K = log.n_rounds, log.n_actions
    assert (n, K) == (3000, 8) and log.action_context.shape == (n, K, 9)
    np.testing.assert_array_equal(log.pscore, log.pi_b[np.arange(n), log.action])
    # oracle + ε = 0.3 over K = 8: 0.7 + 0.3/8 for the best arm, 0.3/8 otherwise
    assert set(np.round(np.unique(log.pscore), 10)) == {round(0.3 / 8, 10), round(0.7 + 0.3 / 8, 10)}
    best = np.argmax(log.expected_reward, axis=1)
    assert 0.65 < np.mean(log.action == best) < 0.79  # 0.7375 expected; ±4.9 sd at n = 3000
    # position is the ad slot one-hot at the end of the obs context; slots 0/1/2 drawn 50/30/20 %
    slot = log.observations()["context"][:, -3:]
    np.testing.assert_array_equal(slot[np.arange(n), log.position], 1.0)
    assert np.allclose(np.bincount(log.position) / n, [0.5, 0.3, 0.2], atol=0.05)


def test_parquet_roundtrip_and_obp_layout(log, tmp_path):
    path = log.save(tmp_path / "run")
    assert path.name == "log.parquet"
    back = load_log(tmp_path / "run")
    for name in ("context", "action_context", "ctr_estimate", "action", "reward", "pscore", "position",
                 "expected_reward", "pi_b"):
        np.testing.assert_array_equal(getattr(back, name), getattr(log, name), err_msg=name)
        assert getattr(back, name).dtype == getattr(log, name).dtype, name
    assert back.obs_dims == log.obs_dims and back.meta == log.meta
    bf = log.to_obp()
    assert {"n_rounds", "n_actions", "context", "action", "reward", "pscore", "position", "action_context",
            "expected_reward"} <= set(bf)
    assert bf["n_rounds"] == 3000 and bf["n_actions"] == 8 and bf["pi_b"].shape == (3000, 8, 1)


def _valid_columns(log: BanditLog, n: int = 20) -> dict:
    sub = log.subset(slice(0, n))
    return {k: getattr(sub, k).copy() for k in ("context", "action_context", "ctr_estimate", "action", "reward",
                                                 "pscore", "position", "expected_reward", "pi_b")}


def _with(cols: dict, **changes) -> dict:
    return {**cols, **changes}


BAD_LOGS = [
    (lambda c: _with(c, pscore=np.where(np.arange(20) == 4, 0.0, c["pscore"])), ValueError,
     r"pscore\[4\] == 0.0, propensities must be in \(0, 1\]"),
    (lambda c: _with(c, pscore=np.where(np.arange(20) == 7, 1.5, c["pscore"]), pi_b=None), ValueError,
     r"pscore\[7\] == 1.5, propensities must be in \(0, 1\]"),
    (lambda c: _with(c, reward=c["reward"][:-1]), ValueError, r"mismatched lengths: reward has 19 rounds, action has 20"),
    (lambda c: _with(c, context=c["context"][:-2]), ValueError, r"mismatched lengths: context has 18 rounds"),
    (lambda c: _with(c, expected_reward=c["expected_reward"][:, :5]), ValueError, r"expected_reward has shape \(20, 5\)"),
    (lambda c: _with(c, action=np.full(20, 8)), ValueError, r"action == 8, must be in \[0, 7\]"),
    (lambda c: _with(c, action=c["action"].astype(float)), TypeError, r"action must hold integers"),
    (lambda c: _with(c, reward=np.where(np.arange(20) == 2, np.nan, c["reward"])), ValueError, r"reward must be finite"),
    (lambda c: _with(c, pscore=c["pscore"] * 0.5), ValueError, r"pscore\[\d+\] == .* but pi_b\[\d+, action\]"),
    (lambda c: _with(c, position=np.full(20, -1)), ValueError, r"position == -1, must be >= 0"),
    (lambda c: _with(c, pscore=list(c["pscore"])), TypeError, r"pscore must be a numpy array"),
    (lambda c: {k: v[:0] for k, v in c.items()}, ValueError, r"the log is empty"),
]


@pytest.mark.parametrize("corrupt, error, match", BAD_LOGS)
def test_bad_logs_rejected(log, corrupt, error, match):
    with pytest.raises(error, match=match):
        BanditLog(**corrupt(_valid_columns(log)))


def test_missing_column_or_foreign_file_rejected_on_load(log, tmp_path):
    path = log.subset(slice(0, 20)).save(tmp_path / "x.parquet")
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["pscore"]), tmp_path / "nopscore.parquet")
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['pscore'\]"):
        load_log(tmp_path / "nopscore.parquet")
    pq.write_table(table.replace_schema_metadata({}), tmp_path / "foreign.parquet")
    with pytest.raises(ValueError, match=r"is not an adsim log"):
        load_log(tmp_path / "foreign.parquet")
    with pytest.raises(FileNotFoundError, match=r"no log at"):
        load_log(tmp_path / "absent")


# ---------------------------------------------------------------------------- reward models
def test_reward_models_plug_in(log):
    from sklearn.ensemble import HistGradientBoostingClassifier

    small = log.subset(slice(0, 600))
    q = predict_rewards(small)  # cross-fitted logistic regression
    assert q.shape == (600, 8) and np.all((q > 0) & (q < 1))
    factual = q[np.arange(600), small.action]
    assert factual.mean() == pytest.approx(small.reward.mean(), rel=0.25)  # calibrated on the logged actions
    assert not np.allclose(q, predict_rewards(small, n_folds=1))  # cross-fitting changes the fit
    # an estimator that wants dense input, and a callable
    q_hgb = predict_rewards(small, HistGradientBoostingClassifier(max_iter=5, random_state=0))
    assert q_hgb.shape == (600, 8)
    np.testing.assert_array_equal(predict_rewards(small, lambda lg: lg.expected_reward), small.expected_reward)
    revenue = BanditLog(**{**_valid_columns(log, 600), "reward": small.reward * 37.5})
    q_rev = predict_rewards(revenue)  # ridge regression: predictions beyond 1 that a classifier cannot make
    assert q_rev.max() > 1.0
    assert q_rev[np.arange(600), small.action].mean() == pytest.approx(revenue.reward.mean(), rel=0.25)


def test_reward_model_errors(log):
    small = log.subset(slice(0, 50))
    with pytest.raises(ValueError, match=r"reward model returned shape \(50, 3\), expected \(50, 8\)"):
        predict_rewards(small, lambda lg: np.zeros((50, 3)))
    with pytest.raises(TypeError, match=r"model must be None, a callable"):
        predict_rewards(small, object())
    with pytest.raises(ValueError, match=r"n_folds == 0"):
        predict_rewards(small, n_folds=0)


# ---------------------------------------------------------------------------- estimators by hand
def test_estimators_worked_by_hand():
    # 4 rounds, K = 2; target always plays action 1.
    action = np.array([1, 0, 1, 1])
    pscore = np.array([0.5, 0.5, 0.25, 1.0])
    reward = np.array([1.0, 1.0, 0.0, 1.0])
    target = np.tile([0.0, 1.0], (4, 1))
    q_hat = np.tile([0.2, 0.4], (4, 1))
    # w = [2, 0, 4, 1]; IPS = (2 + 0 + 0 + 1) / 4 = 0.75; SNIPS = 3 / 7
    np.testing.assert_allclose(importance_weights(action, pscore, target), [2, 0, 4, 1])
    assert ips(reward, action, pscore, target).value == pytest.approx(0.75)
    assert snips(reward, action, pscore, target).value == pytest.approx(3 / 7)
    assert dm(target, q_hat).value == pytest.approx(0.4)
    # DR terms: 0.4 + w (r − 0.4 or 0.2): 0.4+1.2, 0.4+0, 0.4−1.6, 0.4+0.6 → mean 0.45
    assert dr(reward, action, pscore, target, q_hat).value == pytest.approx(0.45)
    # clip = 2 changes round 3 only: 0.4 + 2·(−0.4) = −0.4 → mean (1.6 + 0.4 − 0.4 + 1.0) / 4 = 0.65
    assert dr(reward, action, pscore, target, q_hat, clip=2.0).value == pytest.approx(0.65)
    # tau = 2 drops round 3's correction: (1.6 + 0.4 + 0.4 + 1.0) / 4 = 0.85; tau = 0 is DM
    assert switch_dr(reward, action, pscore, target, q_hat, tau=2.0).value == pytest.approx(0.85)
    assert switch_dr(reward, action, pscore, target, q_hat, tau=0.0).value == pytest.approx(0.4)
    est = ips(reward, action, pscore, target)
    # terms [2, 0, 0, 1] minus 0.75: squares 1.5625 + 0.5625 + 0.5625 + 0.0625 = 2.75; / 3 → var 11/12
    assert est.std_err == pytest.approx(np.sqrt(11 / 12) / 2)
    assert est.ci_low == pytest.approx(0.75 - 1.959964 * est.std_err, rel=1e-6)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"alpha": 0.0}, ValueError, r"alpha == 0.0, must be in \(0.0, 1.0\]"),
    ({"ci": "jackknife"}, ValueError, r"unknown ci 'jackknife'"),
    ({"ci": "bootstrap", "n_boot": 3}, ValueError, r"n_boot == 3"),
])
def test_estimator_options_rejected(kwargs, error, match):
    a, p, r, t = np.array([0, 1]), np.array([0.5, 0.5]), np.array([1.0, 0.0]), np.full((2, 2), 0.5)
    with pytest.raises(error, match=match):
        ips(r, a, p, t, **kwargs)


def test_estimator_shape_errors():
    a, p, r = np.array([0, 1, 0]), np.full(3, 0.5), np.zeros(3)
    with pytest.raises(ValueError, match=r"target has shape \(2, 2\), expected \(n_rounds, K\) with n_rounds == 3"):
        ips(r, a, p, np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match=r"q_hat has shape \(3, 3\), expected \(3, 2\)"):
        dr(r, a, p, np.full((3, 2), 0.5), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"weights sum to 0.0"):
        snips(r, a, p, np.tile([0.0, 1.0], (3, 1)) * (a[:, None] != np.arange(2)))


def test_bootstrap_interval_is_seeded_and_matches_normal_on_a_large_log(log):
    t = _target(RandomPolicy(), log)
    normal = ips(log.reward, log.action, log.pscore, t)
    b1 = ips(log.reward, log.action, log.pscore, t, ci="bootstrap", n_boot=400, seed=1)
    b2 = ips(log.reward, log.action, log.pscore, t, ci="bootstrap", n_boot=400, seed=1)
    assert b1 == b2 and b1.value == normal.value
    assert b1.std_err == pytest.approx(normal.std_err, rel=0.15)  # 400 replicates: ±3.5 % sd of an sd


def test_bootstrap_t_critical_values_are_order_statistics_that_cover_at_the_nominal_level():
    from adsim.ope.estimators import bootstrap_t_quantiles

    # k = ⌊(B + 1) α/2⌋: the 5th and 196th of 200 (interpolated quantiles would give 4.975 and 194.025)
    assert bootstrap_t_quantiles(np.arange(200.0), 0.05) == (4.0, 195.0)
    assert bootstrap_t_quantiles(np.arange(999.0)[::-1].copy(), 0.05) == (24.0, 974.0)
    assert bootstrap_t_quantiles(np.arange(39.0), 0.05) == (0.0, 38.0)
    with pytest.raises(ValueError, match=r"n_boot == 38 is too few replicates .* need at least 39"):
        bootstrap_t_quantiles(np.arange(38.0), 0.05)
    # a new draw and B = 200 exchangeable replicates of it: [t*_(k), t*_(B+1−k)] holds the draw with
    # probability 1 − 2k/(B + 1) = 0.9502 exactly; np.quantile's interval held it 0.9405 of the time
    # (the 1-point shortfall of the slate study's coverage). 20,000 trials: SE 0.0015.
    rng = np.random.default_rng(5)
    z = rng.standard_normal((20000, 201))
    held = [lo <= row[200] <= hi for row in z for lo, hi in [bootstrap_t_quantiles(row[:200], 0.05)]]
    assert 0.946 < np.mean(held) < 0.955
    lo, hi = np.quantile(z[:, :200], [0.025, 0.975], axis=1)
    assert np.mean((lo <= z[:, 200]) & (z[:, 200] <= hi)) < 0.945  # what the interpolated quantiles did


# ---------------------------------------------------------------------------- against the truth
def test_ips_equals_on_policy_mean_when_logging_is_the_target(log):
    probs = _target(EpsilonMixture(OraclePolicy(), 0.3), log)
    np.testing.assert_array_equal(probs, log.pi_b)  # same observations → same probabilities
    assert ips(log.reward, log.action, log.pscore, probs).value == log.reward.mean()
    assert snips(log.reward, log.action, log.pscore, probs).value == log.reward.mean()


def test_true_value_equals_an_independent_on_policy_run(log):
    # random target ignores the context; common random numbers give the on-policy run the same requests
    truth = true_value(log, _target(RandomPolicy(), log))
    assert on_policy_value(RandomPolicy(), CFG, 3000, num_envs=1000, seed=3) == pytest.approx(truth, rel=1e-12)
    oracle = true_value(log, _target(OraclePolicy(), log))
    assert oracle == pytest.approx(log.expected_reward.max(axis=1).mean()) and oracle > truth


def _errors_over_seeds(config, logging, target, n, seeds, q_model=None):
    rows = []
    for s in seeds:
        lg = collect_log(logging, config, n, num_envs=n, seed=s)
        probs = _target(target, lg)
        truth = true_value(lg, probs)
        q = None if q_model is None else predict_rewards(lg, q_model)
        ests = estimate_all(lg.reward, lg.action, lg.pscore, probs, q)
        rows.append({k: (e.value - truth, e.std_err) for k, e in ests.items()} | {"naive": lg.reward.mean() - truth})
    return rows


def test_ips_is_unbiased_over_seeds():
    """Mean error over 40 independent scenario seeds, in units of its standard error (a t statistic).

    Unbiased IPS: |t| < 4 fails with probability < 1e-3. A biased estimator must fail the same band:
    the logging policy's own mean reward (no weighting) does.
    """
    rows = _errors_over_seeds(CFG, RandomPolicy(), EpsilonMixture(OraclePolicy(), 0.1), 1000, range(40))
    err = np.array([r["ips"][0] for r in rows])
    t_ips = err.mean() / (err.std(ddof=1) / np.sqrt(err.size))
    naive = np.array([r["naive"] for r in rows])
    t_naive = naive.mean() / (naive.std(ddof=1) / np.sqrt(naive.size))
    assert abs(t_ips) < 4.0
    assert abs(t_naive) > 4.0


def test_dr_with_a_perfect_reward_model_has_lower_variance_than_ips():
    rows = _errors_over_seeds(CONTRAST, RandomPolicy(), EpsilonMixture(OraclePolicy(), 0.1), 1000, range(30),
                              q_model=lambda lg: lg.expected_reward)
    ips_err, dr_err = (np.array([r[k][0] for r in rows]) for k in ("ips", "dr"))
    # F(29, 29): a variance ratio below 0.75 when the true ratio is >= 1 has probability < 0.22;
    # the per-log standard errors agree on every one of the 30 logs.
    assert dr_err.var(ddof=1) < 0.75 * ips_err.var(ddof=1)
    assert all(r["dr"][1] < r["ips"][1] for r in rows)
    assert abs(dr_err.mean()) < 4 * dr_err.std(ddof=1) / np.sqrt(dr_err.size)  # still unbiased


def test_obp_estimators_agree_on_the_exported_log(log):
    obp_ope = pytest.importorskip("obp.ope", reason="obp (Open Bandit Pipeline 0.4.1) cannot be imported: the "
                                                    "cross-check against its estimators is skipped")
    probs = _target(EpsilonMixture(OraclePolicy(), 0.1), log)
    q_hat = predict_rewards(log, seed=0)
    ours = estimate_all(log.reward, log.action, log.pscore, probs, q_hat, tau=1.0)
    bf = log.to_obp()
    ope = obp_ope.OffPolicyEvaluation(bandit_feedback=bf, ope_estimators=[
        obp_ope.InverseProbabilityWeighting(), obp_ope.SelfNormalizedInverseProbabilityWeighting(),
        obp_ope.DirectMethod(), obp_ope.DoublyRobust(), obp_ope.SwitchDoublyRobust(tau=1.0)])
    theirs = ope.estimate_policy_values(action_dist=obp_action_dist(probs, log.n_positions),
                                        estimated_rewards_by_reg_model=obp_action_dist(q_hat, log.n_positions))
    names = {"ipw": "ips", "snipw": "snips", "dm": "dm", "dr": "dr", "switch-dr": "switch_dr"}
    assert set(theirs) == set(names)
    for theirs_name, ours_name in names.items():
        assert theirs[theirs_name] == pytest.approx(ours[ours_name].value, rel=1e-10, abs=1e-14), ours_name
    assert ours["switch_dr"].value != pytest.approx(ours["dr"].value)  # w = 1.24 > tau on the best arm: switched


class _CountingPolicy(Policy):
    """Learns per-action impressions and clicks from ``update``; plays the best observed CTR."""

    name = "counting"

    def reset(self, n_actions, seed=None):
        super().reset(n_actions, seed)
        self.imps, self.clicks = np.zeros(n_actions), np.zeros(n_actions)

    def probabilities(self, obs, info=None):
        best = np.argmax(self.clicks / np.maximum(self.imps, 1))
        return np.tile(np.eye(self.n_actions)[best], (self.batch_size(obs), 1))

    def update(self, obs, actions, rewards):
        assert obs["ctr_estimate"].shape[0] == actions.shape[0] == rewards.shape[0]
        self.imps += np.bincount(actions, minlength=self.n_actions)
        self.clicks += np.bincount(actions, weights=rewards, minlength=self.n_actions)


def test_train_on_log_replays_every_round_then_the_target_is_evaluated_frozen(log):
    policy = train_on_log(_CountingPolicy(), log, chunk=700)
    np.testing.assert_array_equal(policy.imps, np.bincount(log.action, minlength=8))
    np.testing.assert_array_equal(policy.clicks, np.bincount(log.action, weights=log.reward, minlength=8))
    probs = target_probabilities(policy, log, reset=False)
    best = np.argmax(policy.clicks / policy.imps)
    np.testing.assert_array_equal(probs.argmax(axis=1), best)
    assert policy.imps.sum() == log.n_rounds  # evaluation did not update it


def test_logging_a_learning_policy_records_the_propensities_used_at_the_time():
    lg = collect_log(EpsilonMixture(_CountingPolicy(), 0.4), CFG, 2000, num_envs=250, seed=1)
    assert lg.meta["policy"] == "counting@0.4"
    # the greedy arm changes as the policy learns: early and late rounds favour different arms
    favoured = lg.pi_b.argmax(axis=1)
    assert np.unique(favoured).size > 1
    np.testing.assert_allclose(lg.pi_b.max(axis=1), 0.6 + 0.4 / 8)


# ---------------------------------------------------------------------------- configs and CLI
@pytest.mark.parametrize("text, error, match", [
    ("lin_ucb", ValueError, r"unknown policy 'lin_ucb'"),
    ("oracle@2", ValueError, r"uniform_mix == 2.0, must be in \[0.0, 1.0\]"),
    ("oracle@x", ValueError, r"'x' after '@' is not a number"),
])
def test_policy_spec_rejects(text, error, match):
    with pytest.raises(error, match=match):
        policy_from_arg(text)


def test_policy_toml_is_a_policies_table(tmp_path):
    (tmp_path / "t.toml").write_text('policy = "ucb1"\nc = 2.0\nuniform_mix = 0.1\n')
    spec = policy_from_arg(str(tmp_path / "t.toml"))
    assert (spec.policy, spec.hyper, spec.uniform_mix, spec.label) == ("ucb1", {"c": 2.0}, 0.1, "ucb1(c=2.0)@0.1")
    policy = spec.make()
    assert isinstance(policy, EpsilonMixture) and policy.epsilon == 0.1 and policy.policy.c == 2.0
    (tmp_path / "u.toml").write_text('policy = "random"\nuniform_mix = 0.1\nepsilson = 2\n')
    with pytest.raises(ValueError, match=r"unknown hyperparameter 'epsilson'"):
        policy_from_arg(str(tmp_path / "u.toml"))
    (tmp_path / "v.toml").write_text("uniform_mix = 0.1\n")
    with pytest.raises(ValueError, match=r"missing key 'policy'"):
        policy_from_arg(str(tmp_path / "v.toml"))


def test_cli_log_then_estimate(tmp_path, capsys):
    assert main(["ope-log", "--policy", "random", "--rounds", "600", "--num-envs", "300", "--seed", "5",
                 "--out", str(tmp_path / "log")]) == 0
    capsys.readouterr()
    (tmp_path / "target.toml").write_text('policy = "oracle"\nuniform_mix = 0.2\n')
    assert main(["ope", "--log", str(tmp_path / "log"), "--target", str(tmp_path / "target.toml")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["target"] == "oracle@0.2" and report["n_rounds"] == 600
    assert set(report["estimates"]) == {"dm", "ips", "snips", "dr", "dr_clip", "switch_dr"}
    lg = load_log(tmp_path / "log")
    probs = _target(EpsilonMixture(OraclePolicy(), 0.2), lg)
    assert report["estimates"]["ips"]["value"] == pytest.approx(ips(lg.reward, lg.action, lg.pscore, probs).value)
    assert report["true_value"] == pytest.approx(true_value(lg, probs))


def test_cli_study_writes_table_and_plot(tmp_path):
    out = tmp_path / "study"
    assert main(["ope-study", "--out", str(out), "--set", 'ope.logging=["random"]', "--set", 'ope.targets=["oracle"]',
                 "--set", "ope.sizes=[100, 200]", "--seeds", "2", "--jobs", "1", "--no-progress"]) == 0
    text = (out / "summary.md").read_text()
    assert "| default | random | oracle | 100 | ips |" in text and "| default | random | oracle | 200 | switch_dr |" in text
    assert (out / "rmse.png").stat().st_size > 5000
