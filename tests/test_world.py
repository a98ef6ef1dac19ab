"""The hidden world and response model: calibration, learnability, parser, tags, drift, fatigue."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from adsim import make_config
from adsim.config import WorldConfig
from adsim.selection import SelectionCore
from adsim.creative.lexicon import CATEGORIES, LEXICON
from adsim.creative.parser import HeadlineParser
from adsim.creative.sampler import creative_quality
from adsim.world import build_world
from tests.conftest import make_vec


def _random_run(n, steps, seed=0, policy_seed=0, **overrides):
    """Random policy on the vector env: returns clicks, true probs of shown, obs/click logs."""
    env = make_vec(n, horizon=steps, **overrides)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(policy_seed)
    clicks, probs, rows = [], [], []
    for _ in range(steps):
        a = rng.integers(0, env.single_action_space.n, n)
        shown_p = info["click_probs"][np.arange(n), a]
        rows.append((obs["user"], obs["context"], obs["candidates"].reshape(n, -1, 9)[np.arange(n), a]))
        obs, r, _, _, info = env.step(a)
        clicks.append(info["clicked"])
        probs.append(shown_p)
    return np.concatenate(clicks), np.concatenate(probs), rows


@pytest.mark.parametrize("target", [0.005, 0.03, 0.15])
def test_random_policy_ctr_is_calibrated(target):
    n, steps = 1024, 200  # 204,800 impressions
    clicks, probs, _ = _random_run(n, steps, target_ctr=target)
    m = clicks.size
    # Band: β0 is calibrated on a 20,000-request reference sample, so the population mean CTR
    # differs from the target by that sample's error, sd(p)/sqrt(20000); the empirical CTR adds
    # Bernoulli noise sqrt(p(1-p)/m). 4 combined standard errors.
    se = np.sqrt(probs.var() / 20000 + target * (1 - target) / m + probs.var() / m)
    assert abs(clicks.mean() - target) < 4 * se, (clicks.mean(), target, se)
    assert abs(probs.mean() - target) < 4 * np.sqrt(probs.var() / 20000 + probs.var() / m)


def test_interests_make_click_probabilities_vary_across_users():
    core = SelectionCore(make_config("easy", campaign=0), 2048)  # large creative effects: the ranking differs
    core.seed(range(2048))
    core.start_episode()
    p = core.click_probs[:, 0]  # the same creative (arm 0 of campaign 0) for 2,048 requests
    # Sampling noise of a CTR estimated from 1,000 impressions would be sd ≈ sqrt(p/1000) ≈ 0.005;
    # across users the true probability varies far more.
    assert p.std() > 3 * np.sqrt(p.mean() / 1000)
    assert p.std() / p.mean() > 0.5
    # and the ranking of creatives differs across users (personalisation matters)
    best = np.argmax(core.click_probs, axis=1)
    assert np.bincount(best, minlength=8).max() < 0.8 * 2048


def test_observed_features_predict_clicks_better_than_a_constant():
    clicks, _, rows = _random_run(1024, 120, preset="easy")
    onehot = lambda c, nvec: np.concatenate(  # noqa: E731
        [np.eye(k)[c[:, j]] for j, k in enumerate(nvec)], axis=1)
    nvec = list(LEXICON.candidate_nvec) + [9]
    X = np.concatenate([np.concatenate([u, x, onehot(c, nvec)], axis=1) for u, x, c in rows])
    y = clicks.astype(int)
    split = X.shape[0] * 3 // 4
    lr = LogisticRegression(C=1.0, max_iter=300).fit(X[:split], y[:split])
    ll_model = log_loss(y[split:], lr.predict_proba(X[split:])[:, 1])
    ll_const = log_loss(y[split:], np.full(y.size - split, y[:split].mean()))
    assert ll_model < ll_const - 0.002, (ll_model, ll_const)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_parser_round_trips_random_headlines(language):
    parser = HeadlineParser(language)
    rng = np.random.default_rng(0)
    for _ in range(500):
        ids = tuple(int(i) for i in rng.integers(0, LEXICON.n_phrases, rng.integers(1, 5)))
        parsed = parser.parse(parser.render(ids))
        assert parsed.phrases == ids and parsed.n_unparsed == 0


def test_parser_counts_malformed_and_off_product_text():
    parser = HeadlineParser("en")
    p = parser.parse("20% off wireless headphones blorp zzz ends tonight!")
    assert p.n_unparsed == 2 and len(p.phrases) == 3
    ids = np.zeros((1, 9), dtype=np.int64)
    ids[0, :3] = np.array(p.phrases) + 1
    ids[0, -1] = p.unparsed_reported
    electronics, books = CATEGORIES.index("electronics"), CATEGORIES.index("books")
    flags_ok = creative_quality(ids, np.array(electronics))
    flags_off = creative_quality(ids, np.array(books))
    assert flags_ok[0, 0] == 0 and flags_off[0, 0] == 1  # off-product
    assert flags_ok[0, 3] == 2  # unparsed tokens
    assert parser.parse("zzz").phrases == () and parser.parse("zzz").n_unparsed == 1
    with pytest.raises(TypeError, match="text must be str"):
        parser.parse(3)


def test_quality_penalty_lowers_click_probability():
    """A malformed / off-product headline earns a lower true CTR than its clean version."""
    core = SelectionCore(make_config(campaign=0), 256)
    core.seed(range(256))
    core.start_episode()
    from adsim.response import creative_static_logit

    w = core.world
    clean = core.pools[0][:1].copy()
    bad = clean.copy()
    bad[0, -1] = 3  # three unparsed tokens
    goal, cat = w.campaign_goal[0], w.campaign_category[0]
    assert creative_static_logit(w, bad, goal, cat)[0] < creative_static_logit(w, clean, goal, cat)[0] - 1.0


@pytest.mark.parametrize("tagger", ["kmeans", "lda"])
def test_interest_tags_are_derived_from_history(tagger):
    w = build_world(make_config(n_users=400, tagger=tagger).world)
    assert w.user_tags.shape == (400, 8)
    assert np.all(w.user_tags >= 0) and np.all(w.user_tags <= 1)
    # tags carry the segment: users of one segment share dominant tags more than chance
    top = w.user_tags.argmax(1)
    purity = np.mean([np.bincount(top[w.user_segment == s]).max() / (w.user_segment == s).sum()
                      for s in np.unique(w.user_segment)])
    assert purity > 0.3
    assert w.user_history[..., 0].sum() > 400 * 10


def test_demographics_correlate_with_segment_but_do_not_equal_it():
    w = build_world(make_config().world)
    seg, age = w.user_segment, w.user_demographics[:, 0]
    table = np.zeros((seg.max() + 1, 6))
    np.add.at(table, (seg, age), 1)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = ((table - expected) ** 2 / np.maximum(expected, 1e-9)).sum()
    assert chi2 > 100  # strongly dependent (df = 25)
    assert (table > 0).sum(1).min() >= 3  # but each segment spans several age bands


def test_drift_changes_probabilities_over_time_only_when_enabled():
    def mean_p_at(time_offset, amp):
        cfg = make_config("easy", campaign=0, drift_amplitude=amp, drift_period=1000, horizon=1000)
        core = SelectionCore(cfg, 512)
        core.seed(range(512))
        core.start_episode()
        for _ in range(time_offset):
            core.step(np.zeros(512, dtype=int))
        return core.click_probs.mean(0)

    assert np.allclose(mean_p_at(0, 0.0), mean_p_at(0, 0.0))
    drift = np.abs(mean_p_at(0, 1.5) - mean_p_at(250, 1.5)).max()
    still = np.abs(mean_p_at(0, 0.0) - mean_p_at(250, 0.0)).max()
    assert drift > 3 * still


def test_fatigue_grows_with_repeated_exposure_and_decays():
    cfg = make_config(campaign=0, n_users=16, fatigue_strength=0.5, fatigue_halflife=50.0, horizon=400)
    core = SelectionCore(cfg, 1)
    core.seed([0])
    core.start_episode()
    base = SelectionCore(make_config(campaign=0, n_users=16, horizon=400), 1)
    base.seed([0])
    base.start_episode()
    ratios = []
    for t in range(120):
        ratios.append(core.click_probs[0, 0] / base.click_probs[0, 0])
        core.step(np.zeros(1, dtype=int))
        base.step(np.zeros(1, dtype=int))
    assert ratios[0] == pytest.approx(1.0)
    assert np.mean(ratios[60:]) < 0.8  # arm 0 shown over and over: fatigued
    # after a long pause (other arms), fatigue on arm 0's attributes decays back
    for t in range(250):
        core.step(np.full(1, 7))
        base.step(np.full(1, 7))
    assert (core.pools[0][0][4:8] != core.pools[0][7][4:8]).all()  # arm 7 shares no attribute with arm 0
    # after 250 impressions (5 half-lives) the memory has decayed: ≈ 0.99 here, 0.13 without decay
    assert core.click_probs[0, 0] / base.click_probs[0, 0] > 0.8


def test_vectorised_row_draws_equal_numpy_row_by_row():
    # build_world draws a Dirichlet vector and demographic categories per user without a Python loop;
    # the numbers must be exactly those of rng.dirichlet(row) / rng.choice(k, p=row) in order
    from adsim.world import _choice_rows, _dirichlet_rows

    rng = np.random.default_rng(0)
    for alpha in (rng.uniform(0.05, 3.0, (50, 7)), 12 * rng.dirichlet(np.full(256, 0.3), 20) + 0.08,
                  np.full((5, 4), 0.05)):  # the last: every alpha < 0.1, NumPy's stick-breaking branch
        a, b = np.random.default_rng(7), np.random.default_rng(7)
        assert np.array_equal(_dirichlet_rows(a, alpha), np.stack([b.dirichlet(row) for row in alpha]))
        assert a.random() == b.random()  # both streams consumed the same draws
    p = rng.dirichlet(np.full(5, 0.7), 300)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert np.array_equal(_choice_rows(a, p), [b.choice(5, p=row) for row in p])
    assert a.random() == b.random()


def test_slot_factors_and_shares_are_world_parameters():
    """WorldConfig.slot_factors scale the click probability of each ad slot and slot_shares are the
    slots' shares of requests; the random-policy CTR still meets target_ctr."""
    from adsim.observation import ad_slot

    factors, shares = (1.0, 0.5, 0.2), (0.2, 0.3, 0.5)
    cfg = make_config("personalized", slot_factors=factors, slot_shares=shares)
    env = make_vec(4096, config=cfg)
    obs, info = env.reset(seed=1)
    slots, probs, clicks = [], [], []
    for _ in range(6):
        slots.append(ad_slot(obs["context"]))
        probs.append(info["click_probs"].mean(axis=1))
        obs, reward, _, _, info = env.step(np.random.default_rng(len(slots)).integers(0, 8, 4096))
        clicks.append(reward)
    slot, p, clicked = np.concatenate(slots), np.concatenate(probs), np.concatenate(clicks)
    share = np.bincount(slot, minlength=3) / slot.size
    np.testing.assert_allclose(share, shares, atol=4 * np.sqrt(0.25 / slot.size))
    # the users and creatives do not depend on the slot: mean click prob per slot ∝ its factor
    ratio = np.array([p[slot == s].mean() for s in range(3)]) / p[slot == 0].mean()
    np.testing.assert_allclose(ratio, np.array(factors) / factors[0], rtol=0.12)
    assert abs(clicked.mean() - cfg.world.target_ctr) < 4 * np.sqrt(0.03 / clicked.size)
    # the default is today's constants, and other values make another world
    assert make_config().world.slot_factors == (1.0, 0.75, 0.55)
    assert build_world(cfg.world).fingerprint != build_world(make_config("personalized").world).fingerprint


@pytest.mark.parametrize("changes, err, match", [
    ({"slot_factors": (1.0, 0.5)}, TypeError, r"slot_factors must be a list of 3 numbers"),
    ({"slot_factors": (1.0, 0.0, 0.5)}, ValueError, r"slot_factors\[1\] == 0.0, must be in \(0.0, 1.0\]"),
    ({"slot_factors": (1.0, 1.5, 0.5)}, ValueError, r"slot_factors\[1\] == 1.5"),
    ({"slot_factors": "1,1,1"}, TypeError, r"slot_factors must be a list"),
    ({"slot_shares": (0.5, 0.5, 0.5)}, ValueError, r"slot_shares == \[0.5, 0.5, 0.5\], must sum to 1"),
    ({"slot_shares": (1.0, -0.0001, 0.0001)}, ValueError, r"slot_shares\[1\] == -0.0001, must be in \[0.0, 1.0\]"),
])
def test_bad_slot_parameters_are_rejected(changes, err, match):
    with pytest.raises(err, match=match):
        WorldConfig(**changes)
