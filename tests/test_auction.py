"""AdAuction: the mechanisms and the regret decomposition worked out by hand, truthful bidding under
second price, quality scores under GSP, the budget rule, and the env's contract (both checkers,
single ≡ vector, determinism, common random numbers, stacked seeds bit for bit, input checks)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from scipy.special import ndtri
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import adsim  # noqa: F401  (registers the envs)
from adsim import rng as crng
from adsim.auction import Auction, AuctionTruth, top_scores
from adsim.auction_core import COMPETITOR_CATEGORY_FACTORS
from adsim.config import make_config
from adsim.observation import CONTEXT_LAYOUT
from adsim.requests import AuctionStreams, SelectionStreams
from conftest import assert_stacked_is_each_seed_alone

ENV_ID = "adsim/AdAuction-v0"
SMALL = {"n_users": 300, "n_products": 40, "n_campaigns": 4}
MECHANISMS = [("second_price", "cpc"), ("second_price", "cpm"), ("gsp", "cpc"), ("first_price", "cpc"),
              ("first_price", "cpm")]


def vec(num_envs: int, seed_world: int = 0, **kw):
    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point",
                        **{**SMALL, "seed": seed_world, **kw})


def truth(thresholds, ctr, pctr, w, budget=np.inf) -> AuctionTruth:
    t = np.asarray(thresholds, dtype=np.float64)
    return AuctionTruth(t, np.asarray(ctr, dtype=np.float64), np.asarray(pctr, dtype=np.float64),
                        np.asarray(w, dtype=np.float64), np.broadcast_to(np.float64(budget), t.shape[:1]).copy())


# ----------------------------------------------------------------- mechanisms by hand
def test_second_price_two_slots_worked_by_hand():
    auc = Auction("second_price", "cpc", reserve=1.0, exposure=(1.0, 0.5))
    d = np.array([[5.0, 3.0]] * 5)
    t = auc.thresholds(d, np.full((5, 1), 0.1))
    assert np.array_equal(t[:, 0], d)  # max(d_l, reserve 1)
    # true CTR 0.1 at the top, 0.05 below; a click is worth 10
    tr = truth(t, np.array([[[0.1, 0.05]]] * 5), np.full((5, 1), 0.1), np.full(5, 10.0))
    out = auc.outcome(tr, np.zeros(5, int), np.array([6.0, 5.0, 4.0, 3.0, 2.0]))
    assert out.slot.tolist() == [0, 0, 1, 1, -1]  # a tie with a competitor's score goes to our ad
    assert out.price.tolist() == [5.0, 5.0, 3.0, 3.0, 0.0]  # the next score below, whatever we bid
    # expected surplus: 0.1·(10 − 5) = 0.5 at the top, 0.05·(10 − 3) = 0.35 below
    assert np.allclose(out.surplus, [0.5, 0.5, 0.35, 0.35, 0.0])
    assert np.allclose(out.cost, [0.5, 0.5, 0.15, 0.15, 0.0])
    h = auc.hindsight(tr)
    assert h.best_bid[0, 0] == 5.0 and h.best_surplus[0, 0] == pytest.approx(0.5)


def test_gsp_better_creative_wins_the_same_slot_at_a_lower_price_by_hand():
    auc = Auction("gsp", "cpc", reserve=3.0, exposure=(1.0, 0.5))
    d = np.array([[0.2, 0.09]])  # competitors' bid × pCTR
    q = np.array([[0.04, 0.02]])  # creative 0's pCTR is twice creative 1's
    t = auc.thresholds(d, q)
    # creative 0: 0.2 / 0.04 = 5, max(0.09 / 0.04 = 2.25, 3) = 3; creative 1: 10, 4.5
    assert np.allclose(t[0], [[5.0, 3.0], [10.0, 4.5]])
    tr = truth(t, np.array([[[0.04, 0.02], [0.02, 0.01]]]), q, [20.0])
    for bid, slots, prices in ((11.0, [0, 0], [5.0, 10.0]), (6.0, [0, 1], [5.0, 4.5]), (4.0, [1, -1], [3.0, 0.0])):
        out = [auc.outcome(tr, [k], [bid]) for k in (0, 1)]
        assert [int(o.slot[0]) for o in out] == slots and [float(o.price[0]) for o in out] == prices


def test_gsp_with_a_zero_pctr_never_wins_a_contested_slot():
    auc = Auction("gsp", "cpc", reserve=0.5, exposure=(1.0, 0.5))
    t = auc.thresholds(np.array([[0.2, 0.0]]), np.array([[0.0, 0.04]]))  # slot 1 has no competitor
    assert t[0].tolist() == [[np.inf, 0.5], [5.0, 0.5]]


def test_first_price_cpm_and_reserve_worked_by_hand():
    fp = Auction("first_price", "cpc", exposure=(1.0, 0.5))
    tr = truth(np.array([[[5.0, 3.0]]]), np.array([[[0.1, 0.05]]]), [[0.1]], [10.0])
    out = fp.outcome(tr, [0], [4.0])
    assert out.slot[0] == 1 and out.price[0] == 4.0 and out.surplus[0] == pytest.approx(0.05 * 6.0)
    assert fp.hindsight(tr).best_bid[0, 0] == 5.0  # first price: the cheapest bid of the best slot
    # second price per impression, reserve 0.4: thresholds max((0.5, 0.3), 0.4) = (0.5, 0.4)
    cpm = Auction("second_price", "cpm", reserve=0.4, exposure=(1.0, 0.5))
    t = cpm.thresholds(np.array([[0.5, 0.3]] * 3), np.ones((3, 1)))
    assert np.allclose(t[:, 0], [0.5, 0.4])
    tr = truth(t, np.array([[[0.1, 0.05]]] * 3), np.ones((3, 1)), np.full(3, 10.0))
    out = cpm.outcome(tr, np.zeros(3, int), [0.35, 0.45, 0.6])
    assert out.slot.tolist() == [-1, 1, 0] and out.price.tolist() == [0.0, 0.4, 0.5]
    # per impression the whole price is paid: 0.05·10 − 0.4 = 0.1, 0.1·10 − 0.5 = 0.5
    assert np.allclose(out.cost, [0.0, 0.4, 0.5]) and np.allclose(out.surplus, [0.0, 0.1, 0.5])


def test_top_scores_and_competitor_scores():
    s = np.array([[1.0, 4.0, 2.0, 3.0]])
    assert top_scores(s, 3).tolist() == [[4.0, 3.0, 2.0]]
    assert top_scores(s[:, :2], 3).tolist() == [[4.0, 1.0, 0.0]]  # fewer competitors than slots: 0
    q = np.array([[0.1, 0.2, 0.3, 0.4]])
    assert np.array_equal(Auction("second_price").competitor_scores(s, q), s)
    assert np.allclose(Auction("gsp").competitor_scores(s, q), s * q)
    assert np.allclose(Auction("first_price", "cpm").competitor_scores(s, q), s * q)  # per-impression bids


class TruePCTR:
    """A platform whose pCTR is every candidate's true attraction (the core's, read when it serves)."""

    core = None

    def reset(self):
        pass

    def estimate(self, request):
        return self.core.attraction.astype(np.float32)

    def observe(self, request, actions, clicks):
        pass


def test_gsp_better_creative_by_true_ctr_wins_the_same_slot_at_a_lower_price_in_the_env():
    n, est = 256, TruePCTR()
    env = vec(n, horizon=20, mechanism="gsp", estimator=est)
    est.core = env.unwrapped.core
    obs, info = env.reset(seed=6)
    for t in range(5):
        a = info["attraction"]
        hi, lo = a.argmax(axis=1), a.argmin(axis=1)
        bid = np.full(n, 1e6)  # the top slot for either (offline: no max_bid)
        better, worse = (env.unwrapped.auction.outcome(info, k, bid) for k in (hi, lo))
        assert np.all(better.slot == 0) and np.all(worse.slot == 0)
        assert np.all(better.price < worse.price)  # the same slot, cheaper per click
        assert np.all(better.ctr > worse.ctr)
        obs, _, _, _, info = env.step({"creative": hi, "bid": info["value_per_click"]})


def test_budget_caps_the_bid_in_outcome_and_hindsight():
    auc = Auction("second_price", "cpc", exposure=(1.0, 0.5))
    tr = truth(np.array([[[5.0, 3.0]]] * 2), np.array([[[0.1, 0.05]]] * 2), np.full((2, 1), 0.1),
               np.full(2, 10.0), budget=4.0)
    out = auc.outcome(tr, [0, 0], [6.0, 2.0])
    assert out.bid.tolist() == [4.0, 2.0] and out.slot.tolist() == [1, -1]  # 6 is used as 4: slot 1
    h = auc.hindsight(tr)  # the top slot's threshold 5 exceeds the budget left: slot 1 at 3
    assert h.best_bid[0, 0] == 3.0 and h.best_surplus[0, 0] == pytest.approx(0.35)


def test_regret_decomposition_worked_by_hand():
    """One slot sold per impression: creative 0 is worth 0.02·10 = 0.2 per impression, creative 1
    0.04·10 = 0.4; the competition's best is 0.3. The platform overestimates creative 0 (pCTR 0.05)."""
    tr = truth(np.array([[[0.3], [0.3]]] * 3), np.array([[[0.02], [0.04]]] * 3), np.array([[0.05, 0.04]] * 3),
               np.full(3, 10.0))
    fp = Auction("first_price", "cpm", exposure=(1.0,))
    h = fp.hindsight(tr)
    assert h.best_surplus[0].tolist() == [0.0, pytest.approx(0.1)] and h.best_bid[0].tolist() == [0.0, 0.3]
    assert h.believed_bid[0].tolist() == [0.3, 0.3]  # creative 0 believed worth 0.5 > 0.3
    assert h.oracle_creative[0] == 1 and h.oracle_surplus[0] == pytest.approx(0.1)
    # (0, 0.5): wins at 0.5: 0.2 − 0.5 = −0.3; total 0.4 = allocation 0.1 (0.1 − 0) + estimation
    # 0.1 (the believed bid 0.3 loses 0.1) + overbidding 0.2 (the rest, above b* = 0)
    # (0, 0.3): the believed bid itself: all of its bidding regret 0.1 is estimation
    # (1, 0.2): loses a profitable slot: underbidding 0.1 (its pCTR is right: no estimation regret)
    r = fp.regret(tr, np.array([0, 0, 1]), np.array([0.5, 0.3, 0.2]), h)
    assert np.allclose(r.total, [0.4, 0.2, 0.1])
    assert np.allclose(r.allocation, [0.1, 0.1, 0.0])
    assert np.allclose(r.estimation, [0.1, 0.1, 0.0])
    assert np.allclose(r.overbid, [0.2, 0.0, 0.0])
    assert np.allclose(r.underbid, [0.0, 0.0, 0.1])
    # second price: bidding 0.5 pays 0.3 like the believed bid: no overbidding, all estimation
    r = Auction("second_price", "cpm", exposure=(1.0,)).regret(tr, np.array([0]), np.array([0.5]))
    assert np.allclose([r.total[0], r.allocation[0], r.estimation[0], r.overbid[0]], [0.2, 0.1, 0.1, 0.0])


@pytest.mark.parametrize("mechanism, pricing", MECHANISMS)
def test_env_regret_parts_sum_to_the_total_and_match_the_offline_scorer(mechanism, pricing):
    n = 256
    # gsp: the platform's cold-start pCTR (1 %) against competitors' 3 % needs cheaper competition
    env = vec(n, horizon=30, mechanism=mechanism, pricing=pricing, budget=3.0, reserve_price=0.05,
              competitor_bid_ratio=0.03 if mechanism == "gsp" else 0.15)
    auc = env.unwrapped.auction
    obs, info = env.reset(seed=1)
    rng = np.random.default_rng(0)
    kinds = set()
    for t in range(40):
        scale = 1.0 if pricing == "cpc" else 0.05
        action = {"creative": rng.integers(0, 8, n), "bid": rng.uniform(0, 2 * scale, n) * info["value_per_click"]}
        if t % 5 == 0:  # the oracle's own action has regret 0
            action = {"creative": info["oracle_creative"], "bid": info["oracle_bid"]}
        expected = auc.outcome(info, action["creative"], action["bid"])
        offline = auc.regret(info, action["creative"], action["bid"])
        obs, reward, _, _, new = env.step(action)
        parts = np.stack([new[f"regret_{p}"] for p in ("allocation", "estimation", "overbid", "underbid")])
        assert np.all(parts >= 0.0) and np.all(new["regret"] >= -1e-15)
        np.testing.assert_allclose(parts.sum(axis=0), new["regret"], rtol=0, atol=1e-12)
        assert np.array_equal(new["regret"], offline.total) and np.array_equal(new["regret_overbid"], offline.overbid)
        assert np.array_equal(new["reward_expected"], expected.surplus) and np.array_equal(new["slot"], expected.slot)
        if t % 5 == 0:
            assert np.all(new["regret"] == 0.0)
        if pricing == "cpc":  # the CTR scales every slot's surplus alike: the pCTR moves no best bid
            assert np.all(new["regret_estimation"] == 0.0)
        kinds |= {p for p, x in zip(("allocation", "estimation", "overbid", "underbid"), parts) if x.max() > 1e-9}
        info = new
    assert kinds >= {"allocation", "overbid", "underbid"} | ({"estimation"} if pricing == "cpm" else set())


# ----------------------------------------------------------------- known answers
@pytest.mark.parametrize("pricing", ["cpc", "cpm"])
def test_truthful_bidding_maximises_surplus_under_second_price(pricing):
    """One slot, no budget: on the realised competition the truthful bid (the value of a click, or of
    an impression under cpm) does at least as well as every shaded bid, strictly worse wherever
    shading changes the allocation; and over a day truthful bidding earns the most surplus."""
    n = 512
    env = vec(n, horizon=100, slate_size=1, n_advertisers=5, pricing=pricing)
    auc = env.unwrapped.auction
    obs, info = env.reset(seed=3)
    factors = (0.5, 0.8, 0.9, 0.95, 1.05, 1.1, 1.25, 2.0)
    changed, realised = 0, np.zeros(len(factors) + 1)
    for t in range(20):
        k = info["oracle_creative"]
        value = info["value_per_click"] * (1.0 if pricing == "cpc" else info["ctr"][np.arange(n), k, 0])
        truthful = auc.outcome(info, k, value)
        for i, f in enumerate(factors):
            shaded = auc.outcome(info, k, f * value)
            assert np.all(shaded.surplus <= truthful.surplus)
            moved = shaded.won != truthful.won
            assert np.all(shaded.surplus[moved] < truthful.surplus[moved])
            assert np.array_equal(shaded.surplus[~moved], truthful.surplus[~moved])  # same slot, same price
            changed += moved.sum()
            realised[i + 1] += shaded.surplus.sum()
        realised[0] += truthful.surplus.sum()
        obs, _, _, _, info = env.step({"creative": k, "bid": value})
    assert changed > 500
    assert realised[0] > realised[1:].max()


def test_gsp_quality_score_lowers_the_price_in_the_env():
    """Under gsp a creative the platform rates higher pays less for the same slot: price × pCTR is the
    competitor's score below, the same for every creative."""
    n = 256
    env = vec(n, horizon=50, mechanism="gsp", target_ctr=0.1)
    obs, info = env.reset(seed=2)
    rng = np.random.default_rng(1)
    for t in range(30):
        _, _, _, _, info = env.step({"creative": rng.integers(0, 8, n), "bid": 5.0 * info["value_per_click"]})
    q = info["ctr_estimate"]
    hi, lo = q.argmax(axis=1), q.argmin(axis=1)
    rows = q[np.arange(n), hi] > q[np.arange(n), lo]
    assert rows.sum() > n // 2
    bid = np.full(n, 1e4)  # enough to win the top slot with either
    a, b = env.unwrapped.auction.outcome(info, hi, bid), env.unwrapped.auction.outcome(info, lo, bid)
    assert np.all(a.slot[rows] == 0) and np.all(b.slot[rows] == 0)
    assert np.all(a.price[rows] < b.price[rows])
    np.testing.assert_allclose(a.price[rows] * q[rows, hi[rows]], info["competition"][rows, 0], rtol=1e-12)


@pytest.mark.parametrize("mechanism, pricing", [("second_price", "cpc"), ("first_price", "cpm")])
def test_budget_is_never_exceeded_and_a_spent_budget_cannot_win(mechanism, pricing):
    n, budget = 64, 20.0
    env = vec(n, horizon=200, budget=budget, mechanism=mechanism, pricing=pricing, target_ctr=0.2)
    obs, info = env.reset(seed=4)
    spent_out = 0
    for t in range(199):
        bid = 3.0 * info["value_per_click"] * (1.0 if pricing == "cpc" else info["ctr"][:, 0, 0])  # overbid
        obs, r, _, _, new = env.step({"creative": info["oracle_creative"], "bid": bid})
        left = info["budget_remaining"]
        assert np.array_equal(new["bid_capped"], bid > left)
        assert np.array_equal(new["bid_used"], np.minimum(bid, left))
        assert np.all(new["spend"] <= left) and np.all(new["spend_total"] <= budget * (1 + 1e-12))  # rounding
        out = left < info["thresholds"].min(axis=(1, 2))  # the budget left is below every slot's price
        assert np.all(~new["won"][out])
        assert np.allclose(obs["budget_left"][:, 0], new["budget_remaining"] / budget, atol=1e-6)
        spent_out += out.sum()
        info = new
    assert spent_out > n  # budgets do run out
    assert np.median(new["spend_total"]) > 0.9 * budget
    assert np.allclose(new["spend_total"] + new["budget_remaining"], budget)
    assert np.allclose(new["surplus_total"], new["value_total"] - new["spend_total"])


def test_cpa_excess_is_spend_beyond_the_cap_per_conversion():
    env = vec(32, horizon=100, cpa_cap=5.0)
    obs, info = env.reset(seed=0)
    for t in range(60):
        obs, r, _, _, info = env.step({"creative": info["oracle_creative"], "bid": 2 * info["value_per_click"]})
    expected = np.maximum(0.0, info["spend_total"] - 5.0 * info["conversions_total"])
    assert np.array_equal(info["cpa_excess"], expected) and expected.max() > 0


# ----------------------------------------------------------------- the env's contract
@pytest.mark.parametrize("kw", [dict(), dict(mechanism="gsp", budget=5.0, mode="personalized"),
                                dict(mechanism="first_price", pricing="cpm", reserve_price=0.01, slate_size=1)])
def test_gymnasium_and_sb3_env_checkers(kw):
    env = gym.make(ENV_ID, **SMALL, horizon=20, **kw).unwrapped
    gym_check_env(env, skip_render_check=True)
    with pytest.warns(UserWarning, match="action space is not based off a numpy array"):  # SB3: Dict actions
        sb3_check_env(env, warn=True)


def test_single_equals_vector_of_one_including_autoreset():
    single = gym.make(ENV_ID, **SMALL, horizon=7, budget=1.0, mechanism="gsp")
    vector = vec(1, horizon=7, budget=1.0, mechanism="gsp")
    o1, i1 = single.reset(seed=5)
    o2, i2 = vector.reset(seed=5)
    rng = np.random.default_rng(0)
    for t in range(16):
        for k in o1:
            assert np.array_equal(o1[k], o2[k][0]), (t, k)
        for k in i1:
            assert np.array_equal(i1[k], i2[k][0]), (t, k)
        k, b = int(rng.integers(0, 8)), float(rng.uniform(0, 5))
        o1, r1, _, tr1, i1 = single.step({"creative": k, "bid": b})
        o2, r2, _, tr2, i2 = vector.step({"creative": np.array([k]), "bid": np.array([b])})
        assert r1 == r2[0] and tr1 == tr2[0] and i1["regret"] == i2["regret"][0]
        if tr1:
            assert np.array_equal(i2["final_obs"]["candidates"][0], o1["candidates"])
            assert i2["final_info"]["spend_total"][0] == i1["spend_total"]
            o1, i1 = single.reset()


def run_policy(env, seed: int, choose, steps: int = 12):
    obs, info = env.reset(seed=seed)
    trace = []
    for t in range(steps):
        action = choose(t, obs, info)
        nobs, reward, _, _, ninfo = env.step(action)
        trace.append((obs, info, action, reward, ninfo))
        obs, info = nobs, ninfo
    return trace


def shaded(alpha: float, seed: int):
    rng = np.random.default_rng(seed)
    return lambda t, obs, info: {"creative": rng.integers(0, 8, obs["value"].shape[0]),
                                 "bid": alpha * info["value_per_click"]}


@pytest.mark.parametrize("mechanism", ["second_price", "gsp"])
def test_vector_env_is_deterministic_under_a_seed(mechanism):
    a = run_policy(vec(16, horizon=5, mechanism=mechanism, budget=1.0), 3, shaded(1.0, 1))
    b = run_policy(vec(16, horizon=5, mechanism=mechanism, budget=1.0), 3, shaded(1.0, 1))
    for (o1, i1, _, r1, n1), (o2, i2, _, r2, n2) in zip(a, b):
        assert all(np.array_equal(o1[k], o2[k]) for k in o1)
        assert np.array_equal(r1, r2) and all(np.array_equal(n1[k], n2[k]) for k in n1 if not k.startswith("final"))


@pytest.mark.parametrize("mechanism", ["second_price", "gsp"])
def test_common_random_numbers_across_policies(mechanism):
    """Two bidders in one seed meet the same users, candidates, truth and competition (the stream's
    lognormal draws, recomputed here); where both win the same slot with the same creative they get
    the same clicks, each the request's click uniform below the true CTR."""
    n, cfg = 64, make_config(**SMALL, horizon=50, target_ctr=0.2, mechanism=mechanism,
                             competitor_bid_ratio=0.15 if mechanism == "second_price" else 0.02)
    env = vec(n, config=cfg)
    one = run_policy(env, 9, shaded(1.0, 2))
    two = run_policy(env, 9, shaded(0.6, 2))  # the same creatives, shaded bids
    keys = crng.stream_keys(9, n)
    core = env.unwrapped.core
    category = core.world.campaign_category[core.campaign]
    same = 0
    for t, ((o1, i1, a1, r1, n1), (o2, i2, a2, r2, n2)) in enumerate(zip(one, two)):
        for k in ("user", "context", "campaign", "candidates", "value"):
            assert np.array_equal(o1[k], o2[k]), (t, k)
        for k in ("attraction", "ctr", "competition", "value_per_click"):  # (gsp: the pCTRs differ)
            assert np.array_equal(i1[k], i2[k]), (t, k)
        # competitor j's bid: median · exp(σ Φ⁻¹(u)), u its stream BID + j at (key, episode 0, step t)
        u = crng.uniforms(keys, np.zeros(n, np.int64), np.full(n, t), 9, offset=AuctionStreams.BID)
        hour = CONTEXT_LAYOUT.argmax(o1["context"], "hour_bucket")
        median = cfg.competitor_bid_ratio * i1["conversion_value"] * np.array(COMPETITOR_CATEGORY_FACTORS)[category] \
            * np.array(cfg.competitor_hour_factors)[hour]
        scores = median[:, None] * np.exp(0.5 * ndtri(u))
        if mechanism == "gsp":  # bid × pCTR, the pCTR lognormal around target_ctr from stream QUALITY + j
            uq = crng.uniforms(keys, np.zeros(n, np.int64), np.full(n, t), 9, offset=AuctionStreams.QUALITY)
            scores = scores * (0.2 * np.exp(0.3 * ndtri(uq)))
        np.testing.assert_allclose(i1["competition"], np.sort(scores)[:, ::-1][:, :3], rtol=1e-12)
        uc = crng.uniforms(keys, np.zeros(n, np.int64), np.full(n, t), 1, offset=SelectionStreams.CLICK)[:, 0]
        for a, nx in ((a1, n1), (a2, n2)):
            ctr = np.where(nx["won"], i1["ctr"][np.arange(n), a["creative"], np.maximum(nx["slot"], 0)], 0.0)
            assert np.array_equal(nx["clicked"], uc < ctr)
        both = (n1["slot"] == n2["slot"]) & n1["won"]
        assert np.array_equal(n1["clicked"][both], n2["clicked"][both])
        same += both.sum()
    assert same > 100


def test_stacked_seeds_reproduce_unstacked_runs_bit_for_bit():
    cfg = make_config(**SMALL, horizon=6, mechanism="gsp", mode="personalized", budget=0.5)
    assert_stacked_is_each_seed_alone(
        ENV_ID, cfg, lambda rng, n: {"creative": rng.integers(0, 8, n), "bid": rng.uniform(0, 3, n)},
        lambda a, g, B: {k: v[g * B:(g + 1) * B] for k, v in a.items()})  # 14 steps: two autoresets


def test_render_shows_the_auction():
    env = gym.make(ENV_ID, **SMALL, render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert "competing scores" in text and "oracle creative" in text and text.count("  [") == 8


@pytest.mark.parametrize("overrides, error, match", [
    (dict(mechanism="gps"), ValueError, "unknown mechanism 'gps'; did you mean 'gsp'"),
    (dict(mechanism="gsp", pricing="cpm"), ValueError, "pricing must be 'cpc'"),
    (dict(n_advertisers=3), ValueError, "n_advertisers == 3 with slate_size == 3 slots and reserve_price == 0"),
    (dict(n_advertisers=33), ValueError, "n_advertisers == 33, must be in \\[1, 32\\]"),
    (dict(budget=0.0), ValueError, "budget == 0.0, must be in \\(0.0"),
    (dict(reserve_price=-1.0), ValueError, "reserve_price == -1.0, must be in \\[0.0"),
    (dict(competitor_category_factors=[1.0, 2.0]), TypeError, "competitor_category_factors must be a list of 8"),
    (dict(competitor_hour_factors=[1.0, 0.0, 1.0, 1.0]), ValueError, "competitor_hour_factors\\[1\\] == 0.0"),
    (dict(slot_factors=(0.5, 1.0, 0.8)), ValueError, "must be non-increasing"),
    (dict(reward="revenue"), ValueError, "an auction's reward is its surplus"),
    (dict(click_model="cascade"), ValueError, "click_model must be 'pbm'"),
])
def test_bad_config_raises_naming_the_parameter(overrides, error, match):
    with pytest.raises(error, match=match):
        gym.make(ENV_ID, **SMALL, **overrides)


@pytest.mark.parametrize("action, error, match", [
    ({"creative": 8, "bid": 1.0}, ValueError, "creative == 8, must be in \\[0, 7\\]"),
    ({"creative": 0, "bid": -0.5}, ValueError, "bid == -0.5, must be a number in \\[0, 200.0\\]"),
    ({"creative": 0, "bid": 250.0}, ValueError, "bid == 250.0, must be a number in \\[0, 200.0\\]"),
    ({"creative": 0, "bid": float("nan")}, ValueError, "bid == nan"),
    ({"creative": 0}, ValueError, "expected exactly \\['bid', 'creative'\\]"),
    ({"creative": 1.5, "bid": 1.0}, TypeError, "creative must be integer"),
    (3, TypeError, "auction actions must be a dict"),
])
def test_bad_action_raises_naming_the_value(action, error, match):
    env = gym.make(ENV_ID, **SMALL).unwrapped
    env.reset(seed=0)
    with pytest.raises(error, match=match):
        env.step(action)
    env.step((2, 1.0))  # a pair is an action too


def test_bad_vector_action_names_the_sub_env():
    venv = vec(3)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="bid == -1.0 \\(sub-env 2\\), must be a number in \\[0, 200.0\\]"):
        venv.step({"creative": np.array([0, 1, 2]), "bid": np.array([1.0, 2.0, -1.0])})
    with pytest.raises(ValueError, match="creative shape \\(2,\\), expected \\(3,\\)"):
        venv.step({"creative": np.array([0, 1]), "bid": np.ones(3)})
    assert venv.action_space.contains({"creative": np.array([0, 1, 2]), "bid": np.ones(3, np.float32)})


def test_perf_auction_suite_prints_json(capsys, monkeypatch):
    import json

    import experiments.perf.auction as auction_perf
    from experiments.cli import main

    monkeypatch.setattr(auction_perf, "_vector", lambda case, mode="pool", n=4096: lambda: n)  # chunks doing nothing
    monkeypatch.setattr(auction_perf, "_single", lambda: lambda: 500)
    assert main(["perf", "--suite", "auction", "--quick"]) == 0
    out = json.loads(capsys.readouterr().out)["auction"]
    assert out["config"] == {"N": 4096, "M": 10, "L": 3, "K": 8, "horizon": 1000, "budget": 50.0}
    assert set(out["meets_target"]) == {"second_price_cpc", "first_price_cpc", "gsp_cpc", "second_price_cpm"}
    assert out["vector_pool_gsp_cpc_N4096_auctions_per_s"]["repeats"] == 3
    assert out["meets_target"]["gsp_cpc"]["cpu"]  # a chunk that does nothing outruns the target


def test_perf_auction_cases_step_the_env():
    import experiments.perf.auction as auction_perf

    chunk = auction_perf._vector({"mechanism": "gsp"}, n=64)
    assert chunk() == 64 and chunk() == 64
    assert auction_perf._single()() == 500
