"""Bidding policies: an ad request is an auction, and our advertiser chooses a creative *and* a bid.

A bidding policy is a :class:`agents.base.Policy` (the same reset, own random streams, stacked
groups, batched calls) that holds a *creative policy* — any registered bandit, choosing the
creative from the observation exactly as on ``adsim/CreativeSelection-v0`` — and a bid rule::

    policy.reset(n_actions=K, seed=s)                  # or group_seeds=[…] (stacked scenario seeds)
    action = policy.select_bids(obs, info)             # {"creative": (N,) ints, "bid": (N,) floats >= 0}
    policy.update_bids(obs, action, outcome)           # a BidOutcome, or the env's info dict

As a one-slot policy it is its creative policy: ``probabilities`` / ``select`` / ``update`` are the
creative policy's, so a bidding policy runs anywhere a policy does. ``update_bids`` teaches the
creative policy the clicks of the requests it won (only those were shown) and the bid rule the
whole outcome.

**What a bid is worth.** :func:`bid_inputs` reads, for each request and its chosen creative, the
platform's CTR estimate ``pctr`` (``obs["ctr_estimate"]`` at the creative) and the value of a click,
our conversion value × the conversion-rate estimate (``obs["value"] × obs["cvr_estimate"]``). The
*truthful* bid is what the bid buys is worth: the value of a click per click (``pricing="cpc"``,
the env's default; under GSP the platform ranks by bid × pCTR itself) or value × pCTR per impression
(``"cpm"``). Every bid rule is a multiplier on the truthful bid: a fixed shading factor, a pacing
multiplier, ``1 / (1 + λ)``, a learned shading factor, an SB3 agent's action (``agents.sb3_bidding``).

**Budgets.** ``adsim/AdAuction-v0``'s episode is a day, and each sub-env runs its own campaign-day
with its own budget. The pacers keep one controller per row of the batch and read the day's
progress ``τ = 1 − day_left`` and the budget left (``budget_left``, the env's fraction of the day's
budget) from the observation; the daily budget is the budget left at the day's first decision,
and a new day (τ going down, at the env's autoreset) restarts the row's controller.

**Randomness.** ``reset(seed=s)`` gives the creative policy and the bid rule independent child
streams of ``SeedSequence(s)`` (of each group's seed when stacked), as :class:`agents.mixture.EpsilonMixture`
does; only the learned shader draws (Thompson sampling over its grid).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from adsim.validation import check_choice, check_float
from agents.base import Obs, Policy

VALUE_KEY = "value"
"""Observation key of our value of one conversion, (N, 1) (``adsim/AdAuction-v0``)."""
CVR_KEY = "cvr_estimate"
"""Observation key of the running conversion rate per click, (N, 1): the value of a click is
``value × cvr_estimate``."""
DAY_LEFT_KEY = "day_left"
"""Observation key of the fraction of the day's requests left, (N, 1): the day's progress is
``τ = 1 − day_left``."""
BUDGET_LEFT_KEY = "budget_left"
"""Observation key of the budget left for the day, (N, 1) (the env's: a fraction of the day's budget)."""
PRICING = "cpc"
"""What a bid buys, as the env's ``EnvConfig.pricing``: ``"cpc"`` (per click: the truthful bid is the
value of a click) or ``"cpm"`` (per impression: value × pCTR)."""
PRICINGS = ("cpc", "cpm")


class BidInputs(NamedTuple):
    """What a bid rule sees of a batch of requests, for their chosen creatives."""

    creative: np.ndarray
    """(N,) int the chosen creative."""
    pctr: np.ndarray
    """(N,) the platform's CTR estimate of the chosen creative."""
    value: np.ndarray
    """(N,) value of a click: our conversion value × the conversion rate estimate."""
    truthful: np.ndarray
    """(N,) the truthful bid: ``value × pctr`` per impression, ``value`` per click."""
    progress: np.ndarray | None
    """(N,) the day's progress τ in [0, 1] (None when the observation has none)."""
    budget_left: np.ndarray | None
    """(N,) the budget left for the day (None when the observation has none)."""


class BidOutcome(NamedTuple):
    """What the auction did with a batch of bids (the fields of the env's info of the same names)."""

    won: np.ndarray
    """(N,) bool: our ad won a slot."""
    slot: np.ndarray
    """(N,) int: the slot won (0 = top), −1 when lost."""
    price: np.ndarray
    """(N,) the price set by the auction (per click or per impression, as the env charges); 0 when lost."""
    clicked: np.ndarray
    """(N,) bool: the shown ad was clicked."""
    converted: np.ndarray
    """(N,) bool: the click converted."""
    spend: np.ndarray
    """(N,) money charged for the request."""
    budget_left: np.ndarray | None = None
    """(N,) budget left after the request (the env's info ``budget_remaining``; None if not given)."""


OUTCOME_FIELDS = BidOutcome._fields


def as_outcome(outcome: BidOutcome | dict[str, Any], n: int) -> BidOutcome:
    """A :class:`BidOutcome` of ``n`` requests from itself or the env's info dict; shapes checked."""
    if isinstance(outcome, BidOutcome):
        fields = outcome._asdict()
    elif isinstance(outcome, dict):
        missing = [f for f in OUTCOME_FIELDS[:-1] if f not in outcome]
        if missing:
            raise ValueError(f"outcome lacks {missing[0]!r}; a bidding policy learns from {list(OUTCOME_FIELDS)}")
        fields = {f: outcome.get(f) for f in OUTCOME_FIELDS[:-1]}
        fields["budget_left"] = outcome.get("budget_left", outcome.get("budget_remaining"))
    else:
        raise TypeError(f"outcome must be a BidOutcome or the env's info dict, got {type(outcome).__name__}")
    out = {}
    for f, v in fields.items():
        if v is None and f == "budget_left":
            out[f] = None
            continue
        a = np.asarray(v)
        if a.shape != (n,):
            raise ValueError(f"outcome {f!r} shape {a.shape}, expected ({n},): one per request")
        out[f] = a.astype(bool) if f in ("won", "clicked", "converted") else a.astype(np.float64)
    return BidOutcome(**out)


def check_pricing(pricing: str) -> str:
    """``pricing`` must be one of :data:`PRICINGS`."""
    check_choice("pricing", pricing, PRICINGS)
    return pricing


def bid_inputs(obs: Obs, creative: np.ndarray, pricing: str = PRICING) -> BidInputs:
    """The :class:`BidInputs` of a batch of requests (``obs``) for their chosen creatives (N,)."""
    if not isinstance(obs, dict):
        raise TypeError(f"obs must be a dict of batched arrays, got {type(obs).__name__}")
    for key in ("ctr_estimate", VALUE_KEY, CVR_KEY):
        if key not in obs:
            raise ValueError(f"obs lacks key {key!r}; a bidding policy needs 'ctr_estimate' (N, K), "
                             f"{VALUE_KEY!r} and {CVR_KEY!r} (N, 1) (adsim/AdAuction-v0's observation)")
    est = np.asarray(obs["ctr_estimate"], dtype=np.float64)
    if est.ndim != 2:
        raise ValueError(f"obs['ctr_estimate'] must be (N, K), got shape {est.shape}")
    n, k = est.shape
    c = np.asarray(creative)
    if c.shape != (n,) or not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"creative must be (N,) == ({n},) ints, got {c.dtype} {c.shape}")
    if n and (c.min() < 0 or c.max() >= k):
        raise ValueError(f"creative holds {c[(c < 0) | (c >= k)][0]}, must be in [0, {k - 1}]")
    value = np.asarray(obs[VALUE_KEY], dtype=np.float64).reshape(n) * np.asarray(obs[CVR_KEY], dtype=np.float64).reshape(n)
    pctr = est[np.arange(n), c]
    truthful = value * pctr if pricing == "cpm" else value.copy()
    progress = None if DAY_LEFT_KEY not in obs else 1.0 - np.asarray(obs[DAY_LEFT_KEY], dtype=np.float64).reshape(n)
    left = None if BUDGET_LEFT_KEY not in obs else np.asarray(obs[BUDGET_LEFT_KEY], dtype=np.float64).reshape(n)
    return BidInputs(c.astype(np.int64), pctr, value, truthful, progress, left)


def believed_surplus(x: BidInputs, outcome: BidOutcome, pricing: str = PRICING) -> np.ndarray:
    """(N,) the surplus a bidder believes it earned, from what it saw and the auction's outcome: the
    pCTR and the value per click of :class:`BidInputs`, and ``won`` and ``price``:
    ``won × pCTR × (value − price)`` per click (cpc), ``won × (value × pCTR − price)`` per impression
    (cpm). No conversion coin in it (less noise than the realised surplus); the pCTR is the
    platform's position-normalised estimate, so the slot's exposure is not in it either."""
    if pricing == "cpm":
        return outcome.won * (x.truthful - outcome.price)
    return outcome.won * x.pctr * (x.value - outcome.price)


def _defining(cls: type, attr: str) -> type | None:
    return next((c for c in cls.__mro__ if attr in c.__dict__), None)


def learns_pairs(policy: Policy) -> bool:
    """Whether ``policy.update_pairs`` is its learning rule on (request, candidate) pairs: it has one,
    defined no higher up its class tree than its ``update`` (EXP3, say, inherits the arm tables'
    ``update_pairs`` but learns by its own importance-weighted ``update``: no)."""
    cls = type(policy)
    pairs, update = _defining(cls, "update_pairs"), _defining(cls, "update")
    return pairs is not None and update is not None and issubclass(pairs, update)


def _row_subset(obs: Obs, rows: np.ndarray, n: int) -> Obs:
    return {k: (v[rows] if isinstance(v, np.ndarray) and v.shape[:1] == (n,) else v) for k, v in obs.items()}


class BiddingPolicy(Policy):
    """Base of the bidding policies (module docstring): a creative policy and a bid rule.

    Subclasses implement :meth:`multiplier` (the bid as a multiple of the truthful bid) and, if they
    learn, :meth:`learn_bids`.

    Args:
        creative: the creative policy: a registered name (``agents.registry``), an import path, or a
            :class:`~agents.base.Policy` instance.
        creative_params: hyperparameters of a creative policy given by name.
        pricing: what a bid buys, ``"cpc"`` (per click) or ``"cpm"`` (per impression), as the env's (:data:`PRICING`).
        max_bid: bids are clipped to [0, max_bid].
        cpa_cap: an optional cost-per-acquisition cap C: the bid is at most ``C × cvr_estimate`` per
            click (× pCTR per impression), so that under second price and GSP (which charge at most the
            bid) the expected cost of a conversion stays at most C where the conversion estimate is
            right (the env reports the day's ``cpa_excess``); None: no cap.
    """

    name = "bidding"

    def __init__(self, creative: str | Policy = "greedy", creative_params: dict[str, Any] | None = None,
                 pricing: str = PRICING, max_bid: float = 1e6,
                 cpa_cap: float | None = None):
        self._init_bidding(creative, creative_params, pricing, max_bid, cpa_cap)

    def _init_bidding(self, creative, creative_params, pricing, max_bid, cpa_cap=None) -> None:
        if isinstance(creative, Policy):
            if creative_params:
                raise ValueError("creative_params are for a creative policy given by name; pass them to its constructor")
            self.creative = creative
        elif isinstance(creative, str):
            from agents.registry import make_policy  # the registry names the bidders too

            if creative_params is not None and not isinstance(creative_params, dict):
                raise TypeError(f"creative_params must be a dict, got {type(creative_params).__name__}")
            self.creative = make_policy(creative, **(creative_params or {}))
        else:
            raise TypeError(f"creative must be a policy name or an agents.base.Policy, got {type(creative).__name__}")
        if isinstance(self.creative, BiddingPolicy):
            raise TypeError("creative must be a creative policy, not a bidding policy")
        if self.creative.reference:
            raise ValueError(f"creative policy {self.creative.name!r} reads the truth (a reference policy); "
                             f"a bidding policy's creative policy sees the observation only")
        self.pricing = check_pricing(pricing)
        check_float("max_bid", max_bid, 0.0, open_low=True)
        self.max_bid = float(max_bid)
        if cpa_cap is not None:
            check_float("cpa_cap", cpa_cap, 0.0, 1e15, open_low=True)
        self.cpa_cap = None if cpa_cap is None else float(cpa_cap)

    @property
    def stackable(self) -> bool:
        """Whether the creative policy stacks and can learn from a stacked batch's won rows (it learns
        nothing, or has ``update_pairs``)."""
        policy = self.creative
        learns_rows = type(policy).update is Policy.update or learns_pairs(policy)
        return policy.stackable and learns_rows

    def reset(self, n_actions: int, seed: int | np.random.SeedSequence | None = None, group_seeds=None) -> None:
        """Forget everything learned; the bid rule and the creative policy on independent child
        streams of ``seed`` (of each group's seed when stacked)."""
        if group_seeds is None:
            root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
            own, inner = root.spawn(2)
            super().reset(n_actions, own)
            self.creative.reset(n_actions, inner)
        else:
            super().reset(n_actions, seed, group_seeds)  # validates
            pairs = [(s if isinstance(s, np.random.SeedSequence) else np.random.SeedSequence(s)).spawn(2)
                     for s in group_seeds]
            super().reset(n_actions, group_seeds=[own for own, _ in pairs])
            self.creative.reset(n_actions, group_seeds=[inner for _, inner in pairs])
        self.reset_bids()

    def reset_bids(self) -> None:
        """Hook: forget the bid rule's state (called by :meth:`reset`)."""

    # ------------------------------------------------------------------ the one-slot view
    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N, K) the creative policy's probability of each creative."""
        return self.creative.probabilities(obs, None)

    def select(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N,) the creative policy's creatives."""
        return np.asarray(self.creative.select(obs, None))

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        """The creative policy's one-slot update."""
        self.creative.update(obs, actions, rewards)

    # ------------------------------------------------------------------ the bidding interface
    def select_bids(self, obs: Obs, info: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        """``{"creative": (N,) int64, "bid": (N,) float64}``: the creative policy's creatives and
        their bids (``info`` is not read: a bidding policy sees the observation only)."""
        creative = self.select(obs)
        bid = self.bids(obs, creative)
        if self.cpa_cap is not None:  # never bid more than a conversion at the CPA target is worth
            x = bid_inputs(obs, creative, self.pricing)
            cap = self.cpa_cap * np.asarray(obs[CVR_KEY], dtype=np.float64).reshape(-1)  # per click
            bid = np.minimum(bid, cap * x.pctr if self.pricing == "cpm" else cap)
        return {"creative": creative, "bid": bid}

    def bids(self, obs: Obs, creative: np.ndarray) -> np.ndarray:
        """(N,) bids for the chosen creatives: the truthful bid × :meth:`multiplier`, clipped."""
        x = bid_inputs(obs, creative, self.pricing)
        return np.clip(x.truthful * self.multiplier(x), 0.0, self.max_bid)

    def multiplier(self, x: BidInputs) -> np.ndarray:
        """(N,) the bid as a multiple of the truthful bid."""
        raise NotImplementedError

    def update_bids(self, obs: Obs, action: dict[str, np.ndarray], outcome: BidOutcome | dict[str, Any]) -> None:
        """Learn from a batch of auctions: ``action`` as :meth:`select_bids` returned it, ``outcome``
        a :class:`BidOutcome` or the env's info dict (its fields ``won``, ``slot``, ``price``,
        ``clicked``, ``converted``, ``spend``, ``budget_left``). The creative policy learns the
        clicks of the won requests (the ads shown); the bid rule learns the whole outcome."""
        if not isinstance(action, dict) or "creative" not in action or "bid" not in action:
            raise TypeError("action must be the dict {'creative': (N,), 'bid': (N,)} of select_bids")
        creative = np.asarray(action["creative"])
        bid = np.asarray(action["bid"], dtype=np.float64)
        n = creative.shape[0] if creative.ndim == 1 else -1
        if bid.shape != creative.shape or creative.ndim != 1:
            raise ValueError(f"action creative shape {creative.shape} and bid shape {bid.shape}, expected (N,) each")
        out = as_outcome(outcome, n)
        self._teach_creative(obs, creative, out)
        self.learn_bids(bid_inputs(obs, creative, self.pricing), bid, out)

    def _teach_creative(self, obs: Obs, creative: np.ndarray, out: BidOutcome) -> None:
        """The creative policy learns ``clicked`` of the won requests (the shown ads) only."""
        policy = self.creative
        if type(policy).update is Policy.update:  # learns nothing (e.g. greedy on the platform's estimate)
            return
        n = creative.shape[0]
        rows = np.flatnonzero(out.won)
        clicks = out.clicked[rows].astype(np.float64)
        if learns_pairs(policy):
            policy.update_pairs(obs, rows, creative[rows], clicks)
        elif self.n_groups == 1:
            if rows.size:
                policy.update(_row_subset(obs, rows, n), creative[rows], clicks)
        else:
            raise TypeError(f"creative policy {policy.name!r} learns from whole batches only (no update_pairs), "
                            f"so not from the won requests of a stacked batch; run it unstacked")

    def learn_bids(self, x: BidInputs, bid: np.ndarray, outcome: BidOutcome) -> None:
        """Hook: the bid rule learns from a batch (no-op for fixed rules)."""


# ---------------------------------------------------------------------------------------------- fixed rules
class TruthfulBidder(BiddingPolicy):
    """Bids the truthful value: ``value × pCTR`` per impression (``value`` per click). Dominant under
    second price without a budget.

    Args: those of :class:`BiddingPolicy`.
    """

    name = "truthful"

    def multiplier(self, x):
        return np.ones_like(x.truthful)


class OracleBidder(BiddingPolicy):
    """The reference of an auction benchmark: shows each request's hindsight-best creative at its
    hindsight-best bid (``info["oracle_creative"]``, ``info["oracle_bid"]`` of ``adsim/AdAuction-v0``:
    the best expected surplus on the realised competition under the budget left), so its regret is
    exactly 0. Reads the truth (``reference = True``); learns nothing."""

    name = "oracle_bidder"
    reference = True

    def select_bids(self, obs: Obs, info: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        if info is None or "oracle_creative" not in info or "oracle_bid" not in info:
            raise ValueError("the oracle bidder needs the auction env's info with 'oracle_creative' and "
                             "'oracle_bid' (ground truth)")
        return {"creative": np.asarray(info["oracle_creative"], dtype=np.int64),
                "bid": np.asarray(info["oracle_bid"], dtype=np.float64)}

    def update_bids(self, obs: Obs, action: dict[str, np.ndarray], outcome: BidOutcome | dict[str, Any]) -> None:
        """Learns nothing."""


class ShadedBidder(BiddingPolicy):
    """Bids ``factor ×`` the truthful bid.

    Args:
        factor: the shading factor, in [0, 10] (1 is truthful; < 1 shades, as in first price).
        Others: those of :class:`BiddingPolicy`.
    """

    name = "shaded"

    def __init__(self, factor: float = 0.8, creative: str | Policy = "greedy",
                 creative_params: dict[str, Any] | None = None, pricing: str = PRICING, max_bid: float = 1e6,
                 cpa_cap: float | None = None):
        check_float("factor", factor, 0.0, 10.0)
        self.factor = float(factor)
        self._init_bidding(creative, creative_params, pricing, max_bid, cpa_cap)

    def multiplier(self, x):
        return np.full_like(x.truthful, self.factor)


# ---------------------------------------------------------------------------------------------- pacing
class _Pacer(BiddingPolicy):
    """Common part of the budget pacers: one controller per row of the batch (a row is one
    campaign-day: a sub-env of ``adsim/AdAuction-v0``'s vector env, whose episode is a day), acting
    on the state it observes at each decision, the day's progress τ and the budget left. A new day
    (τ going down, as at an autoreset) starts the row's controller from where the last day left it
    (``carry_over``, the default: yesterday's level of bids is today's best first guess) or afresh;
    the row's first day starts from ``initial``. The day's budget is the budget left at its first
    decision. Rows never mix, so stacked groups need nothing more. Multipliers are kept in [``min_multiplier``, ``max_multiplier``]; nothing is
    bid once nothing is left."""

    min_multiplier: float = 0.0
    max_multiplier: float = 1.0

    def _init_pacer(self, min_multiplier: float, max_multiplier: float, carry_over: bool) -> None:
        if not isinstance(carry_over, bool):
            raise TypeError(f"carry_over must be a bool, got {type(carry_over).__name__} {carry_over!r}")
        self.carry_over = carry_over
        check_float("min_multiplier", min_multiplier, 0.0, 10.0)
        check_float("max_multiplier", max_multiplier, 0.0, 10.0, open_low=True)
        if min_multiplier > max_multiplier:
            raise ValueError(f"min_multiplier == {min_multiplier} > max_multiplier == {max_multiplier}")
        self.min_multiplier, self.max_multiplier = float(min_multiplier), float(max_multiplier)

    def reset_bids(self) -> None:
        self.budget = np.zeros(0)
        """(N,) each row's daily budget (the budget left at the day's first decision)."""
        self.progress = np.zeros(0)
        """(N,) τ at the row's last decision (NaN before the first)."""
        self.left = np.zeros(0)
        """(N,) budget left at the row's last decision."""
        self.mult = np.zeros(0)
        """(N,) the bid multiplier of the last decision."""

    def _state(self, n: int) -> None:
        """Size the per-row state for a batch of ``n`` rows (the first batch fixes it)."""
        if self.progress.shape == (n,):
            return
        if self.progress.size:
            raise ValueError(f"{self.name}: a batch of {n} requests, the pacer's rows are {self.progress.size} "
                             f"campaign-days (one per sub-env); reset the policy for another batch size")
        self.budget, self.progress, self.left, self.mult = np.ones(n), np.full(n, np.nan), np.zeros(n), np.ones(n)
        self._init_controller(n)

    def _init_controller(self, n: int) -> None:
        """Allocate the controller's per-row state."""

    def _restart(self, days: np.ndarray) -> None:
        """Start the controller of the rows ``days`` (N,) bool afresh (from ``initial``)."""

    def _next_day(self, days: np.ndarray) -> None:
        """Carry the controller of the rows ``days`` (N,) bool over into a new day (``carry_over``)."""

    def multiplier(self, x):
        if x.progress is None or x.budget_left is None:
            raise ValueError(f"{self.name}: a pacer needs the day's progress ({DAY_LEFT_KEY!r}) and the budget "
                             f"left ({BUDGET_LEFT_KEY!r}) in the observation")
        n = x.truthful.shape[0]
        self._state(n)
        tau, left = np.clip(x.progress, 0.0, 1.0), x.budget_left
        first = np.isnan(self.progress)
        new = first | (tau < self.progress)
        if new.any():
            self.budget[new] = np.maximum(left[new], 1e-12)
            if self.carry_over:
                self._restart(first)
                self._next_day(new & ~first)
            else:
                self._restart(new)
        m = np.clip(self._control(tau, left, new), self.min_multiplier, self.max_multiplier)
        self.mult = np.where(left > 0, m, 0.0)
        self.progress, self.left = tau, left
        return self.mult

    def _control(self, tau: np.ndarray, left: np.ndarray, new: np.ndarray) -> np.ndarray:
        """(N,) the multiplier at the rows' state (τ, budget left); ``new`` marks a day's first decision."""
        raise NotImplementedError


TARGETS = ("uniform",)
"""Target spend curves of the PID pacer: ``"uniform"``, spend ``budget × τ`` by progress τ."""


class PIDPacer(_Pacer):
    """PID budget pacing: the spend tracks the target curve ``budget × τ`` over the day.

    At each decision the error is ``e = τ − spent / budget`` (positive: behind the curve), its
    integral ``I = Σ e · Δτ`` over the day's decisions and its change ``Δe``; the bid multiplier is
    ``exp(kp · e + ki · I + kd · Δe)`` clipped to [min_multiplier, max_multiplier] (1 at most by
    default: a pacer slows spend down, it does not overbid), and the integral is frozen while the
    multiplier sits at a bound and the error pushes it further (anti-windup). The gains are in
    units of the budget and of the day, so they do not depend on the budget's size or on the
    requests per day: ``kp = 20`` lowers bids by ``1 − exp(−0.2) ≈ 18 %`` when 1 % of the budget
    ahead of the curve; ``ki = 200`` adds as much after being 1 % ahead for 10 % of the day. The integral
    finds the day's level of the multiplier, the proportional term absorbs the noise; with the
    defaults a binding budget is 95–100 % spent by the day's end, within a few % of the curve all
    day (tests: a stationary and a waving competition).

    Args:
        kp: proportional gain, in [0, 1e4].
        ki: integral gain (per unit of day), in [0, 1e5].
        kd: derivative gain, in [0, 1e4] (0: spend is noisy, its derivative more so).
        initial: the first day's first multiplier, in (0, 10].
        target: the target spend curve, "uniform".
        min_multiplier, max_multiplier: bounds of the multiplier.
        carry_over: a new day starts from the last day's integral (else from ``initial``).
        Others: those of :class:`BiddingPolicy`.
    """

    name = "pid_pacer"

    def __init__(self, kp: float = 20.0, ki: float = 200.0, kd: float = 0.0, initial: float = 1.0,
                 target: str = "uniform", min_multiplier: float = 0.0, max_multiplier: float = 1.0,
                 carry_over: bool = True, creative: str | Policy = "greedy", creative_params: dict[str, Any] | None = None,
                 pricing: str = PRICING, max_bid: float = 1e6,
                 cpa_cap: float | None = None):
        check_float("kp", kp, 0.0, 1e4)
        check_float("ki", ki, 0.0, 1e5)
        check_float("kd", kd, 0.0, 1e4)
        check_float("initial", initial, 0.0, 10.0, open_low=True)
        check_choice("target", target, TARGETS)
        self.kp, self.ki, self.kd, self.initial, self.target = float(kp), float(ki), float(kd), float(initial), target
        self._init_pacer(min_multiplier, max_multiplier, carry_over)
        self._init_bidding(creative, creative_params, pricing, max_bid, cpa_cap)

    def _init_controller(self, n):
        self.integral, self.error = np.zeros(n), np.zeros(n)

    def _restart(self, days):
        self.integral[days] = np.log(self.initial) / self.ki if self.ki > 0 else 0.0
        self.error[days] = 0.0

    def _next_day(self, days):
        """Keep the integral (the day's level of the multiplier, yesterday's); a new day's error is 0."""
        self.error[days] = 0.0

    def _control(self, tau, left, new):
        e = tau - (self.budget - left) / self.budget
        dtau = np.where(new, 0.0, tau - np.nan_to_num(self.progress))
        de = np.where(new, 0.0, e - self.error)
        integral = self.integral + e * dtau
        u = self.kp * e + self.ki * integral + self.kd * de
        m = np.exp(np.minimum(u, 50.0))
        saturated = ((m >= self.max_multiplier) & (e > 0)) | ((m <= self.min_multiplier) & (e < 0))
        self.integral = np.where(saturated, self.integral, integral)  # anti-windup
        self.error = e
        return m


class DualPacer(_Pacer):
    """Online primal–dual budget pacing (OnlineLP / dual mirror descent: Balseiro, Lu & Mirrokni,
    "The Best of Many Worlds: Dual Mirror Descent for Online Allocation Problems", 2020).

    The budget constraint's dual price λ ≥ 0 turns the day's problem into one auction at a time:
    bid ``value × pCTR / (1 + λ)`` (the truthful bid over 1 + λ). After each decision λ takes a
    projected dual subgradient step on the spend against the budget rate,
    ``λ ← max(0, λ + η · (spend − ρ · Δτ) / budget)``: ``spend`` is what the row spent since its last
    decision, Δτ the day that passed, and ``ρ = budget left / (1 − τ)`` the rate that spends the
    rest of the budget by the day's end (adaptive: an early mistake is made up later). In budget
    and day units, so η does not depend on the budget or the requests per day: overspending the
    rate by 1 % of the budget raises λ by η / 100.

    Args:
        eta: dual step size, in (0, 1e5].
        initial: the first day's λ, in [0, 1e3].
        carry_over: a new day starts from the last day's λ (else from ``initial``).
        Others: those of :class:`BiddingPolicy` (the multiplier is 1/(1+λ) ≤ 1).
    """

    name = "dual_pacer"

    def __init__(self, eta: float = 50.0, initial: float = 0.0, carry_over: bool = True, creative: str | Policy = "greedy",
                 creative_params: dict[str, Any] | None = None, pricing: str = PRICING, max_bid: float = 1e6,
                 cpa_cap: float | None = None):
        check_float("eta", eta, 0.0, 1e5, open_low=True)
        check_float("initial", initial, 0.0, 1e3)
        self.eta, self.initial = float(eta), float(initial)
        self._init_pacer(0.0, 1.0, carry_over)
        self._init_bidding(creative, creative_params, pricing, max_bid, cpa_cap)

    def _init_controller(self, n):
        self.lam = np.zeros(n)
        """(N,) each row's dual price λ."""

    def _restart(self, days):
        self.lam[days] = self.initial

    def _control(self, tau, left, new):
        prev_tau, prev_left = np.nan_to_num(self.progress), self.left
        dtau = tau - prev_tau
        spent = prev_left - left
        need = prev_left / np.maximum(1.0 - prev_tau, 1e-9) * dtau
        g = np.clip((spent - need) / self.budget, -1.0, 1.0)
        step = ~new & (dtau > 0)
        self.lam = np.where(step, np.maximum(0.0, self.lam + self.eta * g), self.lam)
        return 1.0 / (1.0 + self.lam)


# ---------------------------------------------------------------------------------------------- learned shading
DEFAULT_GRID = tuple(np.round(np.linspace(0.2, 1.0, 17), 4).tolist())
"""Default shading factors of :class:`LearnedShader`: 0.20, 0.25, …, 1.00."""


class LearnedShader(BiddingPolicy):
    """Learns the shading factor that maximises surplus (first price), a bandit over a grid.

    Each request bids ``s × truthful`` with a factor s of ``grid`` chosen by Gaussian Thompson
    sampling on the factors' mean surplus per request: s's posterior is
    ``N(mean_s, max(var_s, floor) / n_s)`` (its empirical mean and variance, ``n_s`` requests),
    factors never tried first (one of them uniformly at random). A request's surplus is the one the
    bidder believes it earned (:func:`believed_surplus`: from the pCTR, the value, won and price; no
    conversion coin, so the learning is not slowed by its noise).
    One table per group.

    Args:
        grid: the shading factors, a non-empty sequence of numbers in (0, 10], increasing.
        Others: those of :class:`BiddingPolicy`.
    """

    name = "learned_shader"

    def __init__(self, grid: tuple[float, ...] = DEFAULT_GRID, creative: str | Policy = "greedy",
                 creative_params: dict[str, Any] | None = None, pricing: str = PRICING, max_bid: float = 1e6,
                 cpa_cap: float | None = None):
        if isinstance(grid, (str, bytes)) or not hasattr(grid, "__len__") or len(grid) == 0:
            raise TypeError(f"grid must be a non-empty sequence of shading factors, got {grid!r}")
        for i, s in enumerate(grid):
            check_float(f"grid[{i}]", float(s) if isinstance(s, np.floating) else s, 0.0, 10.0, open_low=True)
        g = np.asarray(grid, dtype=np.float64)
        if np.any(np.diff(g) <= 0):
            raise ValueError(f"grid == {list(grid)!r} must be strictly increasing")
        self.grid = tuple(g.tolist())
        self._grid = g
        self._init_bidding(creative, creative_params, pricing, max_bid, cpa_cap)

    def reset_bids(self) -> None:
        A = len(self.grid)
        self.n = np.zeros((self.n_groups, A))
        """(G, A) requests bid with each factor."""
        self.sum = np.zeros((self.n_groups, A))
        """(G, A) their summed surplus."""
        self.sumsq = np.zeros((self.n_groups, A))
        """(G, A) their summed squared surplus."""
        self._arm: np.ndarray | None = None

    def means(self) -> np.ndarray:
        """(G, A) mean surplus per request of each factor (NaN if never tried)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.sum / self.n

    def best_factor(self) -> np.ndarray:
        """(G,) the factor of the highest mean surplus (among those tried)."""
        m = np.where(self.n > 0, self.means(), -np.inf)
        return self._grid[np.argmax(m, axis=1)]

    def multiplier(self, x):
        n = x.truthful.shape[0]
        rows = self.group_rows(n)
        cnt, mean = self.n[rows], np.nan_to_num(self.means()[rows])
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(cnt > 1, self.sumsq[rows] / cnt - mean ** 2, 0.0)
        scale = np.abs(mean).max(axis=1, keepdims=True)
        floor = np.maximum(1e-6 * scale, 1e-12)
        sd = np.sqrt(np.maximum(var, floor) / np.maximum(cnt, 1.0))
        z = self.rng.standard_normal((n, len(self.grid)))
        untried = cnt == 0  # factors never tried go first, one of them uniformly (the largest z)
        draw = np.where(untried.any(axis=1, keepdims=True), np.where(untried, z, -np.inf), mean + sd * z)
        arm = np.argmax(draw, axis=1)
        self._arm = arm
        return self._grid[arm]

    def learn_bids(self, x, bid, outcome):
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(x.truthful > 0, bid / x.truthful, np.nan)
        arm = np.searchsorted(self._grid, factor)
        arm = np.clip(arm, 0, len(self.grid) - 1)
        known = np.isfinite(factor) & np.isclose(self._grid[arm], factor, rtol=1e-9, atol=1e-12)
        surplus = believed_surplus(x, outcome, self.pricing)
        rows = self.group_rows(x.truthful.shape[0])
        flat = (rows * len(self.grid) + arm)[known]
        size = self.n.size
        self.n += np.bincount(flat, minlength=size).reshape(self.n.shape)
        self.sum += np.bincount(flat, weights=surplus[known], minlength=size).reshape(self.n.shape)
        self.sumsq += np.bincount(flat, weights=surplus[known] ** 2, minlength=size).reshape(self.n.shape)


__all__ = ["BUDGET_LEFT_KEY", "CVR_KEY", "DAY_LEFT_KEY", "PRICING", "PRICINGS", "BidInputs", "BidOutcome", "BiddingPolicy", "DEFAULT_GRID",
           "DualPacer", "LearnedShader", "PIDPacer", "ShadedBidder", "TruthfulBidder", "VALUE_KEY",
           "as_outcome", "believed_surplus", "bid_inputs", "learns_pairs"]
