"""Bidding policies (``agents.bidding``): known answers on a small batched synthetic auction.

The auction (:class:`Auction`, here in the test, with explicit seeded competition): each step N
requests arrive, each with a value per click ``v`` (lognormal), K candidate creatives with the
platform's CTR estimate, and the best score of 4 competitors per impression (lognormal, optionally
waving over the day). The competition and the click coins come from their own streams, so every
bidder faces the same competition (common random numbers). Mechanisms: second price and first
price per impression (one slot), and generalised second price per click with quality score (rank
by bid × pCTR, L slots). A budget, when set, is the campaign's for the day (T steps): a step that
starts with nothing left wins nothing; the step that crosses zero is charged in full (so overshoot
is measurable).

Known answers: under second price without budget, truthful bidding earns the most surplus of a
sweep of shading factors (on the same competition) and the learned shader settles on ≈ 1; under
first price the learned shader converges to the best-response factor of the same competition
(grid search); the PID and primal–dual pacers spend 95–100 % of a binding budget by the day's end
(≤ 105 %) while the truthful bidder runs out by τ = 0.75; under GSP with quality score the
better creative wins more often and pays less per click.
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from agents.base import Policy
from agents.bidding import (BidOutcome, DualPacer, LearnedShader, PIDPacer, ShadedBidder, TruthfulBidder,
                            as_outcome, bid_inputs)
from agents.registry import POLICIES, make_policy

COMPETITORS = 4
CVR = 0.1
"""The conversion rate per click: the observed value of a conversion is the value of a click / CVR."""


class Auction:
    """The synthetic auction of the module docstring: N requests a step, T steps a day."""

    def __init__(self, mechanism="second", n=512, steps=100, budget=None, seed=3, k=3, slots=1, wave=0.0):
        self.mechanism, self.n, self.steps, self.k, self.slots = mechanism, n, steps, k, slots
        self.budget, self.seed, self.wave = budget, seed, wave

    def reset(self):
        self.t, self.spent = 0, np.zeros(self.n)
        req, comp, click = np.random.SeedSequence(self.seed).spawn(3)
        self.rng_req, self.rng_comp, self.rng_click = map(np.random.default_rng, (req, comp, click))
        self.left = np.full(self.n, np.inf if self.budget is None else float(self.budget))
        self._draw()
        return self.obs()

    def _draw(self):
        n, k = self.n, self.k
        self.value = self.rng_req.lognormal(0.0, 0.5, n)
        self.ctr = self.rng_req.uniform(0.01, 0.05, (n, k))
        scale = 1.0 + self.wave * np.sin(2 * np.pi * self.t / self.steps)
        self.comp = scale * self.rng_comp.lognormal(np.log(0.03), 0.6, (n, COMPETITORS))  # scores per impression
        self.u = self.rng_click.random((n, 2))

    def obs(self):
        n, k = self.n, self.k
        return {"user": np.zeros((n, 1)), "context": np.zeros((n, 1)), "campaign": np.zeros((n, 1)),
                "candidates": np.zeros((n, k)), "ctr_estimate": self.ctr.copy(),
                "value": (self.value / CVR)[:, None], "cvr_estimate": np.full((n, 1), CVR),
                "day_left": np.full((n, 1), 1.0 - self.t / self.steps),
                "budget_left": (np.ones(n) if self.budget is None else self.left / self.budget)[:, None]}

    def step(self, action):
        c = np.asarray(action["creative"])
        b = np.minimum(np.asarray(action["bid"], float), self.left)  # as the env: a bid is capped at the budget left
        n = self.n
        pctr = self.ctr[np.arange(n), c]
        active = self.left > 0
        if self.mechanism in ("second", "first"):
            d = self.comp.max(axis=1)
            won = active & (b > d)
            price = np.where(won, d if self.mechanism == "second" else b, 0.0)
            slot = np.where(won, 0, -1)
            clicked = won & (self.u[:, 0] < pctr)
            spend = price
        else:  # GSP, bids per click ranked by bid × pCTR against the competitors' scores
            score = b * pctr
            srt = -np.sort(-self.comp, axis=1)
            above = (srt > score[:, None]).sum(axis=1)
            won = active & (above < self.slots)
            price = np.where(won, srt[np.arange(n), np.minimum(above, COMPETITORS - 1)] / pctr, 0.0)
            slot = np.where(won, above, -1)
            clicked = won & (self.u[:, 0] < pctr)
            spend = np.where(clicked, price, 0.0)
        self.spent = self.spent + spend
        self.left = self.left - spend
        self.last = {"value": self.value * pctr, "d": self.comp.max(axis=1), "pctr": pctr}
        out = BidOutcome(won, slot, price, clicked, clicked & (self.u[:, 1] < 0.1), spend, self.left.copy())
        self.t += 1
        self._draw()
        return self.obs(), out


def run(policy, env, seed=1):
    """A day of ``policy`` on ``env``: (surplus, (T, N) cumulative spend of each row, per-step records)."""
    policy.reset(env.k, seed=seed)
    obs, surplus, curve, steps = env.reset(), 0.0, [], []
    for _ in range(env.steps):
        action = policy.select_bids(obs)
        nxt, out = env.step(action)
        surplus += float((out.won * env.last["value"]).sum() - out.spend.sum())
        policy.update_bids(obs, action, out)
        curve.append(env.spent)
        steps.append((action, out, dict(env.last)))
        obs = nxt
    return surplus, np.array(curve), steps


def swept_surplus(steps, factors, mechanism):
    """Surplus of each fixed shading factor on the recorded competition (values and best competing
    score per request do not depend on our bids: common random numbers)."""
    v = np.concatenate([s[2]["value"] for s in steps])
    d = np.concatenate([s[2]["d"] for s in steps])
    out = []
    for f in factors:
        win = f * v > d
        out.append(((v - (d if mechanism == "second" else f * v)) * win).sum())
    return np.array(out)


# ---------------------------------------------------------------------------------------------- second price
def test_second_price_truthful_maximises_surplus():
    env = Auction("second", steps=40)
    truthful, _, steps = run(TruthfulBidder(pricing="cpm"), env)
    factors = np.round(np.arange(0.5, 1.51, 0.05), 2)
    swept = swept_surplus(steps, factors, "second")
    assert factors[np.argmax(swept)] == 1.0
    assert truthful == pytest.approx(swept[factors == 1.0][0], rel=1e-9)  # the agent bid exactly v × pCTR
    for f in (0.9, 1.1):  # any shading loses: ≥ 1 % at ±10 % here
        assert swept[factors == f][0] < 0.99 * truthful
    shaded, _, _ = run(ShadedBidder(factor=0.8, pricing="cpm"), env)
    assert shaded < 0.95 * truthful


def test_second_price_learned_factor_is_one():
    grid = tuple(np.round(np.arange(0.5, 1.51, 0.1), 2))
    policy = LearnedShader(grid=grid, pricing="cpm")
    run(policy, Auction("second", steps=100))
    assert policy.best_factor()[0] == pytest.approx(1.0, abs=0.1 + 1e-9)


# ---------------------------------------------------------------------------------------------- first price
def test_first_price_shader_converges_to_best_response():
    env = Auction("first", steps=120)
    policy = LearnedShader(pricing="cpm")
    surplus, _, steps = run(policy, env)
    grid = np.array(policy.grid)
    swept = swept_surplus(steps, grid, "first")
    best = grid[np.argmax(swept)]  # the best response to this competition, by grid search
    assert 0.5 <= best <= 0.8  # shading pays: truthful earns nothing under first price
    assert policy.best_factor()[0] == pytest.approx(best, abs=0.05 + 1e-9)
    late = swept_surplus(steps[60:], grid, "first").max()
    earned = sum(float((o.won * r["value"]).sum() - o.spend.sum()) for _, o, r in steps[60:])
    assert earned >= 0.97 * late
    assert swept[grid == 1.0][0] == 0.0 and surplus > 0.9 * swept.max()


# ---------------------------------------------------------------------------------------------- pacing
DAY = {"n": 32, "steps": 1500}
"""The pacing tests' days: 32 campaign-days (rows) of 1,500 requests each."""


@pytest.mark.parametrize("wave", [0.0, 0.5])
def test_pacers_spend_a_binding_budget_by_the_end_of_the_day(wave):
    _, free, _ = run(TruthfulBidder(pricing="cpm"), Auction("second", wave=wave, **DAY))
    budget = 0.4 * free[-1].mean()  # binding: 40 % of what an unpaced day spends
    tau = np.arange(1, DAY["steps"] + 1) / DAY["steps"]
    truthful, curve, _ = run(TruthfulBidder(pricing="cpm"), Auction("second", budget=budget, wave=wave, **DAY))
    assert np.all(curve[int(0.75 * DAY["steps"])] >= 0.99 * budget)  # unpaced, the budget is gone by τ = 0.75
    for policy in (PIDPacer(pricing="cpm"), DualPacer(pricing="cpm")):
        surplus, curve, _ = run(policy, Auction("second", budget=budget, wave=wave, **DAY))
        end = curve[-1] / budget
        assert np.all((end >= 0.95) & (end <= 1.0)), (policy.name, end.min(), end.max())
        ahead = (curve / budget - tau[:, None]).max()  # never more than 5 % of the budget ahead of the curve
        assert ahead <= 0.05, (policy.name, ahead)
        assert surplus > 1.05 * truthful, policy.name  # cheap late auctions beat an early stop


def test_pacers_without_binding_budget_bid_truthfully():
    _, free, _ = run(TruthfulBidder(pricing="cpm"), Auction("second", **DAY))
    for policy in (PIDPacer(pricing="cpm"), DualPacer(pricing="cpm")):
        _, curve, steps = run(policy, Auction("second", budget=3.0 * free[-1].max(), **DAY))
        late = np.concatenate([a["bid"] for a, _, _ in steps[200:]])
        truth = np.concatenate([r["value"] for _, _, r in steps[200:]])
        assert np.mean(late / truth) > 0.9, policy.name


# ---------------------------------------------------------------------------------------------- GSP
class WorstCreative(Policy):
    """Shows the candidate of the lowest CTR estimate (for the GSP comparison)."""

    name = "worst"
    stackable = True

    def probabilities(self, obs, info=None):
        est = obs["ctr_estimate"]
        p = np.zeros(est.shape)
        p[np.arange(est.shape[0]), np.argmin(est, axis=1)] = 1.0
        return p


def test_gsp_better_creatives_win_cheaper():
    results = {}
    for name, creative in (("best", "greedy"), ("worst", WorstCreative())):
        env = Auction("gsp", slots=2, steps=20)
        _, _, steps = run(TruthfulBidder(creative=creative, pricing="cpc"), env)
        won = np.concatenate([o.won for _, o, _ in steps])
        price = np.concatenate([o.price for _, o, _ in steps])
        slot = np.concatenate([o.slot for _, o, _ in steps])
        bid = np.concatenate([a["bid"] for a, _, _ in steps])
        results[name] = won, price, slot, bid
    wb, pb, sb, bb = results["best"]
    ww, pw, sw, bw = results["worst"]
    np.testing.assert_array_equal(bb, bw)  # per click both bid the value: the creative alone differs
    assert wb.mean() > 1.2 * ww.mean()
    both = wb & ww & (sb == sw)
    assert both.sum() > 1000
    assert np.all(pb[both] <= pw[both]) and pb[both].mean() < 0.8 * pw[both].mean()


# ---------------------------------------------------------------------------------------------- the interface
def test_creative_policy_learns_the_won_requests_only():
    policy = TruthfulBidder(creative="ucb1", pricing="cpm")
    _, _, steps = run(policy, Auction("second", steps=5, n=256))
    won = sum(int(o.won.sum()) for _, o, _ in steps)
    clicks = sum(int(o.clicked.sum()) for _, o, _ in steps)
    assert 0 < won < 5 * 256
    assert policy.creative.counts.sum() == won and policy.creative.sums.sum() == clicks
    policy = TruthfulBidder(creative="exp3", pricing="cpm")  # no pair updates: the won rows as a sub-batch
    _, _, steps = run(policy, Auction("second", steps=5, n=256))
    assert policy.creative.n_updates == 5 and policy.creative.counts.sum() == sum(int(o.won.sum()) for _, o, _ in steps)


def test_seeded_and_stacked():
    env = Auction("first", steps=10, n=128)
    a = run(LearnedShader(pricing="cpm"), env, seed=7)[2]
    b = run(LearnedShader(pricing="cpm"), env, seed=7)[2]
    c = run(LearnedShader(pricing="cpm"), env, seed=8)[2]
    bids = lambda steps: np.concatenate([s[0]["bid"] for s in steps])  # noqa: E731
    np.testing.assert_array_equal(bids(a), bids(b))
    assert not np.array_equal(bids(a), bids(c))
    for make in (LearnedShader, PIDPacer, DualPacer):  # G = 2 stacked groups ≡ two unstacked runs
        envs = [Auction("first", steps=10, n=64, seed=s, budget=3.0) for s in (3, 4)]
        single = [np.concatenate([s[0]["bid"] for s in run(make(), e, seed=g)[2]]).reshape(10, 64)
                  for g, e in zip((5, 6), envs)]
        stacked = make()
        stacked.reset(3, group_seeds=[5, 6])
        obs = [e.reset() for e in envs]
        for t in range(10):
            joint = {k: np.concatenate([o[k] for o in obs]) for k in obs[0]}
            action = stacked.select_bids(joint)
            for g in range(2):
                np.testing.assert_array_equal(action["bid"][g * 64:(g + 1) * 64], single[g][t])
            steps = [e.step({k: v[g * 64:(g + 1) * 64] for k, v in action.items()}) for g, e in enumerate(envs)]
            outcome = BidOutcome(*[np.concatenate(f) for f in zip(*[s[1] for s in steps])])
            stacked.update_bids(joint, action, outcome)
            obs = [s[0] for s in steps]


def test_outcome_from_info_dict_and_bad_input():
    obs = Auction(n=4).reset()
    x = bid_inputs(obs, np.array([0, 1, 2, 0]), "cpm")
    np.testing.assert_allclose(x.truthful, obs["value"][:, 0] * CVR * obs["ctr_estimate"][np.arange(4), [0, 1, 2, 0]])
    np.testing.assert_allclose(bid_inputs(obs, np.zeros(4, int), "cpc").truthful, obs["value"][:, 0] * CVR)
    info = {"won": np.ones(4, bool), "slot": np.zeros(4), "price": np.ones(4), "clicked": np.zeros(4, bool),
            "converted": np.zeros(4, bool), "spend": np.ones(4), "regret": np.zeros(4)}
    out = as_outcome(info, 4)
    assert out.won.dtype == bool and out.budget_left is None
    with pytest.raises(ValueError, match="outcome lacks 'spend'"):
        as_outcome({k: v for k, v in info.items() if k != "spend"}, 4)
    with pytest.raises(ValueError, match=r"outcome 'price' shape \(3,\), expected \(4,\)"):
        as_outcome({**info, "price": np.ones(3)}, 4)
    with pytest.raises(ValueError, match=r"creative holds 3, must be in \[0, 2\]"):
        bid_inputs(obs, np.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="obs lacks key 'cvr_estimate'"):
        bid_inputs({k: v for k, v in obs.items() if k != "cvr_estimate"}, np.zeros(4, int))
    p = PIDPacer()
    p.reset(3, seed=0)
    with pytest.raises(ValueError, match="a pacer needs the day's progress"):
        p.select_bids({k: v for k, v in obs.items() if k != "day_left"})


@pytest.mark.parametrize("name, params, match", [
    ("shaded", {"factor": -0.1}, r"factor == -0.1, must be in \[0.0, 10.0\]"),
    ("pid_pacer", {"kp": -1.0}, r"kp == -1.0, must be in"),
    ("pid_pacer", {"target": "front"}, r"unknown target 'front'"),
    ("pid_pacer", {"min_multiplier": 0.9, "max_multiplier": 0.5}, r"min_multiplier == 0.9 > max_multiplier == 0.5"),
    ("dual_pacer", {"eta": 0.0}, r"eta == 0.0, must be in \(0.0, 100000.0\]"),
    ("learned_shader", {"grid": (0.5, 0.4)}, r"must be strictly increasing"),
    ("learned_shader", {"grid": (0.5, 0.0)}, r"grid\[1\] == 0.0"),
    ("truthful", {"pricing": "cpcc"}, r"unknown pricing 'cpcc'; did you mean 'cpc'"),
    ("truthful", {"creative": "ucb"}, r"unknown policy 'ucb'"),
    ("truthful", {"creative": "oracle"}, r"reads the truth"),
    ("truthful", {"creative": "ucb1", "creative_params": {"c": -1.0}}, r"c == -1.0"),
    ("truthful", {"kp": 1.0}, r"unknown hyperparameter 'kp' for policy 'truthful'"),
])
def test_bad_hyperparameters(name, params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make_policy(name, **params)


def test_registered():
    from agents.bidding import BiddingPolicy
    from agents.registry import BIDDING_POLICIES

    assert set(BIDDING_POLICIES) <= set(POLICIES)
    assert all(issubclass(POLICIES[name], BiddingPolicy) for name in BIDDING_POLICIES)
    for name in ("truthful", "shaded", "pid_pacer", "dual_pacer", "learned_shader"):
        policy = make_policy(name, creative="thompson")
        assert policy.name == name and policy.stackable and policy.creative.name == "thompson"
    assert POLICIES.path("sac_bidder") == "agents.sb3_bidding:SACBidder"
    exp3 = make_policy("truthful", creative="exp3")  # learns from whole batches only: not stackable here
    assert make_policy("exp3").stackable and not exp3.stackable
    with pytest.raises(TypeError, match="cannot stack"):
        exp3.reset(3, group_seeds=[1, 2])


# ---------------------------------------------------------------------------------------------- SB3 bidders
class AuctionVectorEnv(VectorEnv):
    """:class:`Auction` as a Gymnasium vector env with same-step autoreset (each day re-seeded
    ``seed + day``), in ``adsim/AdAuction-v0``'s format: Dict observation and (creative, bid)
    actions, the auction's outcome in ``info``, the realised surplus as reward."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, mechanism="first", n=16, steps=50, seed=3, k=3, budget=None):
        self.auction = Auction(mechanism, n=n, steps=steps, seed=seed, k=k, budget=budget)
        self.num_envs, self.base, self.day = n, seed, 0
        box = lambda *shape: spaces.Box(0.0, np.inf, shape, np.float64)  # noqa: E731
        self.single_observation_space = spaces.Dict({
            "user": box(1), "context": box(1), "campaign": box(1), "candidates": box(k), "ctr_estimate": box(k),
            "value": box(1), "cvr_estimate": box(1), "day_left": box(1), "budget_left": box(1)})
        self.observation_space = batch_space(self.single_observation_space, n)
        self.single_action_space = spaces.Dict({"creative": spaces.Discrete(k),
                                                "bid": spaces.Box(0.0, 100.0, (), np.float32)})
        self.action_space = batch_space(self.single_action_space, n)

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.base, self.day = int(seed), 0
        self.auction.seed = self.base + self.day
        return self.auction.reset(), {}

    def step(self, actions):
        a = self.auction
        obs, out = a.step(actions)
        reward = np.where(out.converted, a.value / CVR, 0.0) - out.spend
        truncated = np.full(self.num_envs, a.t >= a.steps)
        info = out._asdict()
        if truncated[0]:
            info["final_obs"] = obs
            self.day += 1
            a.seed = self.base + self.day
            obs = a.reset()
        return obs, reward, np.zeros(self.num_envs, bool), truncated, info


SB3_KW = {"pricing": "cpm", "ignore_keys": ("user", "context", "campaign", "candidates")}
SB3_AGENTS = [("ppo_bidder", {"train_steps": 8000, "n_steps": 50, "batch_size": 400, "n_epochs": 5,
                              "learning_rate": 1e-3}),
              ("sac_bidder", {"train_steps": 3200, "learning_starts": 256, "batch_size": 128})]


def evaluate(policy, env):
    """Surplus of a trained policy on a day of ``env`` (without resetting it), and its bid multipliers."""
    obs, surplus, mult = env.reset(), 0.0, []
    for _ in range(env.steps):
        action = policy.select_bids(obs)
        mult.append(action["bid"] / bid_inputs(obs, action["creative"], "cpm").truthful)
        obs, out = env.step(action)
        surplus += float((out.won * env.last["value"]).sum() - out.spend.sum())
    return surplus, np.concatenate(mult)


@pytest.mark.parametrize("name, params", SB3_AGENTS)
def test_sb3_bidders_learn_to_shade_under_first_price(name, params):
    _, _, steps = run(TruthfulBidder(pricing="cpm"), Auction("first", steps=20, seed=5))
    grid = np.round(np.arange(0.2, 1.01, 0.05), 2)
    best = swept_surplus(steps, grid, "first").max()  # the best constant shading's surplus on that day
    policy = make_policy(name, **SB3_KW, **params)
    policy.reset(3, seed=0)
    assert policy.learn(AuctionVectorEnv("first", n=16, steps=50), scenario_seed=11) == params["train_steps"]
    surplus, mult = evaluate(policy, Auction("first", steps=20, seed=5))
    assert surplus >= 0.9 * best  # truthful earns 0, an untrained network (multiplier 1) about 0
    assert 0.5 < mult.mean() < 0.9


def test_sb3_bidder_is_seeded():
    bids = []
    for _ in range(2):
        policy = make_policy("sac_bidder", **SB3_KW, train_steps=600, learning_starts=100, batch_size=64)
        policy.reset(3, seed=4)
        policy.learn(AuctionVectorEnv("first", n=16, steps=50), scenario_seed=11)
        bids.append(policy.select_bids(Auction("first", n=64, seed=5).reset())["bid"])
    np.testing.assert_array_equal(bids[0], bids[1])
    with pytest.raises(ValueError, match="reward == 'surplus'|unknown reward 'surplus'"):
        make_policy("ppo_bidder", reward="surplus")
    policy = make_policy("ppo_bidder")
    policy.reset(5, seed=0)
    with pytest.raises(ValueError, match="env has 3 creatives, policy was reset with 5"):
        policy.learn(AuctionVectorEnv("first", n=4, steps=5))


# ---------------------------------------------------------------------------------------------- on adsim/AdAuction-v0
def auction_env(n, horizon, **overrides):
    """``adsim/AdAuction-v0``'s native vector env (skips when this checkout has no auction env)."""
    import gymnasium as gym

    import adsim  # noqa: F401  (registers the envs)

    if "adsim/AdAuction-v0" not in gym.registry:
        pytest.skip("adsim/AdAuction-v0 is not registered in this checkout")
    return gym.make_vec("adsim/AdAuction-v0", num_envs=n, vectorization_mode="vector_entry_point", preset="auction",
                        horizon=horizon, **overrides)


def env_days(policy, env, n_days=1, seed=0, record=False):
    """Run ``policy`` on ``env`` for whole days: per day the (T, N) cumulative spend; and, with
    ``record``, each step's (obs, truth info, action)."""
    policy.reset(env.single_action_space["creative"].n, seed=1)
    obs, info = env.reset(seed=seed)
    curves, steps = [], []
    for _ in range(n_days):
        spend, curve = np.zeros(env.num_envs), []
        for _ in range(env.config.horizon):
            action = policy.select_bids(obs)
            if record:
                steps.append((obs, info, action))
            nxt, _, _, _, info = env.step(action)
            policy.update_bids(obs, action, info)
            spend = spend + info["spend"]
            curve.append(spend)
            obs = nxt
        curves.append(np.array(curve))
    return curves, steps


ENV_PACING = {"mechanism": "second_price", "pricing": "cpm", "n_advertisers": 4, "competitor_bid_ratio": 0.01,
              "slate_size": 1, "conversion_value": 20.0}
"""A binding-budget day on the env: per-impression pricing (many small payments), 4 advertisers, one slot."""


def test_env_pacers_spend_a_binding_budget():
    n, horizon = 32, 1500
    (free,), _ = env_days(TruthfulBidder(pricing="cpm"), auction_env(n, horizon, **ENV_PACING))
    budget = 0.4 * free[-1].min()  # binding on every campaign-day
    tau = np.arange(1, horizon + 1) / horizon
    quarters = [horizon // 4 - 1, horizon // 2 - 1, 3 * horizon // 4 - 1]
    (unpaced, _), _ = env_days(TruthfulBidder(pricing="cpm"), auction_env(n, horizon, budget=budget, **ENV_PACING), 2)
    assert unpaced[horizon // 2 - 1].mean() >= 0.95 * budget  # unpaced, the day's budget is gone by noon
    for policy in (PIDPacer(pricing="cpm"), DualPacer(pricing="cpm")):
        days, _ = env_days(policy, auction_env(n, horizon, budget=budget, **ENV_PACING), 2)
        for day in days:  # the first day (estimates still learning) and the second (carried over)
            end = day[-1] / budget
            assert np.all((end >= 0.95) & (end <= 1.0)), (policy.name, end.min())
        mean = days[1][quarters].mean(axis=1) / budget
        np.testing.assert_allclose(mean, tau[quarters], atol=0.05, err_msg=policy.name)


def test_env_gsp_better_creatives_win_cheaper():
    env = auction_env(256, 400, mechanism="gsp", pricing="cpc", slate_size=3, n_advertisers=4,
                      competitor_bid_ratio=0.03)
    K = env.single_action_space["creative"].n
    warm, best, worst = TruthfulBidder(creative="random"), TruthfulBidder(), TruthfulBidder(creative=WorstCreative())
    for p in (warm, best, worst):
        p.reset(K, seed=1)
    obs, info = env.reset(seed=0)
    for _ in range(100):  # the platform's pCTRs learn from the won impressions of random creatives
        obs, _, _, _, info = env.step(warm.select_bids(obs))
    a, b = best.select_bids(obs), worst.select_bids(obs)
    np.testing.assert_array_equal(a["bid"], b["bid"])  # per click both bid the value: only the creative differs
    better = obs["ctr_estimate"][np.arange(256), a["creative"]] > obs["ctr_estimate"][np.arange(256), b["creative"]]
    high, low = env.auction.outcome(info, a["creative"], a["bid"]), env.auction.outcome(info, b["creative"], b["bid"])
    assert np.all(high.slot[low.won] <= low.slot[low.won]) and np.all(high.won[low.won])  # never a worse slot
    same = high.won & low.won & (high.slot == low.slot) & better
    assert same.sum() > 20 and np.all(high.price[same] < low.price[same])
    assert high.won.mean() > low.won.mean()


def test_env_learned_shader_reaches_the_best_response():
    env = auction_env(256, 200, mechanism="first_price", pricing="cpc", slate_size=1, n_advertisers=4,
                      competitor_bid_ratio=0.03)
    policy = LearnedShader()
    _, steps = env_days(policy, env, record=True)
    grid = np.array(policy.grid)
    swept = np.zeros(grid.size)  # the believed surplus of each fixed factor on the same competition
    for obs, info, action in steps:
        x = bid_inputs(obs, action["creative"], "cpc")
        for i, f in enumerate(grid):
            out = env.auction.outcome(info, action["creative"], f * x.truthful)
            swept[i] += (out.won * x.pctr * (x.value - out.price)).sum()
    best = grid[np.argmax(swept)]
    assert best < 0.9  # shading pays under first price
    assert policy.best_factor()[0] == pytest.approx(best, abs=0.05 + 1e-9)


def test_cpa_cap_bounds_every_bid_and_the_cost_of_a_conversion():
    """With ``cpa_cap`` C every bid is at most C × the conversion estimate (per click), the bid rule
    otherwise unchanged; under second price (which charges at most the bid) the day's cost per
    conversion then falls, and the env's reported CPA excess with it."""
    n, horizon, cap = 64, 400, 4.0
    env = auction_env(n, horizon, mechanism="second_price", conversion_value=20.0, cpa_cap=cap)
    free, capped = TruthfulBidder(), TruthfulBidder(cpa_cap=cap)
    _, steps = env_days(capped, env, 1, record=True)
    for obs, _, action in steps:
        limit = cap * obs["cvr_estimate"][:, 0].astype(np.float64)
        truthful = TruthfulBidder().bids(obs, action["creative"])
        assert np.all(action["bid"] <= limit + 1e-12) and np.all(action["bid"] <= truthful + 1e-12)
        assert np.any(action["bid"] < truthful)  # the cap binds somewhere, every step
    totals = {}
    for name, policy in (("free", free), ("capped", capped)):
        env = auction_env(n, horizon, mechanism="second_price", conversion_value=20.0, cpa_cap=cap)
        policy.reset(env.single_action_space["creative"].n, seed=1)
        obs, info = env.reset(seed=3)
        for _ in range(horizon - 1):
            action = policy.select_bids(obs)
            obs, _, _, _, info = env.step(action)
            policy.update_bids(obs, action, info)
        totals[name] = (info["spend_total"].sum() / max(info["conversions_total"].sum(), 1), info["cpa_excess"].sum())
    assert totals["capped"][0] < totals["free"][0] and totals["capped"][1] < totals["free"][1]
    with pytest.raises(ValueError, match=r"cpa_cap == 0.0"):
        make_policy("truthful", cpa_cap=0.0)
