"""The hidden world: topics, catalog, campaigns, users with behaviour histories, context effects and
the hidden appeal of every phrase and visual attribute.

A :class:`World` is sampled once from ``WorldConfig.seed`` with independent
``np.random.SeedSequence`` streams for each component. Policies never see it: they see the
observable tables it derives (``user_features``, ``campaign_features``) through the environment.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from adsim.config import WorldConfig
from adsim.creative.lexicon import ATTRIBUTES, CATEGORIES, GOALS, LEXICON, ROLES, Lexicon

# Observable categorical fields and their sizes.
DEMOGRAPHICS = {"age_band": 6, "gender": 3, "occupation": 8, "city_tier": 4}
HOUR_BUCKETS = 4  # night, morning, afternoon, evening
LOCATIONS = ("home", "work", "commute", "shopping", "other")
WEATHERS = ("sunny", "cloudy", "rain", "snow")
DEVICES = ("mobile", "desktop", "tablet")
POSITION_FACTOR = np.array(WorldConfig.slot_factors)
"""The default multiplicative effect of the ad slot on click probability (slot 0 is the top slot);
a world's own is ``world.context.position_factor`` (``WorldConfig.slot_factors``)."""
PRICE_TIERS = 3
PRICE_BY_TIER = np.array([15.0, 50.0, 150.0])
DISCOUNTS = np.array([0.0, 0.1, 0.2, 0.3, 0.5])

_HOUR_TRAFFIC = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.2, 3, 2.6, 2.4, 2.8, 3.4, 2.8, 2.4, 2.4, 2.6, 3, 3.6, 4.4, 5, 4.6, 3.4, 2]
)
_LOCATION_P = np.array([0.45, 0.2, 0.15, 0.1, 0.1])
_WEATHER_P = np.array([0.45, 0.3, 0.18, 0.07])
_DEVICE_P = np.array([0.72, 0.2, 0.08])
_AUDIENCE_BY_CATEGORY = ("for gamers", "for students", "for students", "for busy parents",
                         "for athletes", "for home chefs", "for busy parents", "for travellers")


def _cdf(p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p / p.sum())
    c[-1] = 1.0
    return c


def _onehot(idx: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[idx]


@dataclass(frozen=True)
class ContextModel:
    """Public context distribution and hidden context effects on interests."""

    hour_cdf: np.ndarray  # (24,)
    location_cdf: np.ndarray
    weather_cdf: np.ndarray
    device_cdf: np.ndarray
    position_cdf: np.ndarray
    position_factor: np.ndarray  # (N_SLOTS,) multiplicative slot effect on the click probability
    # hidden: log-multipliers on topics, per value of each field
    w_hour: np.ndarray  # (HOUR_BUCKETS, d)
    w_weekend: np.ndarray  # (2, d)
    w_location: np.ndarray  # (len(LOCATIONS), d)
    w_weather: np.ndarray  # (len(WEATHERS), d)
    device_bias: np.ndarray  # (len(DEVICES),) logit shift


@dataclass(frozen=True)
class World:
    """Every hidden and observable table of one sampled world."""

    config: WorldConfig
    lexicon: Lexicon
    # catalog and campaigns
    category_topic: np.ndarray  # (n_categories, d) hidden
    product_topic: np.ndarray  # (n_products, d) hidden
    product_category: np.ndarray  # (n_products,)
    product_tier: np.ndarray  # (n_products,)
    product_discount: np.ndarray  # (n_products,)
    campaign_product: np.ndarray  # (n_campaigns,)
    campaign_goal: np.ndarray  # (n_campaigns,)
    # users (hidden)
    user_segment: np.ndarray  # (n_users,)
    user_theta: np.ndarray  # (n_users, d) on the simplex
    user_bias: np.ndarray  # (n_users,) base click propensity (logit shift)
    user_price_sens: np.ndarray  # (n_users,) in [0, 1]
    user_fatigue_sens: np.ndarray  # (n_users,) > 0
    # users (observable)
    user_demographics: np.ndarray  # (n_users, 4) ints
    user_history: np.ndarray  # (n_users, n_products, 3) browse/cart/purchase counts
    user_tags: np.ndarray  # (n_users, n_interest_tags) tag weights in [0, 1]
    user_features: np.ndarray  # (n_users, user_dim) float32 in [0, 1]
    campaign_features: np.ndarray  # (n_campaigns, campaign_dim) float32
    context: ContextModel
    # creatives (hidden); parts = [empty] + phrases + attribute values
    part_appeal: np.ndarray  # (n_parts, d)
    part_goal: np.ndarray  # (n_parts, n_goals)
    part_is_discount: np.ndarray  # (n_parts,) bool
    topic_phase: np.ndarray  # (d,) drift phases
    audience_by_category: np.ndarray  # (n_categories,) public phrase id used by the sampler

    @property
    def d(self) -> int:
        return self.config.n_topics

    @property
    def n_parts(self) -> int:
        return 1 + self.lexicon.n_phrases + self.lexicon.n_attr_values

    @property
    def user_dim(self) -> int:
        return int(self.user_features.shape[1])

    @property
    def campaign_dim(self) -> int:
        return int(self.campaign_features.shape[1])

    @functools.cached_property
    def part_goal_by_goal(self) -> np.ndarray:
        """``part_goal`` goal-major and flat, (n_goals · n_parts,): entry ``g · n_parts + v`` is
        ``part_goal[v, g]`` (one ``take`` gathers a goal's fit of many parts)."""
        table = np.ascontiguousarray(self.part_goal.T).reshape(-1)
        table.flags.writeable = False
        return table

    @property
    def campaign_category(self) -> np.ndarray:
        return self.product_category[self.campaign_product]

    @functools.cached_property
    def fingerprint(self) -> str:
        """The world's identity: a hash of its ``WorldConfig`` and of the tables it generated.

        Saved models and logs record it; loading one into a world with another fingerprint raises
        (see :func:`check_world`). It changes when any config field changes and when the code that
        samples worlds changes what it generates.
        """
        h = hashlib.sha256(json.dumps(dataclasses.asdict(self.config), sort_keys=True).encode())
        for name in _FINGERPRINT_TABLES:
            h.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        return "world-" + h.hexdigest()[:16]

    @property
    def campaign_value(self) -> np.ndarray:
        """(n_campaigns,) revenue of one conversion: price × (1 − discount)."""
        p = self.campaign_product
        return PRICE_BY_TIER[self.product_tier[p]] * (1.0 - self.product_discount[p])


_FINGERPRINT_TABLES = ("product_topic", "campaign_product", "campaign_goal", "user_theta", "user_bias",
                       "user_price_sens", "user_features", "campaign_features", "part_appeal", "part_goal")


_FINGERPRINTS: dict[WorldConfig, str] = {}


def world_fingerprint(world: World | WorldConfig) -> str:
    """:attr:`World.fingerprint` of a world, or of the (cached) world of a ``WorldConfig``."""
    if isinstance(world, WorldConfig):
        if world not in _FINGERPRINTS:
            if len(_FINGERPRINTS) >= 64:
                _FINGERPRINTS.pop(next(iter(_FINGERPRINTS)))
            _FINGERPRINTS[world] = build_world(world).fingerprint
        return _FINGERPRINTS[world]
    if not isinstance(world, World):
        raise TypeError(f"world must be a World or WorldConfig, got {type(world).__name__}")
    return world.fingerprint


def check_world(recorded: str | None, world: World | WorldConfig, what: str, *,
                allow_other_world: bool = False, opt_in: str = "allow_other_world=True") -> None:
    """Raise ``ValueError`` unless ``recorded`` (the fingerprint a model or log carries) is ``world``'s.

    Args:
        recorded: the fingerprint saved with the model or log (``None``: it recorded none).
        world: the world it is about to be used in.
        what: what is checked, for the message (e.g. ``"ctr model 'runs/deepfm'"``).
        allow_other_world: the explicit opt-in of transfer experiments: skip the check.
        opt_in: how the caller spells that opt-in, for the message (e.g. a CLI flag).
    """
    if allow_other_world:
        return
    expected = world_fingerprint(world)
    if recorded is None:
        raise ValueError(f"{what} records no world fingerprint, so it cannot be checked against this world "
                         f"({expected}); re-create it with this version of adsim, or pass {opt_in} for a "
                         f"transfer experiment")
    if recorded != expected:
        cfg = world.config if isinstance(world, World) else world
        raise ValueError(f"{what} comes from world {recorded}, but this world (seed == {cfg.seed}) is {expected}; "
                         f"use it in the world it was made in, or pass {opt_in} for a transfer experiment")


@functools.lru_cache(maxsize=16)
def cached_world(config: WorldConfig) -> World:
    """Build (once per process) the world of a config; worlds are immutable."""
    return build_world(config)


def build_world(config: WorldConfig, lexicon: Lexicon = LEXICON) -> World:
    """Sample a world. Deterministic in ``config``."""
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(6)]
    catalog_rng, user_rng, history_rng, context_rng, creative_rng, tag_rng = rngs
    d, n_cat = config.n_topics, len(CATEGORIES)

    category_topic = catalog_rng.dirichlet(np.full(d, 0.25), size=n_cat)
    product_category = catalog_rng.integers(0, n_cat, size=config.n_products)
    product_category[:n_cat] = np.arange(n_cat)  # every category is stocked
    product_topic = _dirichlet_rows(catalog_rng, 40 * category_topic[product_category] + 0.05)
    product_tier = catalog_rng.choice(PRICE_TIERS, size=config.n_products, p=[0.45, 0.4, 0.15])
    product_discount = catalog_rng.choice(DISCOUNTS, size=config.n_products, p=[0.4, 0.2, 0.2, 0.12, 0.08])
    campaign_product = catalog_rng.integers(0, config.n_products, size=config.n_campaigns)
    campaign_goal = catalog_rng.integers(0, len(GOALS), size=config.n_campaigns)

    seg_weight = user_rng.dirichlet(np.full(config.n_segments, 3.0))
    seg_mean = user_rng.dirichlet(np.full(d, 0.3), size=config.n_segments)
    seg_bias = user_rng.normal(0.0, 0.4, size=config.n_segments)
    seg_price = user_rng.uniform(0.1, 0.9, size=config.n_segments)
    segment = user_rng.choice(config.n_segments, size=config.n_users, p=seg_weight)
    theta = _dirichlet_rows(user_rng, 12 * seg_mean[segment] + 0.08)
    bias = seg_bias[segment] + user_rng.normal(0.0, 0.3, size=config.n_users)
    price_sens = np.clip(seg_price[segment] + user_rng.normal(0, 0.1, config.n_users), 0.0, 1.0)
    fatigue_sens = user_rng.gamma(4.0, 0.25, size=config.n_users)
    demographics = np.stack(
        [_choice_rows(user_rng, _seg_probs(user_rng, config.n_segments, n)[segment]) for n in DEMOGRAPHICS.values()],
        axis=1,
    )

    history = _draw_history(history_rng, config, theta, product_topic, product_tier, price_sens)
    tags = _derive_tags(tag_rng, config, history)
    user_features = _user_features(demographics, tags, history, product_category, product_tier)
    campaign_features = np.concatenate(
        [
            _onehot(campaign_goal, len(GOALS)),
            _onehot(product_category[campaign_product], n_cat),
            _onehot(product_tier[campaign_product], PRICE_TIERS),
            product_discount[campaign_product, None].astype(np.float32),
        ],
        axis=1,
    )
    context = _context_model(context_rng, config, d, category_topic)
    part_appeal, part_goal, is_discount = _creative_effects(creative_rng, config, lexicon)
    audience = np.array([lexicon.texts["en"].index(a) for a in _AUDIENCE_BY_CATEGORY])
    return World(
        config=config,
        lexicon=lexicon,
        category_topic=category_topic,
        product_topic=product_topic,
        product_category=product_category,
        product_tier=product_tier,
        product_discount=product_discount,
        campaign_product=campaign_product,
        campaign_goal=campaign_goal,
        user_segment=segment,
        user_theta=theta,
        user_bias=bias,
        user_price_sens=price_sens,
        user_fatigue_sens=fatigue_sens,
        user_demographics=demographics,
        user_history=history,
        user_tags=tags,
        user_features=user_features,
        campaign_features=campaign_features,
        context=context,
        part_appeal=part_appeal,
        part_goal=part_goal,
        part_is_discount=is_discount,
        topic_phase=creative_rng.uniform(0, 2 * np.pi, size=d),
        audience_by_category=audience,
    )


def _dirichlet_rows(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """One Dirichlet draw per row of ``alpha`` (n, k): the same numbers as ``rng.dirichlet(row)``
    row after row, without a Python loop over rows.

    NumPy draws a Dirichlet vector as k standard gammas, in order, divided by their sequential sum
    (when the row's largest alpha is >= 0.1; below that it breaks sticks with beta draws, so such
    inputs, which no world's parameter range produces, take the row-by-row path)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.max(axis=1).min() < 0.1:
        return np.stack([rng.dirichlet(row) for row in alpha]).reshape(alpha.shape)
    g = rng.standard_gamma(alpha)  # row-major: the order the row-by-row draws take
    acc = g[:, 0].copy()
    for j in range(1, alpha.shape[1]):  # a loop over the k columns, summed in NumPy's order
        acc += g[:, j]
    return g * (1.0 / acc)[:, None]


def _choice_rows(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``p`` (n, k): the same numbers as ``rng.choice(k, p=row)``
    row after row (one uniform each, against the row's normalised cumulative sum)."""
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random(p.shape[0])
    return (cdf <= u[:, None]).sum(axis=1)


def _seg_probs(rng: np.random.Generator, n_segments: int, n: int) -> np.ndarray:
    """Per-segment distributions over a demographic field: correlated with, not equal to, segment."""
    return rng.dirichlet(np.full(n, 0.7), size=n_segments) * 0.8 + 0.2 / n


def _draw_history(rng, config, theta, product_topic, product_tier, price_sens) -> np.ndarray:
    """Browse → cart → purchase counts, (n_users, n_products, 3), drawn from the interests."""
    pref = 25.0 * theta @ product_topic.T
    pref -= pref.max(axis=1, keepdims=True)
    p = np.exp(pref)
    p /= p.sum(axis=1, keepdims=True)
    n_events = rng.poisson(config.history_events, size=theta.shape[0]) + 3
    browse = rng.multinomial(n_events, p)
    cart = rng.binomial(browse, 0.25)
    buy_p = np.clip(0.55 - 0.2 * price_sens[:, None] * product_tier[None, :], 0.02, 1.0)
    purchase = rng.binomial(cart, buy_p)
    return np.stack([browse, cart, purchase], axis=-1).astype(np.int32)


def _derive_tags(rng, config, history) -> np.ndarray:
    """Interest tags from behaviour history, with scikit-learn clustering (imported here: building a
    world is the only step that needs scikit-learn, so ``import adsim`` does not load it)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import LatentDirichletAllocation

    weighted = history @ np.array([1.0, 3.0, 6.0])  # (n_users, n_products)
    seed = int(rng.integers(0, 2**31 - 1))
    if config.tagger == "lda":
        lda = LatentDirichletAllocation(
            n_components=config.n_interest_tags, random_state=seed, learning_method="batch", max_iter=15
        )
        return lda.fit_transform(np.round(weighted)).astype(np.float32)
    profile = weighted / np.maximum(weighted.sum(axis=1, keepdims=True), 1e-9)
    km = KMeans(n_clusters=config.n_interest_tags, n_init=3, random_state=seed).fit(profile)
    dist = km.transform(profile)
    order = np.argsort(dist, axis=1)
    tags = np.zeros_like(dist, dtype=np.float32)
    rows = np.arange(dist.shape[0])
    tags[rows, order[:, 0]] = 1.0
    tags[rows, order[:, 1]] = 0.5
    return tags


def _user_features(demographics, tags, history, product_category, product_tier) -> np.ndarray:
    """Observable user vector in [0, 1]: demographics, tags, category shares, activity."""
    n_cat = len(CATEGORIES)
    weighted = history @ np.array([1.0, 3.0, 6.0])
    cat_share = weighted @ np.eye(n_cat)[product_category]
    cat_share /= np.maximum(cat_share.sum(axis=1, keepdims=True), 1e-9)
    browse, purchase = history[..., 0].sum(1), history[..., 2].sum(1)
    activity = np.log1p(browse) / np.log1p(max(browse.max(), 1))
    buy_rate = purchase / np.maximum(browse, 1)
    tier = (history[..., 2] @ product_tier) / np.maximum(purchase, 1) / (PRICE_TIERS - 1)
    demo = [_onehot(demographics[:, i], n) for i, n in enumerate(DEMOGRAPHICS.values())]
    dense = np.stack([activity, buy_rate, tier], axis=1)
    return np.concatenate([*demo, tags, cat_share, dense], axis=1).astype(np.float32)


def _context_model(rng, config, d, category_topic) -> ContextModel:
    cat = {c: i for i, c in enumerate(CATEGORIES)}
    w_hour = rng.normal(0, 1, (HOUR_BUCKETS, d))
    w_hour[3] += 2.0 * (category_topic[cat["toys"]] + category_topic[cat["books"]]) * d / 2  # evening → leisure
    w_weather = rng.normal(0, 1, (len(WEATHERS), d))
    w_weather[2] += 2.0 * category_topic[cat["home"]] * d / 2  # rain → home goods
    w_location = rng.normal(0, 1, (len(LOCATIONS), d))
    w_location[1] += 2.0 * category_topic[cat["electronics"]] * d / 2  # work → electronics
    return ContextModel(
        hour_cdf=_cdf(_HOUR_TRAFFIC),
        location_cdf=_cdf(_LOCATION_P),
        weather_cdf=_cdf(_WEATHER_P),
        device_cdf=_cdf(_DEVICE_P),
        position_cdf=_cdf(np.array(config.slot_shares, dtype=np.float64)),
        position_factor=np.array(config.slot_factors, dtype=np.float64),
        w_hour=w_hour,
        w_weekend=rng.normal(0, 1, (2, d)),
        w_location=w_location,
        w_weather=w_weather,
        device_bias=np.array([0.0, -0.25, -0.1]),
    )


def _creative_effects(rng, config, lexicon: Lexicon):
    """Hidden appeal vectors (topic space) and goal congruence of every creative part."""
    d, n_goals = config.n_topics, len(GOALS)
    n_parts = 1 + lexicon.n_phrases + lexicon.n_attr_values
    scale = config.creative_scale
    appeal = rng.normal(0.0, 0.05 * scale, size=(n_parts, d))
    goal = rng.normal(0.0, 0.015 * scale, size=(n_parts, n_goals))
    # Goal-congruent roles: discount phrases fit promotions, social proof fits social proof …
    congruent = {"discount": "promotion", "social_proof": "social_proof", "novelty": "new_arrival",
                 "style": "brand", "benefit": "recommendation", "urgency": "promotion"}
    role = lexicon.phrase_role
    for r, g in congruent.items():
        goal[1:1 + lexicon.n_phrases][role == ROLES.index(r), GOALS.index(g)] += 0.02 * scale
    appeal[0] = 0.0
    goal[0] = 0.0
    is_discount = np.zeros(n_parts, dtype=bool)
    is_discount[1:1 + lexicon.n_phrases] = role == ROLES.index("discount")
    assert len(ATTRIBUTES) == len(lexicon.attr_sizes)
    return appeal, goal, is_discount


def context_features(hour, weekend, location, weather, device, position) -> np.ndarray:
    """Observable context vector in [0, 1] from context ids (any leading shape)."""
    ang = hour * (2 * np.pi / 24)
    parts = [
        ((np.sin(ang) + 1) / 2)[..., None],
        ((np.cos(ang) + 1) / 2)[..., None],
        _onehot(hour // 6, HOUR_BUCKETS),
        weekend[..., None].astype(np.float32),
        _onehot(location, len(LOCATIONS)),
        _onehot(weather, len(WEATHERS)),
        _onehot(device, len(DEVICES)),
        _onehot(position, len(POSITION_FACTOR)),
    ]
    return np.concatenate([p.astype(np.float32) for p in parts], axis=-1)


CONTEXT_DIM = 2 + HOUR_BUCKETS + 1 + len(LOCATIONS) + len(WEATHERS) + len(DEVICES) + len(POSITION_FACTOR)
