"""Tests of the generator's truth-based evaluation: the personalisation lift, the paired bootstrap
and the fair baselines (a tiny world, no model: the whole file runs in a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from adsim.config import WorldConfig
from adsim.generator.conditioning import sample_requests, teacher
from adsim.generator.evaluate import (BASELINES, fair_baselines, oracle_creatives, other_user_permutation,
                                      paired_bootstrap, personalisation_lift, true_ctr)
from adsim.world import cached_world

SMALL = dict(n_users=400, n_products=60, n_campaigns=6, n_interest_tags=4)
BETA0 = -3.5  # any fixed intercept: every comparison below uses the same one
K = 8


@pytest.fixture(scope="module")
def world():
    return cached_world(WorldConfig(**SMALL))


@pytest.fixture(scope="module")
def req(world):
    return sample_requests(world, 600, np.random.default_rng(5))


@pytest.fixture(scope="module")
def template(world, req):
    rng = np.random.default_rng(6)
    return teacher(world, world.config.n_interest_tags).candidates(
        rng.random((len(req["user"]), K, 9)), req["goal"], req["category"], world.user_features[req["user"]])


# ----------------------------------------------------------------------------- other-user partners
def test_partners_are_another_user_of_the_same_campaign(req):
    partner = other_user_permutation(req, seed=0)
    ok = partner >= 0
    assert ok.mean() > 0.95  # 600 requests of 6 campaigns among 400 users: few same-user pairs
    assert np.all(partner[ok] != np.flatnonzero(ok))
    assert np.array_equal(req["campaign"][partner[ok]], req["campaign"][ok])
    assert np.all(req["user"][partner[ok]] != req["user"][ok])
    assert len(np.unique(partner[ok])) == ok.sum()  # a permutation: each creative set shown once
    assert np.array_equal(other_user_permutation(req, seed=0), partner)  # seeded
    assert not np.array_equal(other_user_permutation(req, seed=1), partner)


def test_partners_by_item_and_goal_for_synthetic_campaigns_and_none_when_alone():
    # synthetic campaigns (id -1) group by advertised item and goal; a lone request has no partner
    req = {"user": np.array([0, 1, 2, 3, 4]), "campaign": np.full(5, -1), "product": np.array([7, 7, 7, 8, 7]),
           "goal": np.array([0, 0, 1, 0, 0])}
    partner = other_user_permutation(req, seed=3)
    assert partner[2] == -1 and partner[3] == -1
    assert sorted(partner[[0, 1, 4]]) == [0, 1, 4] and np.all(partner[[0, 1, 4]] != [0, 1, 4])


def test_partner_with_the_same_user_is_dropped():
    req = {"user": np.array([5, 5]), "campaign": np.array([0, 0]), "product": np.array([1, 1]),
           "goal": np.array([0, 0])}
    assert np.array_equal(other_user_permutation(req), [-1, -1])


# ----------------------------------------------------------------------------- personalisation lift
def test_lift_of_creatives_written_for_their_own_user_is_positive(world, req):
    # the oracle creative maximises the true CTR of its own request among well-formed creatives,
    # and another request's oracle creative of the same campaign is one of those: own >= other on
    # every request, so the lift is positive and its interval excludes 0
    orc = oracle_creatives(world, req)
    out = personalisation_lift(world, BETA0, req, orc, seed=0)
    partner = other_user_permutation(req, seed=0)
    ok = partner >= 0
    rows = {k: v[ok] for k, v in req.items()}
    own, other = true_ctr(world, BETA0, rows, orc[ok])[:, 0], true_ctr(world, BETA0, rows, orc[partner[ok]])[:, 0]
    assert np.all(own >= other - 1e-12)
    assert out["n_pairs"] == ok.sum()
    assert out["own_user_ctr"] == pytest.approx(own.mean()) and out["other_user_ctr"] == pytest.approx(other.mean())
    assert out["lift"] > 0.05 and out["ci95"][0] > 0 and out["diff_ci95"][0] > 0


def test_lift_of_user_independent_creatives_is_exactly_zero(world, req):
    # each campaign's creatives are the same for every request: swapping users changes nothing
    n = len(req["user"])
    first = {c: np.flatnonzero(req["campaign"] == c)[0] for c in np.unique(req["campaign"])}
    orc = oracle_creatives(world, req)
    same = np.repeat(orc[[first[c] for c in req["campaign"]]], 3, axis=1)  # (n, 3, S)
    assert same.shape[0] == n
    out = personalisation_lift(world, BETA0, req, same, seed=2)
    assert out["lift"] == 0.0 and out["diff"] == 0.0
    assert out["ci95"] == [0.0, 0.0] and out["diff_ci95"] == [0.0, 0.0]


def test_lift_is_seeded(world, req, template):
    a = personalisation_lift(world, BETA0, req, template, seed=4)
    assert a == personalisation_lift(world, BETA0, req, template, seed=4)
    assert a["other_user_ctr"] != personalisation_lift(world, BETA0, req, template, seed=5)["other_user_ctr"]


# ----------------------------------------------------------------------------- paired bootstrap
def test_paired_bootstrap_of_a_constant_ratio_has_no_width():
    b = np.random.default_rng(0).uniform(0.01, 0.05, 500)
    out = paired_bootstrap(1.1 * b, b)
    assert out["lift"] == pytest.approx(0.1)
    assert out["ci95"] == pytest.approx([0.1, 0.1])  # every resample has ratio 1.1 exactly
    assert out["diff_ci95"][0] <= out["diff"] <= out["diff_ci95"][1]


def test_paired_bootstrap_pairing_removes_the_shared_spread():
    # a and b share a large per-request spread and differ by a small constant: paired, the
    # difference's interval is a point; the relative lift is positive and tight
    rng = np.random.default_rng(1)
    b = rng.uniform(0.01, 0.1, 400)
    out = paired_bootstrap(b + 0.001, b)
    assert out["diff_ci95"] == pytest.approx([0.001, 0.001])
    assert 0 < out["ci95"][0] <= out["lift"] <= out["ci95"][1]
    noise = paired_bootstrap(rng.uniform(0.01, 0.1, 400), rng.uniform(0.01, 0.1, 400))  # same mean
    assert noise["ci95"][0] < 0 < noise["ci95"][1]


# ----------------------------------------------------------------------------- fair baselines
def test_fair_baselines_ordering_by_construction(world, req, template):
    rng = np.random.default_rng(7)
    generated = template[rng.permutation(len(req["user"]))]  # any creatives of the right shape
    noisy = lambda c: rng.random(c.shape[:2])  # noqa: E731  (a learned model that knows nothing)
    out = fair_baselines(world, BETA0, req, generated, template, noisy(generated), noisy(template), seed=0)
    t = out["true_ctr"]
    assert set(BASELINES) <= set(t)
    assert t["template_truth_pick"] >= t["template_mean"] and t["template_truth_pick"] >= t["template_model_pick"]
    assert t["lexicon_best"] >= t["template_truth_pick"]  # (d) >= (c): the oracle is the best well-formed creative
    assert t["generated_truth_pick"] >= t["generated_model_pick"]
    assert set(out["generated_model_pick_vs"]) == set(BASELINES)
    assert out["share_of_lexicon_best"]["lexicon_best"] == pytest.approx(1.0)


def test_fair_baselines_truth_as_the_model_picks_the_truth_and_does_not_overestimate(world, req, template):
    p = true_ctr(world, BETA0, req, template)
    out = fair_baselines(world, BETA0, req, template, template, p, p, seed=0)
    t = out["true_ctr"]
    assert t["template_model_pick"] == pytest.approx(t["template_truth_pick"])
    assert out["reward_hacking"]["template_model_pick"]["overestimate"] == pytest.approx(0.0, abs=1e-12)
    assert out["generated_model_pick_vs"]["template_model_pick"]["lift"] == pytest.approx(0.0, abs=1e-12)
    # a model that overestimates every candidate twofold picks the same ones and says +100 %
    out2 = fair_baselines(world, BETA0, req, template, template, 2 * p, 2 * p, seed=0)
    assert out2["reward_hacking"]["generated_model_pick"]["overestimate"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- bad input
def test_bad_input_names_the_parameter(world, req, template):
    n = len(req["user"])
    s = np.zeros((n, K))
    with pytest.raises(ValueError, match="creatives has shape"):
        personalisation_lift(world, BETA0, req, template[:10])
    with pytest.raises(ValueError, match="n_boot"):
        personalisation_lift(world, BETA0, req, template, n_boot=5)
    with pytest.raises(ValueError, match="'campaign'"):
        other_user_permutation({"user": req["user"], "product": req["product"], "goal": req["goal"]})
    with pytest.raises(ValueError, match="seed"):
        other_user_permutation(req, seed=-1)
    with pytest.raises(ValueError, match="need >= 2"):
        one = {k: v[:1] for k, v in req.items()}
        personalisation_lift(world, BETA0, one, template[:1])
    with pytest.raises(ValueError, match="template has shape"):
        fair_baselines(world, BETA0, req, template, template[:, :, :3][:5], s, s)
    with pytest.raises(ValueError, match="generated_scores has shape"):
        fair_baselines(world, BETA0, req, template, template, s[:, :3], s)
    with pytest.raises(ValueError, match="a and b have shapes"):
        paired_bootstrap(np.ones(3), np.ones(4))


def test_train_generator_tables_show_every_baseline_and_lift(world, req, template):
    from experiments.commands.train_generator import BASELINE_ROWS, evaluation_table

    p = true_ctr(world, BETA0, req, template)
    fb = fair_baselines(world, BETA0, req, template, template, p, p, seed=0)
    lift = personalisation_lift(world, BETA0, req, template, seed=0)
    text = evaluation_table({"fair_baselines": {"finetuned": fb},
                             "personalisation_lift": {"template": lift, "finetuned": {"full": lift}}})
    for _, label in BASELINE_ROWS:
        assert label in text
    assert f"{100 * fb['true_ctr']['lexicon_best']:.2f} %" in text
    assert f"{lift['lift']:+.1%} [{lift['ci95'][0]:+.1%}, {lift['ci95'][1]:+.1%}]" in text
