"""Slate off-policy estimators (issue 16, point 4): agreement with obp 0.4.1's slate estimators,
values worked by hand, exact unbiasedness by enumerating every slate, a seeded sampled check with
interval coverage, and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from adsim.ope import cascade_dr, cumulative_pscore, iips, pseudo_inverse, rips, sips

K, L = 5, 3
SLATES = np.array(list(itertools.permutations(range(K), L)))  # every ordered slate of L distinct items


def plackett_luce(weights: np.ndarray, slates: np.ndarray) -> dict[str, np.ndarray]:
    """A Plackett–Luce policy's propensities of ``slates`` (S, L): conditional, cumulative, joint,
    marginal (item at position, summed over every slate), and the conditional distribution over all
    K candidates at each position given the slate's items above it (S, L, K)."""
    S, n_pos = slates.shape
    dist = np.empty((S, n_pos, len(weights)))
    for s, slate in enumerate(slates):
        left = np.ones(len(weights), bool)
        for pos, a in enumerate(slate):
            dist[s, pos] = np.where(left, weights, 0) / weights[left].sum()
            left[a] = False
    cond = np.take_along_axis(dist, slates[:, :, None], axis=2)[:, :, 0]
    cum = np.cumprod(cond, axis=1)
    every = np.array(list(itertools.permutations(range(len(weights)), n_pos)))
    joint_every = np.array([np.prod([weights[a] / weights[[b for b in range(len(weights)) if b not in s[:i]]].sum()
                                     for i, a in enumerate(s)]) for s in every])
    marg_table = np.zeros((n_pos, len(weights)))
    for s, p in zip(every, joint_every):
        marg_table[np.arange(n_pos), s] += p
    marginal = marg_table[np.arange(n_pos), slates]
    return {"cond": cond, "cum": cum, "joint": cum[:, -1], "marginal": marginal, "dist": dist, "table": marg_table}


W_LOG = np.array([1.0, 2.0, 0.5, 1.5, 3.0])
W_TGT = np.array([4.0, 0.5, 1.0, 2.0, 0.7])
LOGGER, TARGET = plackett_luce(W_LOG, SLATES), plackett_luce(W_TGT, SLATES)
ATTRACT = np.array([0.30, 0.10, 0.50, 0.20, 0.40])
EXAMINE = np.array([1.0, 0.6, 0.3])


def pbm_reward(slates):
    """Position-based model: r_l = examination(l) × attractiveness(a_l) (additive, independent)."""
    return EXAMINE[None, :] * ATTRACT[slates]


def cascade_reward(slates):
    """Cascade: the user scans down and clicks the first attractive item; r_l = P(click at l)."""
    a = ATTRACT[slates]
    skip = np.cumprod(np.concatenate([np.ones((len(slates), 1)), 1 - a[:, :-1]], axis=1), axis=1)
    return skip * a


def exact(estimator, reward, **arrays):
    """E_μ[estimate]: mean of the estimate over all slates with the reward scaled by S·μ(s) — the
    estimators are linear in the reward, so this equals Σ_s μ(s) × (term of slate s)."""
    scale = len(SLATES) * LOGGER["joint"]
    return estimator(reward * scale[:, None], **arrays).value


def truth(reward):
    return float((TARGET["joint"] * reward.sum(axis=1)).sum())


# ------------------------------------------------------------------ agreement with obp 0.4.1


def _sampled_log(n, seed):
    """n slates from the logger, drawn with the Gumbel top-L trick (Plackett–Luce), clicks from the cascade."""
    rng = np.random.default_rng(seed)
    keys = np.log(W_LOG)[None, :] + rng.gumbel(size=(n, K))
    slates = np.argsort(-keys, axis=1)[:, :L]
    index = {tuple(s): i for i, s in enumerate(SLATES)}
    rows = np.array([index[tuple(s)] for s in slates])
    click = (rng.random((n, L)) < cascade_reward(slates)).astype(np.float64)
    return slates, rows, click


def test_sips_iips_rips_agree_with_obp_041():
    from obp.ope import SlateIndependentIPS, SlateRewardInteractionIPS, SlateStandardIPS

    n = 2000
    slates, rows, click = _sampled_log(n, seed=7)
    long = {"slate_id": np.repeat(np.arange(n), L), "reward": click.reshape(-1), "position": np.tile(np.arange(L), n)}
    ours_obp = [
        (sips(click, LOGGER["joint"][rows], TARGET["joint"][rows]).value,
         SlateStandardIPS(len_list=L).estimate_policy_value(
             **long, pscore=np.repeat(LOGGER["joint"][rows], L),
             evaluation_policy_pscore=np.repeat(TARGET["joint"][rows], L))),
        (iips(click, LOGGER["marginal"][rows], TARGET["marginal"][rows]).value,
         SlateIndependentIPS(len_list=L).estimate_policy_value(
             **long, pscore_item_position=LOGGER["marginal"][rows].reshape(-1),
             evaluation_policy_pscore_item_position=TARGET["marginal"][rows].reshape(-1))),
        (rips(click, LOGGER["cum"][rows], TARGET["cum"][rows]).value,
         SlateRewardInteractionIPS(len_list=L).estimate_policy_value(
             **long, pscore_cascade=LOGGER["cum"][rows].reshape(-1),
             evaluation_policy_pscore_cascade=TARGET["cum"][rows].reshape(-1))),
    ]
    for ours, theirs in ours_obp:
        assert ours == pytest.approx(theirs, abs=1e-9, rel=1e-12)
    assert len({round(v, 6) for v, _ in ours_obp}) == 3  # three different numbers, not one compared thrice


def test_obp_041_has_no_cascade_dr_or_pseudo_inverse():
    import obp.ope

    slate = {n for n in dir(obp.ope) if n.startswith("Slate")}
    assert slate == {"SlateStandardIPS", "SlateIndependentIPS", "SlateRewardInteractionIPS", "SlateOffPolicyEvaluation"}


# ------------------------------------------------------------------ worked by hand


def test_cascade_dr_worked_by_hand():
    # One slate, L = 2, K = 2: items (1, 0) shown, rewards (1, 0).
    # Logging cumulative propensities (0.5, 0.5): μ(a0=1) = 0.5, μ(a1=0 | a0=1) = 1.
    # Target: π(·) at position 0 = (0.2, 0.8); at position 1 given a0 = 1 only item 0 is left: (1, 0).
    # Weights: w_0 = 0.8 / 0.5 = 1.6, w_1 = 0.8 · 1 / 0.5 = 1.6, w_{-1} = 1.
    # q̂ at position 0 = (0.1, 0.3); at position 1 (below item 1) = (0.2, 0.6).
    # Position 0: w_0 (r_0 − q̂_0(1)) + 1 · (0.2·0.1 + 0.8·0.3) = 1.6·0.7 + 0.26 = 1.38
    # Position 1: w_1 (r_1 − q̂_1(0)) + w_0 · (1·0.2 + 0·0.6) = 1.6·(−0.2) + 1.6·0.2 = 0
    reward = np.array([[1.0, 0.0]])
    action = np.array([[1, 0]])
    target = np.array([[[0.2, 0.8], [1.0, 0.0]]])
    q_hat = np.array([[[0.1, 0.3], [0.2, 0.6]]])
    est = cascade_dr(reward, action, np.array([[0.5, 0.5]]), target, q_hat)
    assert est.value == pytest.approx(1.38, abs=1e-12)
    # A second slate, items (0, 1), rewards (0, 1), μ cumulative (0.5, 0.5), target at 0 as before, at
    # position 1 given a0 = 0: (0, 1); q̂ the same numbers. w_0 = 0.2/0.5 = 0.4, w_1 = 0.4.
    # Position 0: 0.4 (0 − 0.1) + 0.26 = 0.22; position 1: 0.4 (1 − 0.6) + 0.4 · 0.6 = 0.4. Slate: 0.62.
    reward2 = np.array([[1.0, 0.0], [0.0, 1.0]])
    est2 = cascade_dr(reward2, np.array([[1, 0], [0, 1]]), np.array([[0.5, 0.5], [0.5, 0.5]]),
                      np.array([[[0.2, 0.8], [1.0, 0.0]], [[0.2, 0.8], [0.0, 1.0]]]),
                      np.array([[[0.1, 0.3], [0.2, 0.6]], [[0.1, 0.3], [0.2, 0.6]]]))
    assert est2.value == pytest.approx((1.38 + 0.62) / 2, abs=1e-12)
    assert est2.std_err == pytest.approx(abs(1.38 - 0.62) / 2, abs=1e-12)  # sd(ddof=1)/√2 of two terms


def test_pseudo_inverse_worked_by_hand():
    # Product logger, L = 2: marginal μ = (0.5, 0.25) of the shown items, target (0.5, 0.75):
    # θ = 0.5/0.5 + 0.75/0.25 − 2 + 1 = 3; slate reward 1 + 0 = 1 -> term 3. Second slate μ = (0.25, 0.5),
    # π = (0, 0.5): θ = 0 + 1 − 1 = 0, reward 2 -> 0. Mean 1.5.
    est = pseudo_inverse(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.5, 0.75], [0.0, 0.5]]),
                         pscore=np.array([[0.5, 0.25], [0.25, 0.5]]))
    assert est.value == pytest.approx(1.5, abs=1e-12)
    # Uniform logger without replacement, K = 3, L = 2, slate (0, 1) with reward 1 at position 0.
    # Target marginals q(position, item): position 0 (0.6, 0.3, 0.1), position 1 (0.2, 0.5, 0.3).
    # own = q(0,0) + q(1,1) = 0.6 + 0.5 = 1.1; other = q(1,0) + q(0,1) = 0.2 + 0.3 = 0.5.
    # θ = [(K−1)((K−L+1)·own + other) − K(L−1)] / (K−L) = [2·(2·1.1 + 0.5) − 3] / 1 = 2.4.
    q = np.array([[[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]]])
    est = pseudo_inverse(np.array([[1.0, 0.0]]), q, action=np.array([[0, 1]]), logging="uniform")
    assert est.value == pytest.approx(2.4, abs=1e-12)


# ------------------------------------------------------------------ exact unbiasedness by enumeration


def test_each_estimator_is_exactly_unbiased_where_its_assumption_holds():
    pbm, cascade = pbm_reward(SLATES), cascade_reward(SLATES)
    assert truth(pbm) != pytest.approx(truth(cascade), abs=0.05)
    for reward in (pbm, cascade):  # SIPS: any reward
        assert exact(sips, reward, pscore=LOGGER["joint"], target=TARGET["joint"]) == pytest.approx(truth(reward), abs=1e-12)
    assert exact(iips, pbm, pscore=LOGGER["marginal"], target=TARGET["marginal"]) == pytest.approx(truth(pbm), abs=1e-12)
    for reward in (pbm, cascade):  # RIPS and cascade-DR: rewards that depend on the items above only
        assert exact(rips, reward, pscore=LOGGER["cum"], target=TARGET["cum"]) == pytest.approx(truth(reward), abs=1e-12)
    rng = np.random.default_rng(3)
    table = {}  # a wrong reward model that is a function of (position, items above, candidate), as it must be
    wrong = np.array([[[table.setdefault((l, tuple(s[:l]), a), rng.random()) for a in range(K)] for l in range(L)]
                      for s in SLATES])
    for q_hat in (np.zeros((len(SLATES), L, K)), wrong):
        terms = _cascade_dr_terms(cascade, q_hat)
        assert float((LOGGER["joint"] * terms).sum()) == pytest.approx(truth(cascade), abs=1e-12)


def _cascade_dr_terms(reward, q_hat):
    """The per-slate terms of cascade-DR, each slate a log of one."""
    return np.array([cascade_dr(reward[s:s + 1], SLATES[s:s + 1], LOGGER["cum"][s:s + 1], TARGET["dist"][s:s + 1],
                                q_hat[s:s + 1]).value for s in range(len(SLATES))])


def test_the_wrong_assumption_is_biased_by_a_clear_margin():
    cascade = cascade_reward(SLATES)
    bias_iips = exact(iips, cascade, pscore=LOGGER["marginal"], target=TARGET["marginal"]) - truth(cascade)
    assert abs(bias_iips) > 0.01  # IIPS ignores the items above: biased under the cascade
    # RIPS with marginal instead of cumulative weights is IIPS: the layout is checked, not guessed
    with pytest.raises(ValueError, match="cannot grow"):
        rips(cascade, LOGGER["marginal"], TARGET["marginal"])


def test_pseudo_inverse_is_exactly_unbiased_for_additive_rewards_under_both_loggers():
    pbm = pbm_reward(SLATES)
    # uniform logger without replacement: every slate equally likely, so the plain mean is E_μ
    est = pseudo_inverse(pbm, np.broadcast_to(TARGET["table"], (len(SLATES), L, K)).copy(), action=SLATES,
                         logging="uniform")
    assert est.value == pytest.approx(truth(pbm), abs=1e-12)
    # product logger (positions independent, items may repeat): enumerate all K^L slates
    every = np.array(list(itertools.product(range(K), repeat=L)))
    mu = np.array([[0.1, 0.2, 0.3, 0.15, 0.25], [0.3, 0.1, 0.1, 0.2, 0.3], [0.2, 0.2, 0.2, 0.2, 0.2]])
    p_slate = mu[np.arange(L), every].prod(axis=1)
    reward = EXAMINE[None, :] * ATTRACT[every] * (len(every) * p_slate)[:, None]
    est = pseudo_inverse(reward, TARGET["table"][np.arange(L), every], pscore=mu[np.arange(L), every])
    assert est.value == pytest.approx(float((TARGET["table"] * EXAMINE[:, None] * ATTRACT[None, :]).sum()), abs=1e-12)
    # with the product formula on the uniform-without-replacement logger, PI is biased
    wrong = pseudo_inverse(pbm, TARGET["marginal"], pscore=np.full((len(SLATES), L), 1 / K))
    assert abs(wrong.value - truth(pbm)) > 4e-3  # exact numbers: 5.1e-3 off, the right form 1e-12


# ------------------------------------------------------------------ sampled: seeded, intervals cover


def test_sampled_estimates_are_close_to_the_truth_and_intervals_cover():
    reward_truth = truth(cascade_reward(SLATES))
    covered = {"sips": 0, "rips": 0, "cascade_dr": 0}
    q_hat = np.broadcast_to(ATTRACT * 0.8, (1, L, K))
    for seed in range(1000):
        slates, rows, click = _sampled_log(2000, seed)
        ests = [sips(click, LOGGER["joint"][rows], TARGET["joint"][rows]),
                rips(click, LOGGER["cum"][rows], TARGET["cum"][rows]),
                cascade_dr(click, slates, LOGGER["cum"][rows], TARGET["dist"][rows],
                           np.broadcast_to(q_hat, (len(rows), L, K)).copy())]
        for e in ests:
            covered[e.name] += e.covers(reward_truth)
    for name, c in covered.items():  # 95 % intervals over 1000 seeds: binomial sd 0.7 points
        assert 0.92 <= c / 1000 <= 0.975, (name, c)
    slates, rows, click = _sampled_log(160_000, seed=11)
    big = rips(click, LOGGER["cum"][rows], TARGET["cum"][rows])
    assert abs(big.value - reward_truth) < 4 * big.std_err
    wrong = iips(click, LOGGER["marginal"][rows], TARGET["marginal"][rows])
    assert abs(wrong.value - reward_truth) > 4 * wrong.std_err  # the biased one is caught at this size


def test_bootstrap_interval_is_seeded_and_resamples_slates():
    slates, rows, click = _sampled_log(300, seed=1)
    a = rips(click, LOGGER["cum"][rows], TARGET["cum"][rows], ci="bootstrap", seed=5)
    b = rips(click, LOGGER["cum"][rows], TARGET["cum"][rows], ci="bootstrap", seed=5)
    normal = rips(click, LOGGER["cum"][rows], TARGET["cum"][rows])
    assert a == b and a.n_rounds == 300
    assert a.ci_low < a.value < a.ci_high
    assert a.std_err == pytest.approx(normal.std_err, rel=0.25)


def test_propensities_from_enumerated_slate_probabilities_match_an_independent_plackett_luce():
    from adsim.ope import SlatePscores, all_slates, estimate_slate_all, plackett_luce_probs

    np.testing.assert_array_equal(all_slates(K, L), SLATES)
    probs = plackett_luce_probs(np.tile(np.log(W_LOG) * 1.0 + 7.0, (len(SLATES), 1)), L)  # shifted logits: same policy
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    got = SlatePscores.from_slate_probs(probs, SLATES)
    for field, key in (("marginal", "marginal"), ("cumulative", "cum"), ("joint", "joint"), ("conditional", "dist")):
        np.testing.assert_allclose(getattr(got, field), LOGGER[key], rtol=0, atol=1e-14, err_msg=field)
    np.testing.assert_allclose(got.marginal_table[3], LOGGER["table"], rtol=0, atol=1e-14)
    tgt = SlatePscores.from_slate_probs(plackett_luce_probs(np.tile(np.log(W_TGT), (len(SLATES), 1)), L), SLATES)
    scale = (len(SLATES) * LOGGER["joint"])[:, None]
    ests = estimate_slate_all(pbm_reward(SLATES) * scale, SLATES, got, tgt, pi_logging=None)
    assert set(ests) == {"sips", "iips", "rips"}
    for e in ests.values():  # exact expectations again, through the propensities built here
        assert e.value == pytest.approx(truth(pbm_reward(SLATES)), abs=1e-12)
    with pytest.raises(ValueError, match="not the number of ordered slates"):
        SlatePscores.from_slate_probs(np.full((2, 7), 1 / 7), SLATES[:2])


def test_cumulative_pscore_is_the_running_product():
    np.testing.assert_allclose(cumulative_pscore(LOGGER["cond"]), LOGGER["cum"], rtol=0, atol=1e-15)


# ------------------------------------------------------------------ bad input

R = np.zeros((2, 2))
P = np.full((2, 2), 0.5)


@pytest.mark.parametrize("call, error, match", [
    (lambda: sips([[0.0]], np.ones(1), np.ones(1)), TypeError, "reward must be a numpy array, got list"),
    (lambda: sips(R, np.ones(3), np.ones(2)), ValueError, r"pscore has shape \(3,\), expected \(2,\)"),
    (lambda: sips(R, np.array([0.5, 0.0]), np.ones(2)), ValueError, r"pscore\[1\] == 0.0, must be in \(0, 1\]"),
    (lambda: sips(R, np.ones(2), np.array([1.5, 1.0])), ValueError, r"target\[0\] == 1.5, must be in \[0, 1\]"),
    (lambda: sips(R, np.array([1e-9, 1.0]), np.ones(2)), ValueError, "below the propensity floor"),
    (lambda: iips(np.array([[np.nan, 0.0], [0.0, 0.0]]), P, P), ValueError, r"reward must be finite; reward\[0, 0\]"),
    (lambda: iips(R, P.astype(str), P), TypeError, "pscore must hold real numbers"),
    (lambda: rips(R, np.array([[0.2, 0.5], [0.5, 0.5]]), P), ValueError, r"pscore\[0\] grows from position 0 to 1"),
    (lambda: cascade_dr(R, np.zeros((2, 2), int), P, np.full((2, 2, 3), 0.5), np.zeros((2, 2, 3))), ValueError,
     r"target\[0, 0\] sums to 1.5"),
    (lambda: cascade_dr(R, np.zeros((2, 2)), P, np.full((2, 2, 2), 0.5), np.zeros((2, 2, 2))), TypeError,
     "action must hold integers"),
    (lambda: cascade_dr(R, np.full((2, 2), 2), P, np.full((2, 2, 2), 0.5), np.zeros((2, 2, 2))), ValueError,
     r"action holds 2, must be a candidate index in \[0, 2\)"),
    (lambda: cascade_dr(R, np.zeros((2, 2), int), P, np.full((2, 2, 2), 0.5), np.zeros((2, 2, 3))), ValueError,
     r"q_hat has shape \(2, 2, 3\), expected \(2, 2, 2\)"),
    (lambda: pseudo_inverse(R, P), ValueError, "needs pscore"),
    (lambda: pseudo_inverse(R, P, pscore=P, logging="uniformm"), ValueError, "did you mean 'uniform'"),
    (lambda: pseudo_inverse(R, np.full((2, 2, 3), 0.3), action=np.array([[0, 0], [0, 1]]), logging="uniform"),
     ValueError, r"action\[0\] == \[0, 0\] repeats a candidate"),
    (lambda: pseudo_inverse(R, np.full((2, 2, 2), 0.5), action=np.array([[0, 1], [1, 0]]), logging="uniform"),
     ValueError, "needs more candidates than positions"),
    (lambda: pseudo_inverse(R, np.full((2, 2, 3), 0.3), pscore=P, action=np.array([[0, 1], [1, 0]]),
                            logging="uniform"), ValueError, "marginal propensity 1/K"),
    (lambda: sips(R, np.ones(2), np.ones(2), alpha=1.5), ValueError, "alpha"),
    (lambda: sips(R, np.ones(2), np.ones(2), ci="wald"), ValueError, "unknown ci 'wald'"),
])
def test_bad_input_is_rejected_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------ the OBD slate log (issue 16, point 5)


def _obd_csv(path, rows):
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["timestamp", "item_id", "position", "click", "propensity_score",
                                        "user_feature_0"])
    frame.to_csv(path)
    return path


def test_rows_with_one_timestamp_and_one_user_form_a_page(tmp_path):
    from adsim.fidelity import page_summary, read_obd, slate_log

    t1, t2, t3 = "2019-11-24 00:00:01.000001+00:00", "2019-11-24 00:00:02+00:00", "2019-11-24 00:00:03+00:00"
    path = _obd_csv(tmp_path / "log.csv", [
        (t1, 4, 2, 0, 0.2, "u"), (t1, 7, 1, 1, 0.3, "u"), (t1, 5, 3, 0, 0.4, "u"),  # a complete page, shuffled
        (t2, 1, 1, 0, 0.5, "u"), (t2, 2, 2, 0, 0.5, "v"),  # one timestamp, two users: two pages
        (t3, 3, 3, 1, 0.1, "w"), (t3, 6, 1, 0, 0.6, "w"), (t3, 8, 2, 1, 0.7, "w")])
    log = read_obd(path)
    np.testing.assert_array_equal(log.page, [0, 0, 0, 1, 2, 3, 3, 3])
    summary = page_summary(log)
    assert summary["pages"] == 4 and summary["pages_by_rows"] == {1: 2, 3: 2} and summary["complete_pages"] == 2
    s = slate_log(log)
    np.testing.assert_array_equal(s.item, [[7, 4, 5], [6, 8, 3]])  # ordered by position
    np.testing.assert_array_equal(s.click, [[1, 0, 0], [0, 1, 1]])
    np.testing.assert_allclose(s.pscore, [[0.3, 0.2, 0.4], [0.6, 0.7, 0.1]])
    assert s.timestamp[0] == np.datetime64("2019-11-24T00:00:01.000001", "ns").astype(np.int64)


def test_the_obd_samples_hold_no_complete_slate_and_pseudo_slates_take_row_j_of_each_position():
    pytest.importorskip("obp")
    from adsim.fidelity import obd_sample_path, page_summary, read_obd, slate_log

    log = read_obd(obd_sample_path("random", "all"))
    summary = page_summary(log)
    assert summary["pages"] == 9991 and summary["pages_by_rows"] == {1: 9982, 2: 9} and summary["complete_pages"] == 0
    with pytest.raises(ValueError, match="no complete page of 3 positions"):
        slate_log(log)
    s = slate_log(log, how="by_position")
    counts = np.bincount(log.position)
    assert s.n_slates == counts.min() == 3266 and s.how == "by_position"
    for pos in range(3):
        rows = np.flatnonzero(log.position == pos)[: s.n_slates]
        np.testing.assert_array_equal(s.item[:, pos], log.item[rows])
        np.testing.assert_array_equal(s.click[:, pos], log.click[rows])
    assert (s.pscore == 1 / 80).all()


@pytest.mark.parametrize("with_timestamps", [True, False])
def test_an_obd_slate_log_written_reads_back_identically(tmp_path, with_timestamps):
    import dataclasses

    from adsim.fidelity import SlateLog, read_obd, slate_log, write_obd

    rng = np.random.default_rng(4)
    n = 50
    ts = np.sort(rng.choice(10**18, n, replace=False)).astype(np.int64) if with_timestamps else None
    s = SlateLog(rng.integers(0, 80, (n, 3)), (rng.random((n, 3)) < 0.3).astype(np.int8), rng.random((n, 3)) * 0.9 + 0.05,
                 ts, "made up")
    back = slate_log(read_obd(write_obd(s, tmp_path / "slates.csv")))
    expected = s if with_timestamps else dataclasses.replace(s, timestamp=np.arange(n, dtype=np.int64) * 1000)
    assert back.equals(expected) and back.n_slates == n
    assert not back.equals(dataclasses.replace(expected, click=1 - expected.click))


# ------------------------------------------------------------------ the validation study's parts (issue 16, point 4)


def test_plackett_luce_slate_policy_probabilities():
    from adsim.ope import all_slates, plackett_luce_probs
    from agents.plackett_luce import PlackettLuceSlates

    est = np.array([[0.01, 0.02, 0.04, 0.03, 0.05], [0.05, 0.05, 0.05, 0.05, 0.05]])
    pol = PlackettLuceSlates(0.5)
    pol.reset(K, slate_size=L)
    p = pol.slate_probabilities({"ctr_estimate": est})
    np.testing.assert_allclose(p, plackett_luce_probs(np.log(est) / 0.5, L), rtol=1e-12)
    np.testing.assert_allclose(p[1], 1 / len(all_slates(K, L)), rtol=1e-12)  # equal scores: uniform
    # first position: the top candidate (0.05) with probability 0.05² / Σ est² (weights score^(1/T))
    first = p[0][all_slates(K, L)[:, 0] == 4].sum()
    assert first == pytest.approx(0.05**2 / (est[0] ** 2).sum(), rel=1e-12)
    mix = PlackettLuceSlates(0.5, uniform_mix=1.0)
    mix.reset(K, slate_size=L)
    np.testing.assert_allclose(mix.slate_probabilities({"ctr_estimate": est}), 1 / 60, rtol=1e-12)
    truth = PlackettLuceSlates(1.0, "attraction")
    truth.reset(K, slate_size=L)
    with pytest.raises(ValueError, match=r"reads info\['attraction'\]"):
        truth.slate_probabilities({"ctr_estimate": est})
    with pytest.raises(ValueError, match="temperature"):
        PlackettLuceSlates(0.0)


def test_slate_position_model_is_cross_fitted_per_position():
    from adsim.ope import SlateLogRecord
    from adsim.ope.reward_model import slate_position_model

    est = np.array([[0.1, 0.2, 0.4]] * 4)
    action = np.array([[0, 1], [2, 0], [1, 2], [0, 2]])
    clicks = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    rec = SlateLogRecord(action, clicks, np.full((4, 6), 1 / 6), est, est, np.zeros((4, 6)), np.zeros(4, int), {})
    q = slate_position_model(rec)
    # fold 0 = pages 0, 2 is fitted on pages 1, 3: position 0 shows est 0.4 and 0.1 with clicks 0, 0 -> c = 0;
    # position 1 shows 0.1, 0.4 with clicks 1, 0 -> c = 1 / 0.5 = 2. Fold 1 on pages 0, 2: position 0
    # est 0.1 + 0.2 = 0.3 with 2 clicks -> c = 20/3; position 1 est 0.2 + 0.4 with 1 click -> c = 5/3.
    np.testing.assert_allclose(q[0], [[0, 0, 0], [0.2, 0.4, 0.8]], atol=1e-12)
    np.testing.assert_allclose(q[1], [[2 / 3, 4 / 3, 8 / 3], [1 / 6, 1 / 3, 2 / 3]], atol=1e-12)


def _slate_config(click_model="cascade", seed=0, **kw):
    from pathlib import Path

    import adsim
    from adsim import make_config

    if not (Path(adsim.__file__).parent / "slate.py").is_file():
        pytest.skip("the slate env (adsim/slate.py, branch slate_env) is not in this checkout")

    return make_config("slate", n_candidates=5, slate_size=3, click_model=click_model, n_users=500, seed=seed, **kw)


def test_a_slate_log_of_the_slate_core_is_exact_and_seeded():
    from agents.plackett_luce import PlackettLuceSlates
    from experiments.ope.collect import collect_slate_log, slate_target_probabilities

    cfg = _slate_config()
    uniform = PlackettLuceSlates(uniform_mix=1.0, name="uniform")
    rec = collect_slate_log(uniform, cfg, 3000, num_envs=256, seed=4)
    again = collect_slate_log(uniform, cfg, 3000, num_envs=256, seed=4)
    other = collect_slate_log(uniform, cfg, 3000, num_envs=256, seed=5)
    assert rec.n_pages == 3000 and rec.pi_b.shape == (3000, 60) and rec.clicks.shape == (3000, 3)
    assert all(np.array_equal(a, b) for a, b in zip(rec[:-1], again[:-1]))
    assert not np.array_equal(rec.action, other.action)
    np.testing.assert_allclose(rec.logger().joint, 1 / 60, rtol=1e-12)
    np.testing.assert_allclose(rec.logger().cumulative, np.cumprod([1 / 5, 1 / 4, 1 / 3]) * np.ones((3000, 1)), rtol=1e-12)
    # the logged clicks are draws of the truth: their mean is the logger's true value within 4 SE
    per_page = rec.clicks.sum(axis=1)
    assert abs(per_page.mean() - rec.true_value(rec.pi_b)) < 4 * per_page.std() / np.sqrt(3000)
    # a target's true value: the expected clicks of every slate weighted by the target's probabilities
    target = PlackettLuceSlates(0.1, "attraction")
    probs = slate_target_probabilities(target, rec)
    best = rec.slate_value.max(axis=1).mean()
    assert rec.true_value(rec.pi_b) < rec.true_value(probs) <= best


# ------------------------------------------------------------------ the slate study on the runner (adsim ope-study)
SLATE_STUDY = """
name = "slate_tiny"
seeds = [0, 1]
[scenarios.cascade]
env = "adsim/SlateSelection-v0"
preset = "slate"
n_candidates = 5
slate_size = 3
click_model = "cascade"
n_users = 300
[ope]
logging = ["uniform"]
targets = ["pl", "top"]
sizes = [200, 400]
ci = "bootstrap_t"
num_envs = 100
[policies.uniform]
policy = "random_slate"
[policies.pl]
policy = "plackett_luce"
source = "attraction"
temperature = 0.5
[policies.top]
policy = "top_ucb1"
"""


def _slate_study(text: str = SLATE_STUDY, sets: tuple[str, ...] = ()):
    from experiments.runner.spec import apply_overrides, parse_config

    import tomllib

    _slate_config()
    return parse_config(apply_overrides(tomllib.loads(text), list(sets)), "slate_tiny")


def test_a_slate_ope_study_runs_end_to_end_through_the_cli_and_resumes_identically(tmp_path):
    import pandas as pd

    from experiments.cli import main

    _slate_config()
    (tmp_path / "slate_tiny.toml").write_text(SLATE_STUDY)
    out = tmp_path / "out"
    args = ["ope-study", "--config", str(tmp_path / "slate_tiny.toml"), "--out", str(out), "--jobs", "2",
            "--no-progress"]
    assert main(args) == 0
    summary = pd.read_csv(out / "summary.csv")
    raw = pd.read_csv(out / "estimates.csv.gz")
    # random_slate is the uniform logger: every slate estimator, the pseudo-inverse's uniform form included
    assert list(summary.estimator.unique()) == ["sips", "iips", "rips", "cascade_dr", "pseudo_inverse"]
    assert len(summary) == 2 * 2 * 5 and (summary.seeds == 2).all() and len(raw) == 2 * 2 * 2 * 5
    assert set(raw.target) == {"pl", "top"} and set(raw.n_rounds) == {200, 400}
    assert (raw.ci_low <= raw.estimate).all() and (raw.estimate <= raw.ci_high).all()
    text = (out / "summary.md").read_text()
    assert "Slate off-policy evaluation" in text and "studentised-bootstrap" in text
    assert "| cascade | uniform | pl | 200 | rips |" in text
    import json

    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["ope"]["slate"] is True and meta["config"]["kind"] == "ope"
    files = {name: (out / name).read_bytes() for name in ("summary.csv", "summary.md", "estimates.csv.gz")}
    # an interrupted study: two finished logs lost, the rest resumed; the outputs are byte-identical
    runs = sorted(p for p in (out / "runs").rglob("*") if p.is_file())
    assert len(runs) >= 2
    for p in runs[:2]:
        p.unlink()
    assert main([*args[:-3], "--jobs", "1", "--resume", "--no-progress"]) == 0
    for name, content in files.items():
        assert (out / name).read_bytes() == content, name


def test_a_slate_study_log_equals_the_slate_estimators_on_the_same_log():
    from adsim.ope.reward_model import slate_position_model
    from adsim.ope.slate import SlatePscores, estimate_slate_all
    from agents.registry import make_policy
    from experiments.ope.collect import collect_slate_log
    from experiments.ope.study import make_ope_jobs, run_log

    config = _slate_study(sets=('ope.targets=["pl"]', "ope.sizes=[300]", 'ope.ci="normal"'))
    job = make_ope_jobs(config)[1]  # seed 1
    res = run_log(job)
    env_config = config.scenarios[0].log_config(1)
    target = make_policy("plackett_luce", source="attraction", temperature=0.5)
    rec = collect_slate_log(make_policy("random_slate"), env_config, 300, num_envs=100, seed=1, targets=(target,))
    np.testing.assert_allclose(rec.pi_b, 1 / 60, rtol=1e-12)  # random_slate's enumerated probabilities: uniform
    ests = estimate_slate_all(rec.clicks, rec.action, rec.logger(), SlatePscores.from_slate_probs(rec.pi_targets[0], rec.action),
                              slate_position_model(rec, 2), pi_logging="uniform", seed=1)
    assert list(res.estimate) == [ests[name].value for name in config.ope.reported]
    assert list(res.ci_high) == [ests[name].ci_high for name in config.ope.reported]
    assert np.all(res.truth == rec.true_value(rec.pi_targets[0]))


def test_top_index_policies_give_exact_slate_probabilities_with_ties():
    from adsim.ope.slate import all_slates
    from agents.registry import make_policy

    pol = make_policy("top_ucb1")
    pol.reset(4, slate_size=2, seed=0)
    index = np.array([[3.0, 1.0, 3.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    pol.candidate_index = lambda obs: index  # ties: candidates 0 and 2 share the top index in row 0
    obs = {k: np.zeros((2, 1)) for k in ("user", "context", "campaign", "candidates")}
    obs["ctr_estimate"] = np.zeros((2, 4))
    p = pol.slate_probabilities(obs)
    slates = all_slates(4, 2)
    want0 = np.where(((slates == [0, 2]) | (slates == [2, 0])).all(axis=1), 0.5, 0.0)
    want1 = ((slates == [3, 2]).all(axis=1)).astype(float)
    np.testing.assert_array_equal(p, np.stack([want0, want1]))


@pytest.mark.parametrize("sets, match", [
    (('ope.estimators=["ips"]',), r"ope.estimators entry 'ips' is a one-slot estimator"),
    (('ope.estimators=["dr_true_q"]',), r"ope.estimators entry 'dr_true_q' is a reference"),
    (('ope.logging=["one"]', 'policies.one.policy="random"'), r"ope.logging entry 'one' .* is a one-slot policy"),
    (('ope.targets=["ts"]', 'policies.ts.policy="top_thompson"'), r"ope.targets entry 'ts' .* approximate"),
    (('ope.logging=["pl"]', 'ope.targets=["uniform"]', 'ope.estimators=["sips", "pseudo_inverse"]'),
     r"'pseudo_inverse' needs .* ope.logging entry 'pl' has none"),
    (('ope.estimators=["sips", "sips"]',), r"must be distinct"),
    (('scenarios.one.preset="default"', ), r"scenarios.one is a one-slot scenario and scenarios.cascade a slate"),
])
def test_bad_slate_study_configs_raise_naming_the_key(sets, match):
    with pytest.raises(ValueError, match=match):
        _slate_study(sets=sets)


def test_a_slate_study_without_a_uniform_logger_leaves_the_pseudo_inverse_out():
    config = _slate_study(sets=('ope.logging=["pl"]', 'ope.targets=["uniform"]'))
    assert config.ope.slate and config.ope.reported == ("sips", "iips", "rips", "cascade_dr")


def test_one_slot_studies_refuse_slate_estimators_and_slate_policies():
    import tomllib

    from experiments.runner.spec import apply_overrides, parse_config

    base = tomllib.loads('[scenarios.default]\n[ope]\nlogging = ["random"]\ntargets = ["oracle"]\n'
                         '[policies.random]\n[policies.oracle]\n[policies.pl]\npolicy = "plackett_luce"\n')
    assert not parse_config(base).ope.slate and "slate" not in parse_config(base).ope.to_dict()
    with pytest.raises(ValueError, match=r"ope.estimators entry 'rips' is a slate estimator"):
        parse_config(apply_overrides(base, ['ope.estimators=["ips", "rips"]']))
    with pytest.raises(ValueError, match=r"ope.targets entry 'pl' .* is a slate policy"):
        parse_config(apply_overrides(base, ['ope.targets=["pl"]']))


def test_bootstrap_t_intervals_cover_skewed_means_better_than_normal_ones():
    from adsim.ope.estimators import _summarise

    rng = np.random.default_rng(0)
    mean = np.exp(1.5**2 / 2)
    hits = {"normal": 0, "bootstrap_t": 0}
    for r in range(300):
        x = rng.lognormal(0.0, 1.5, size=60)  # heavily right-skewed, like importance-weighted clicks
        for ci in hits:
            e = _summarise("x", x, None, 0.05, ci, 200, r)
            hits[ci] += e.ci_low <= mean <= e.ci_high
            if ci == "bootstrap_t":  # the studentised interval leans right: its upper arm is the longer one
                assert e.ci_high - e.value > e.value - e.ci_low
    # measured 0.81 (normal) and 0.88 (bootstrap-t); each ±2.3 % over 300 samples, strongly paired
    assert hits["bootstrap_t"] / 300 > hits["normal"] / 300 + 0.04
    big = rng.normal(1.0, 1.0, size=20000)
    # symmetric terms, a large sample: the normal interval, within the quantiles' noise (2,000 replicates: ±0.06 se)
    n, t = _summarise("x", big, None, 0.05, "normal", 200, 1), _summarise("x", big, None, 0.05, "bootstrap_t", 2000, 1)
    assert t == _summarise("x", big, None, 0.05, "bootstrap_t", 2000, 1)  # seeded
    assert t.value == n.value and t.ci_low == pytest.approx(n.ci_low, abs=0.2 * n.std_err)
    assert t.ci_high == pytest.approx(n.ci_high, abs=0.2 * n.std_err)


@pytest.mark.parametrize("logging, target, reported", [
    ("uniform", "oracle", ("sips", "iips", "rips", "cascade_dr", "pseudo_inverse")),  # a deterministic target
    ("lints", "uniform", ("sips", "iips", "rips", "cascade_dr")),  # agents.slate's learners log; no PI form
])
def test_agents_slate_policies_log_and_are_estimated_in_a_slate_study(logging, target, reported):
    from experiments.ope.study import make_ope_jobs, run_log

    config = _slate_study(sets=(f'ope.logging=["{logging}"]', f'ope.targets=["{target}"]', "ope.sizes=[200]",
                                'ope.ci="normal"', 'policies.oracle.policy="oracle_slate"',
                                'policies.lints.policy="top_lin_ts"'))
    assert config.ope.reported == reported
    res = run_log(make_ope_jobs(config)[0])
    assert len(res.estimate) == len(reported) and np.isfinite(res.estimate).all()
    assert np.isfinite(res.ci_low).all() and (res.ci_low <= res.ci_high).all()
    if target == "oracle":  # the oracle's value: the best slate's expected clicks, above the uniform logger's
        assert 0.09 < res.truth[0] < 0.2
