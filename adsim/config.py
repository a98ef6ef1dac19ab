"""Scenario configuration: frozen dataclasses validated at construction, and named presets.

Every invalid value raises ``TypeError`` (wrong type) or ``ValueError`` (wrong value) naming the
field, the rule and the value, when the config is built — never deep inside a step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from adsim.validation import check_choice, check_float, check_int, check_seed, suggest

MODES = ("pool", "personalized")
REWARDS = ("click", "conversion", "revenue")
TAGGERS = ("kmeans", "lda")
CLICK_MODELS = ("pbm", "cascade", "dcm")
MAX_SLATE_SIZE = 10
CTR_TARGET_RANGE = (0.001, 0.30)
MAX_ADVERTISERS = 32


N_SLOTS = 3
"""Ad slots of a page (the observation's ad-slot one-hot has this many entries)."""


def _slot_tuple(name: str, value, low: float, closed: bool) -> tuple[float, ...]:
    """A per-slot list (a TOML array) or tuple of N_SLOTS numbers in [low, 1] (``(low, 1]`` unless
    ``closed``), stored as a tuple so the config stays hashable."""
    if not isinstance(value, (list, tuple)) or len(value) != N_SLOTS:
        raise TypeError(f"{name} must be a list of {N_SLOTS} numbers (one per ad slot), got "
                        f"{type(value).__name__} {value!r}")
    for i, v in enumerate(value):
        check_float(f"{name}[{i}]", v, low, 1.0, open_low=not closed)
    return tuple(value)


def position_factors(slot_factors: tuple[float, ...], n: int) -> tuple[float, ...]:
    """The first ``n`` positions' factors of a page: the N_SLOTS ``slot_factors``, then a geometric
    continuation with the ratio of the last two, capped at 1 (``f_l = f_{l−1} · min(1, f_2 / f_1)``)."""
    f = list(slot_factors[:n])
    ratio = min(1.0, slot_factors[-1] / slot_factors[-2])
    while len(f) < n:
        f.append(f[-1] * ratio)
    return tuple(f)


def _positive_tuple(name: str, value, n: int, what: str) -> tuple[float, ...]:
    """A list (a TOML array) or tuple of ``n`` numbers > 0, one per ``what``, stored as a tuple."""
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise TypeError(f"{name} must be a list of {n} numbers (one per {what}), got {type(value).__name__} {value!r}")
    for i, v in enumerate(value):
        check_float(f"{name}[{i}]", v, 0.0, 1e6, open_low=True)
    return tuple(float(v) for v in value)


def _position_tuple(name: str, value, n: int, low: float, closed: bool) -> tuple[float, ...]:
    """A per-position list (a TOML array) or tuple of ``n`` (= slate_size) numbers in [low, 1]
    (``(low, 1]`` unless ``closed``), stored as a tuple so the config stays hashable."""
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise TypeError(f"{name} must be a list of slate_size == {n} numbers (one per position), got "
                        f"{type(value).__name__} {value!r}")
    for i, v in enumerate(value):
        check_float(f"{name}[{i}]", v, low, 1.0, open_low=not closed)
    return tuple(float(v) for v in value)


@dataclass(frozen=True)
class WorldConfig:
    """The hidden world: sampled once from ``seed``; policies never see it."""

    seed: int = 0
    """Seed of the world (topics, catalog, campaigns, users, appeal vectors)."""
    n_topics: int = 16
    """Latent interest dimensions ``d``."""
    n_products: int = 200
    """Catalog size."""
    n_campaigns: int = 20
    """Campaigns (ad item + ad goal)."""
    n_segments: int = 6
    """User segments (mixture components of interests and demographics)."""
    n_users: int = 4000
    """Size of the user population requests are drawn from."""
    n_interest_tags: int = 8
    """Interest tags derived from behaviour history by clustering."""
    tagger: str = "kmeans"
    """How tags are derived from history: ``"kmeans"`` or ``"lda"`` (scikit-learn)."""
    history_events: float = 40.0
    """Mean browse events per user in the behaviour history."""
    target_ctr: float = 0.03
    """Mean click-through rate of a uniformly random policy (calibrates β0), in [0.001, 0.30]."""
    creative_scale: float = 0.28
    """Scale of creatives' hidden effects — their parts' appeal, goal fit and the discount gain:
    larger means larger gaps between creatives. The default keeps the best creative the lexicon
    allows for a request at about 2× the mean template creative (``adsim scenario``), as real
    creative sets differ by tens of percent, not multiples; 1.0 is the uncalibrated ``easy`` world."""
    interest_strength: float = 6.0
    """β: weight of the user-interest × creative affinity in the click logit."""
    context_strength: float = 0.5
    """How strongly real-time context re-weights interests."""
    drift_amplitude: float = 0.0
    """Amplitude of the scheduled drift of topic popularity (0 = stationary)."""
    drift_period: int = 20000
    """Period, in impressions, of the topic-popularity drift."""
    slot_factors: tuple[float, float, float] = (1.0, 0.75, 0.55)
    """Multiplicative effect of each of the 3 ad slots on the click probability (slot 0 is the top
    slot), each in (0, 1]: the examination probability of a position-based click model."""
    slot_shares: tuple[float, float, float] = (0.5, 0.3, 0.2)
    """Share of requests arriving for each of the 3 ad slots, each in [0, 1], summing to 1."""

    def __post_init__(self):
        object.__setattr__(self, "seed", check_seed(self.seed))  # a NumPy integer is stored as int
        check_int("n_topics", self.n_topics, 2, 256)
        check_int("n_products", self.n_products, 8)
        check_int("n_campaigns", self.n_campaigns, 1)
        check_int("n_segments", self.n_segments, 1, 64)
        check_int("n_users", self.n_users, 16)
        check_int("n_interest_tags", self.n_interest_tags, 2, 64)
        if self.n_interest_tags > self.n_users:
            raise ValueError(f"n_interest_tags == {self.n_interest_tags}, must be <= n_users")
        check_choice("tagger", self.tagger, TAGGERS)
        check_float("history_events", self.history_events, 1.0, 10000.0)
        check_float("target_ctr", self.target_ctr, *CTR_TARGET_RANGE)
        check_float("creative_scale", self.creative_scale, 0.0, 20.0)
        check_float("interest_strength", self.interest_strength, 0.0, 100.0)
        check_float("context_strength", self.context_strength, 0.0, 5.0)
        check_float("drift_amplitude", self.drift_amplitude, 0.0, 5.0)
        check_int("drift_period", self.drift_period, 2)
        for name, low, closed in (("slot_factors", 0.0, False), ("slot_shares", 0.0, True)):
            object.__setattr__(self, name, _slot_tuple(name, getattr(self, name), low, closed))
        if abs(sum(self.slot_shares) - 1.0) > 1e-9:
            raise ValueError(f"slot_shares == {list(self.slot_shares)}, must sum to 1 (sum {sum(self.slot_shares):.12g})")
        from adsim.memory import check_memory, world_bytes

        check_memory(world_bytes(self), f"a world with n_users == {self.n_users} and n_products == "
                     f"{self.n_products}", "n_users or n_products")


@dataclass(frozen=True)
class EnvConfig:
    """One CreativeSelection (or SlateSelection) scenario: a world plus how requests and candidates
    arrive (and, for slates, the page and its click model)."""

    world: WorldConfig = field(default_factory=WorldConfig)
    """The hidden world."""
    mode: str = "pool"
    """``"pool"``: K persistent creatives per campaign; ``"personalized"``: K fresh per request."""
    n_candidates: int = 8
    """K, candidates per request (the action space is ``Discrete(K)``; for slates ``Slate(K, L)``)."""
    horizon: int = 1000
    """Impressions per episode before truncation."""
    reward: str = "click"
    """Reward per impression: ``"click"``, ``"conversion"`` or ``"revenue"``."""
    campaign: int | None = None
    """Fix every episode to this campaign id; ``None`` draws one per episode from the stream."""
    language: str = "en"
    """Language headlines are rendered in (``"en"`` or ``"zh"``); the hidden model is the same."""
    fatigue_strength: float = 0.0
    """Logit penalty per unit of a user's remembered exposure to a creative's visual attributes."""
    fatigue_halflife: float = 2000.0
    """Half-life, in impressions of the env, of remembered exposure."""
    estimate_prior_strength: float = 20.0
    """Pseudo-impressions behind the running CTR estimate's prior (see ``adsim.running_ctr``)."""
    slate_size: int = 3
    """``adsim/SlateSelection-v0`` only: L, the ad positions a page fills, in [1, 10] (and at most
    ``n_candidates``, checked by the slate env)."""
    click_model: str = "pbm"
    """``adsim/SlateSelection-v0`` only: how a page's clicks arise (``adsim.click_models``):
    ``"pbm"`` (position-based), ``"cascade"`` or ``"dcm"`` (dependent click model)."""
    examination: tuple[float, ...] | None = None
    """``click_model="pbm"`` only: the examination probability of each of the L positions, each in
    (0, 1]; ``None`` derives them from ``slot_factors`` (:attr:`slate_examination`)."""
    continuation: tuple[float, ...] | None = None
    """``click_model="dcm"`` only: λ_l, the probability that a user who clicked at position l goes on
    scanning, each in [0, 1] and non-increasing down the page (what makes the descending top-L slate
    the exact oracle); ``None`` derives them from ``slot_factors`` (:attr:`slate_continuation`)."""
    mechanism: str = "second_price"
    """``adsim/AdAuction-v0`` only: the auction rule (``adsim.auction``): ``"second_price"``, ``"gsp"``
    (generalised second price with quality score: rank by bid × pCTR) or ``"first_price"``. The
    auction's L slots are ``slate_size`` positions exposed by :attr:`slate_examination`."""
    pricing: str = "cpc"
    """``adsim/AdAuction-v0`` only: ``"cpc"`` (bids and prices per click, paid on a click) or
    ``"cpm"`` (per impression, paid on a win); ``"gsp"`` needs ``"cpc"``."""
    reserve_price: float = 0.0
    """``adsim/AdAuction-v0`` only: the reserve price r >= 0 (unit of ``pricing``): an ad enters only
    with a bid >= r and pays at least r."""
    n_advertisers: int = 10
    """``adsim/AdAuction-v0`` only: M, the advertisers of every auction (ours and M − 1 competitors),
    in [1, 32]; with ``reserve_price == 0`` at least ``slate_size + 1`` (every slot contested)."""
    competitor_bid_ratio: float = 0.15
    """``adsim/AdAuction-v0`` only: the median competing per-click bid as a fraction of our campaign's
    conversion value (competitors sell comparable items), before the category and hour factors. Our
    true value of a click is the conversion value × P(conversion | click), 0.22 on average in the
    default world: at 0.15 a truthful bidder wins about 40 % of second-price auctions of 10
    advertisers for 3 slots (the top slot about 20 %)."""
    competitor_bid_sigma: float = 0.5
    """``adsim/AdAuction-v0`` only: σ of the lognormal competing bids (log-scale spread), in [0, 5]."""
    competitor_category_factors: tuple[float, ...] | None = None
    """``adsim/AdAuction-v0`` only: per product category (``adsim.creative.lexicon.CATEGORIES``, 8
    values > 0) multiplier of the median competing bid; ``None``: ``COMPETITOR_CATEGORY_FACTORS``."""
    competitor_hour_factors: tuple[float, float, float, float] = (0.8, 1.0, 1.1, 1.25)
    """``adsim/AdAuction-v0`` only: multiplier of the median competing bid in each 6-hour bucket of
    the request's hour (night, morning, afternoon, evening), each > 0."""
    competitor_quality_sigma: float = 0.3
    """``adsim/AdAuction-v0`` only: σ of the competitors' lognormal pCTRs around ``target_ctr`` (their
    quality score under gsp, their per-impression bid = per-click bid × pCTR under cpm), in [0, 5]."""
    budget: float | None = None
    """``adsim/AdAuction-v0`` only: our campaign's daily budget (an episode is a day), > 0;
    ``None``: unlimited. A bid above the budget left is capped at it (``info["bid_capped"]``)."""
    cpa_cap: float | None = None
    """``adsim/AdAuction-v0`` only: the campaign's cost-per-acquisition target, > 0, or ``None``. Not
    an auction rule: the env reports ``cpa`` and ``cpa_excess = max(0, spend − cpa_cap · conversions)``."""
    max_bid: float = 200.0
    """``adsim/AdAuction-v0`` only: the largest bid of the action space ``Box(0, max_bid)``, > 0."""
    conversion_value: float | None = None
    """``adsim/AdAuction-v0`` only: the value of one conversion to us, > 0; ``None``: the campaign's
    item price × (1 − discount) (``World.campaign_value``)."""
    cvr_prior: float = 0.2
    """``adsim/AdAuction-v0`` only: the platform's prior of conversions per click, in (0, 1]: the
    observation's ``cvr_estimate`` starts there and is shrunk towards it with
    ``estimate_prior_strength`` pseudo-clicks. The default is the default world's population mean
    (≈ 0.22; a platform knows its category averages): a prior far below it makes truthful bids lose
    every auction, so a campaign never wins, never sees a conversion and never learns."""

    def __post_init__(self):
        if not isinstance(self.world, WorldConfig):
            raise TypeError(f"world must be a WorldConfig, got {type(self.world).__name__}")
        check_choice("mode", self.mode, MODES)
        check_int("n_candidates", self.n_candidates, 2, 256)
        check_int("horizon", self.horizon, 1, 2**31)
        check_choice("reward", self.reward, REWARDS)
        if self.campaign is not None:
            check_int("campaign", self.campaign, 0, self.world.n_campaigns - 1)
        from adsim.creative.lexicon import LANGUAGES

        check_choice("language", self.language, LANGUAGES)
        check_float("fatigue_strength", self.fatigue_strength, 0.0, 10.0)
        check_float("fatigue_halflife", self.fatigue_halflife, 0.0, 1e9, open_low=True)
        check_float("estimate_prior_strength", self.estimate_prior_strength, 0.0, 1e9, open_low=True)
        check_int("slate_size", self.slate_size, 1, MAX_SLATE_SIZE)
        check_choice("click_model", self.click_model, CLICK_MODELS)
        for name, model, low, closed in (("examination", "pbm", 0.0, False), ("continuation", "dcm", 0.0, True)):
            value = getattr(self, name)
            if value is None:
                continue
            if self.click_model != model:
                raise ValueError(f"{name} applies to click_model {model!r} only, got click_model == "
                                 f"{self.click_model!r}; drop {name} or set click_model={model!r}")
            object.__setattr__(self, name, _position_tuple(name, value, self.slate_size, low, closed))
        if self.continuation is not None and any(b > a for a, b in zip(self.continuation, self.continuation[1:])):
            raise ValueError(f"continuation == {list(self.continuation)}, must be non-increasing down the page "
                             f"(users who clicked keep scanning no more eagerly further down)")
        self._check_auction()

    def _check_auction(self) -> None:
        """Validate the ``adsim/AdAuction-v0`` fields (each in its range, whatever the env)."""
        from adsim.auction import MECHANISMS, PRICINGS
        from adsim.creative.lexicon import CATEGORIES

        check_choice("mechanism", self.mechanism, MECHANISMS)
        check_choice("pricing", self.pricing, PRICINGS)
        if self.mechanism == "gsp" and self.pricing != "cpc":
            raise ValueError(f"pricing == {self.pricing!r}: mechanism 'gsp' ranks per-click bids by pCTR, "
                             f"pricing must be 'cpc'")
        check_float("reserve_price", self.reserve_price, 0.0, 1e12)
        check_int("n_advertisers", self.n_advertisers, 1, MAX_ADVERTISERS)
        check_float("competitor_bid_ratio", self.competitor_bid_ratio, 0.0, 1e6, open_low=True)
        check_float("competitor_bid_sigma", self.competitor_bid_sigma, 0.0, 5.0)
        check_float("competitor_quality_sigma", self.competitor_quality_sigma, 0.0, 5.0)
        if self.competitor_category_factors is not None:
            object.__setattr__(self, "competitor_category_factors", _positive_tuple(
                "competitor_category_factors", self.competitor_category_factors, len(CATEGORIES), "product category"))
        object.__setattr__(self, "competitor_hour_factors", _positive_tuple(
            "competitor_hour_factors", self.competitor_hour_factors, 4, "6-hour bucket"))
        for name in ("budget", "cpa_cap", "conversion_value"):
            if getattr(self, name) is not None:
                check_float(name, getattr(self, name), 0.0, 1e15, open_low=True)
        check_float("max_bid", self.max_bid, 0.0, 1e12, open_low=True)
        check_float("cvr_prior", self.cvr_prior, 0.0, 1.0, open_low=True)

    @property
    def slate_examination(self) -> tuple[float, ...]:
        """The PBM examination probability of each of the L positions: ``examination`` if given, else
        the world's ``slot_factors`` for positions 0–2 and, further down, a geometric continuation
        with the ratio of the last two slots: ``e_l = e_{l−1} · min(1, f_2 / f_1)`` for l >= 3
        (``(1, 0.75, 0.55)`` → 0.403, 0.296, …)."""
        if self.examination is not None:
            return self.examination
        return position_factors(self.world.slot_factors, self.slate_size)

    @property
    def slate_continuation(self) -> tuple[float, ...]:
        """The DCM continuation probability λ_l after a click at each of the L positions:
        ``continuation`` if given, else the ratios of the PBM examination (:attr:`slate_examination`
        extended one position further) made non-increasing: ``λ_l = min_{j <= l} min(1, e_{j+1} / e_j)``
        (``(1, 0.75, 0.55)`` → 0.75, 0.733, 0.733, …). A clicked position's user goes on with the
        chance a PBM user at that position goes on to examine the next one."""
        if self.continuation is not None:
            return self.continuation
        e = position_factors(self.world.slot_factors, self.slate_size + 1)
        lam, out = 1.0, []
        for a, b in zip(e, e[1:]):
            lam = min(lam, b / a)
            out.append(lam)
        return tuple(out)

    def replace(self, **changes) -> EnvConfig:
        """A copy with some fields changed; keys of ``WorldConfig`` go to ``world``."""
        world_keys = {f.name for f in dataclasses.fields(WorldConfig)}
        env_keys = {f.name for f in dataclasses.fields(EnvConfig)}
        world_changes = {k: changes.pop(k) for k in list(changes) if k in world_keys}
        unknown = [k for k in changes if k not in env_keys]
        if unknown:
            allowed = sorted((env_keys | world_keys) - {"world"})
            raise ValueError(f"unknown config key {unknown[0]!r};{suggest(unknown[0], allowed)}")
        world = dataclasses.replace(self.world, **world_changes) if world_changes else self.world
        return dataclasses.replace(self, world=world, **changes)


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "easy": {"creative_scale": 1.0},
    "hard": {"creative_scale": 0.1},
    "personalized": {"mode": "personalized"},
    "drifting": {"drift_amplitude": 1.0},
    # a page of 3 ad positions filled from 20 candidates (adsim/SlateSelection-v0; for CreativeSelection: K = 20)
    "slate": {"n_candidates": 20, "slate_size": 3},
    # an auction of 10 advertisers for 3 slots, second price per click (adsim/AdAuction-v0)
    "auction": {"n_advertisers": 10, "slate_size": 3, "mechanism": "second_price", "pricing": "cpc"},
    # `adsim calibrate --obd-sample --target-ctr 0.0035`: the Open Bandit Dataset's uniform-random
    # logger (ZOZOTOWN, ALL campaign) — its published full-data CTR 0.35 %; the 10,000-row sample
    # shows no position effect (every position ÷ top interval includes 1) and cannot pin down the
    # creative spread (between-item CV 0.42, 95 % interval [0, 0.94]: the default creative_scale
    # gives 0.14); each page shows all three positions, so each slot gets a third of the impressions
    "obd": {"target_ctr": 0.0035, "slot_factors": (1.0, 1.0, 1.0), "slot_shares": (1 / 3, 1 / 3, 1 / 3)},
}
"""Named scenarios. ``default`` has close gaps between a pool's creatives, as in real creative sets
(the best creative the lexicon allows about 2× the mean template creative); ``easy`` has large gaps
(8×: the world before that calibration, for teaching) and ``hard`` near-ties; ``obd`` is calibrated to the Open
Bandit Dataset (``adsim calibrate``)."""


def make_config(preset: str = "default", **overrides) -> EnvConfig:
    """Build an :class:`EnvConfig` from a preset name plus field overrides (env or world keys)."""
    check_choice("preset", preset, tuple(PRESETS))
    return EnvConfig().replace(**{**PRESETS[preset], **overrides})
