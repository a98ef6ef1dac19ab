"""Conditioning sequences from the observable tables, and the teacher-written training corpus.

A request is conditioned on :data:`N_FIELDS` tokens (see ``adsim.generator.tokenizer``): campaign
goal, product category, price tier, discount, the user's demographic bands, their two strongest
interest tags and most-browsed category, and the real-time context bucket. Everything comes from
the *observable* vectors the environment exposes (``Request.user_features``,
``campaign_features``, ``context_features``); a field that is not known for a request is the
field's ``none`` token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adsim.creative.lexicon import CATEGORIES, GOALS
from adsim.creative.sampler import CREATIVE_SLOTS, DRAWS_PER_CREATIVE, TemplateSampler
from adsim.running_ctr import Request
from adsim.generator.tokenizer import N_FIELDS, Vocab
from adsim.observation import CAMPAIGN_LAYOUT, CONTEXT_LAYOUT, DEMOGRAPHIC_FIELDS, user_layout
from adsim.validation import check_choice, check_float, check_int
from adsim.world import DISCOUNTS, PRICE_TIERS, World, context_features
# field indices
F_GOAL, F_CAT, F_TIER, F_DISC = 0, 1, 2, 3
F_DEMO = slice(4, 8)
F_TAG1, F_TAG2, F_TOPCAT = 8, 9, 10
F_CONTEXT = slice(11, 16)
NONE = -1
"""Field value meaning "unknown" (becomes the field's ``none`` token)."""


def user_fields(user_features: np.ndarray, n_interest_tags: int) -> np.ndarray:
    """(..., 7) demographic bands, top-2 interest tags and top category from observed user vectors."""
    uf, U = np.asarray(user_features), user_layout(n_interest_tags)
    demo = [U.argmax(uf, f) for f in DEMOGRAPHIC_FIELDS]
    order = np.argsort(-U.take(uf, "interest_tags"), axis=-1, kind="stable")
    return np.stack([*demo, order[..., 0], order[..., 1], U.argmax(uf, "category_shares")], axis=-1)


def campaign_fields(campaign_features: np.ndarray) -> np.ndarray:
    """(..., 4) goal, category, price tier, discount index from observed campaign vectors."""
    cf, C = np.asarray(campaign_features), CAMPAIGN_LAYOUT
    disc = np.abs(C.take(cf, "discount") - DISCOUNTS).argmin(-1)
    return np.stack([C.argmax(cf, "goal"), C.argmax(cf, "category"), C.argmax(cf, "price_tier"), disc], axis=-1)


def context_fields(context_features: np.ndarray) -> np.ndarray:
    """(..., 5) hour bucket, weekend, location, weather, device from observed context vectors."""
    x, X = np.asarray(context_features), CONTEXT_LAYOUT
    weekend = (X.take(x, "weekend")[..., 0] > 0.5).astype(np.int64)
    return np.stack([X.argmax(x, "hour_bucket"), weekend, X.argmax(x, "location"), X.argmax(x, "weather"),
                     X.argmax(x, "device")], axis=-1)


def field_values(goal, category, user_features=None, campaign_features=None, context_features=None,
                 n_interest_tags: int = 8) -> np.ndarray:
    """(..., N_FIELDS) field values (``NONE`` where unknown) of a batch of requests.

    Args:
        goal, category: (...) campaign goal and product category ids.
        user_features: (..., user_dim) observed user vectors, or None (a campaign's pool).
        campaign_features: (..., campaign_dim) observed campaign vectors, or None (tier and
            discount unknown).
        context_features: (..., context_dim) observed context vectors, or None.
    """
    goal, category = np.asarray(goal), np.asarray(category)
    lead = np.broadcast_shapes(goal.shape, category.shape)
    out = np.full(lead + (N_FIELDS,), NONE, dtype=np.int64)
    out[..., F_GOAL], out[..., F_CAT] = goal, category
    if campaign_features is not None:
        out[..., F_TIER : F_DISC + 1] = campaign_fields(campaign_features)[..., 2:]
    if user_features is not None:
        out[..., 4:11] = user_fields(user_features, n_interest_tags)
    if context_features is not None:
        out[..., F_CONTEXT] = context_fields(context_features)
    return out


def to_tokens(values: np.ndarray, vocab: Vocab) -> np.ndarray:
    """(..., N_FIELDS) field values → conditioning token ids; raises on out-of-range values."""
    values = np.asarray(values)
    if values.shape[-1:] != (N_FIELDS,):
        raise ValueError(f"conditioning values have shape {values.shape}, expected (..., {N_FIELDS})")
    bad = (values < NONE) | (values >= vocab.field_sizes)
    if bad.any():
        f = int(np.argwhere(bad)[0][-1])
        v = values[bad].flat[0]
        raise ValueError(f"conditioning field {vocab.fields[f][0]!r} == {v}, must be in "
                         f"[0, {vocab.field_sizes[f] - 1}] or {NONE} (unknown)")
    return vocab.field_offsets + np.where(values == NONE, vocab.field_sizes, values)


@dataclass(frozen=True)
class Conditioning:
    """One request described by names (what ``adsim generate`` builds from its arguments)."""

    goal: str
    category: str
    tags: tuple[int, ...]
    top_category: str | None = None
    tier: int | None = None
    discount: float | None = None
    n_interest_tags: int = 8

    def __post_init__(self):
        check_choice("goal", self.goal, GOALS)
        check_choice("category", self.category, CATEGORIES)
        if not isinstance(self.tags, tuple) or len(self.tags) == 0:
            raise ValueError(f"tags == {self.tags!r}: give one or two interest tag ids "
                             f"in [0, {self.n_interest_tags - 1}]")
        if len(self.tags) > 2:
            raise ValueError(f"tags == {self.tags!r}: at most two interest tags are used")
        for t in self.tags:
            check_int("tags[i]", t, 0, self.n_interest_tags - 1)
        if self.top_category is not None:
            check_choice("top_category", self.top_category, CATEGORIES)
        if self.tier is not None:
            check_int("tier", self.tier, 0, 2)
        if self.discount is not None:
            check_float("discount", self.discount, 0.0, 0.5)
            if not np.isclose(DISCOUNTS, self.discount).any():
                raise ValueError(f"discount == {self.discount}, must be one of {DISCOUNTS.tolist()}")

    def values(self) -> np.ndarray:
        """(N_FIELDS,) field values."""
        v = np.full(N_FIELDS, NONE, dtype=np.int64)
        v[F_GOAL], v[F_CAT] = GOALS.index(self.goal), CATEGORIES.index(self.category)
        if self.tier is not None:
            v[F_TIER] = self.tier
        if self.discount is not None:
            v[F_DISC] = int(np.isclose(DISCOUNTS, self.discount).argmax())
        v[F_TAG1] = self.tags[0]
        v[F_TAG2] = self.tags[1] if len(self.tags) > 1 else NONE
        top = self.top_category if self.top_category is not None else self.category
        v[F_TOPCAT] = CATEGORIES.index(top)
        return v


@dataclass(frozen=True)
class Corpus:
    """Teacher-written (conditioning → creative) pairs."""

    values: np.ndarray  # (M, N_FIELDS) field values
    creatives: np.ndarray  # (M, CREATIVE_SLOTS) teacher creatives
    user: np.ndarray | None = None  # (M,) id of the user each pair was written for (None: not recorded)


def teacher(world: World, n_interest_tags: int) -> TemplateSampler:
    """The teacher grammar: the template sampler with its audience personalisation."""
    return TemplateSampler(world.lexicon, world.audience_by_category,
                           category_slice=user_layout(n_interest_tags)["category_shares"])


def check_users(users, n_users: int) -> np.ndarray | None:
    """``users`` validated as the ids requests may be drawn from: None (every user) or a non-empty
    1-D integer array of distinct ids in [0, ``n_users`` − 1]; returned as int64."""
    if users is None:
        return None
    arr = np.asarray(users)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"users must be None or an integer array of user ids, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"users has shape {arr.shape}, must be a non-empty 1-D array of user ids")
    if arr.min() < 0 or arr.max() >= n_users:
        raise ValueError(f"users holds ids in [{arr.min()}, {arr.max()}], must be in [0, {n_users - 1}]")
    if len(np.unique(arr)) != arr.size:
        raise ValueError("users holds repeated ids: give each allowed user once")
    return arr.astype(np.int64, copy=False)


def sample_requests(world: World, n: int, rng: np.random.Generator,
                    synthetic_campaigns: bool = False, users: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``n`` random requests from the world's public distributions.

    Returns ids: ``user``, ``campaign``, ``product``, ``goal``, ``category``, and the context
    (``hour``, ``weekend``, ``location``, ``weather``, ``device``, ``position``). With
    ``synthetic_campaigns`` the advertised item is any catalog product with any goal (campaign id
    −1), so every goal × category combination occurs, not only the world's campaigns. ``users``
    (ids, e.g. :func:`adsim.users.seen_user_ids`) restricts the users to those, drawn uniformly;
    None draws from every user. Either way the same draws of ``rng`` are made, in the same order.
    """
    users = check_users(users, world.config.n_users)
    cm = world.context
    if synthetic_campaigns:
        campaign = np.full(n, -1)
        product = rng.integers(0, world.config.n_products, n)
        goal = rng.integers(0, len(GOALS), n)
    else:
        campaign = rng.integers(0, world.config.n_campaigns, n)
        product, goal = world.campaign_product[campaign], world.campaign_goal[campaign]

    def draw(cdf):
        return np.searchsorted(cdf, rng.random(n), side="right").clip(0, len(cdf) - 1)

    user = rng.integers(0, world.config.n_users, n) if users is None else users[rng.integers(0, len(users), n)]
    return {"user": user, "campaign": campaign, "product": product,
            "goal": goal, "category": world.product_category[product], "hour": draw(cm.hour_cdf),
            "weekend": (rng.random(n) < 2 / 7).astype(np.int64), "location": draw(cm.location_cdf),
            "weather": draw(cm.weather_cdf), "device": draw(cm.device_cdf), "position": draw(cm.position_cdf)}


def campaign_vectors(world: World, product: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """(n, campaign_dim) observed campaign vectors of (product, goal) pairs, laid out as
    ``World.campaign_features``."""
    eye = np.eye(max(len(GOALS), len(CATEGORIES), PRICE_TIERS), dtype=np.float32)
    return np.concatenate([eye[goal, : len(GOALS)], eye[world.product_category[product], : len(CATEGORIES)],
                           eye[world.product_tier[product], :PRICE_TIERS],
                           world.product_discount[product, None].astype(np.float32)], axis=1)


def request_observation(world: World, req: dict[str, np.ndarray]) -> Request:
    """The observable part of requests from :func:`sample_requests` (no candidates yet: (n, 0, S))."""
    ctx = context_features(req["hour"], req["weekend"], req["location"], req["weather"], req["device"],
                           req["position"])
    n = len(req["user"])
    return Request(req["campaign"], world.user_features[req["user"]], ctx,
                   campaign_vectors(world, req["product"], req["goal"]),
                   np.zeros((n, 0, CREATIVE_SLOTS), dtype=np.int64))


def request_values(world: World, req: dict[str, np.ndarray]) -> np.ndarray:
    """(n, N_FIELDS) full conditioning of requests from :func:`sample_requests`."""
    obs = request_observation(world, req)
    return field_values(req["goal"], req["category"], obs.user_features,
                        obs.campaign_features, obs.context_features, world.config.n_interest_tags)


FIELD_GROUPS = {"price": slice(F_TIER, F_DISC + 1), "demographics": F_DEMO, "interests": slice(F_TAG1, F_TOPCAT + 1),
                "context": F_CONTEXT}
"""Groups of optional fields that may be unknown together."""


def drop_groups(values: np.ndarray, rng: np.random.Generator, drop_prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Mark each optional field group of each row unknown with probability ``drop_prob``.

    Returns the new values (n, N_FIELDS) and a (n,) mask of rows whose interests were dropped.
    """
    values = values.copy()
    dropped = {}
    for name, cols in FIELD_GROUPS.items():
        dropped[name] = rng.random(len(values)) < drop_prob
        values[dropped[name], cols] = NONE
    return values, dropped["interests"]


def build_corpus(world: World, size: int, seed: int, drop_prob: float = 0.3,
                 users: np.ndarray | None = None) -> Corpus:
    """``size`` teacher pairs over random requests for any catalog item and goal; seeded. ``users``:
    the ids the requests' users are drawn from (None: every user; see :func:`sample_requests`).

    Each optional field group (price, demographics, interests, context; :data:`FIELD_GROUPS`) is
    unknown with probability ``drop_prob`` so the model also serves requests where it is (a
    campaign's pool has no user; the ``CandidateSource`` protocol passes no context). Without the
    interests the teacher writes its unpersonalised text.
    """
    check_int("size", size, 1)
    check_float("drop_prob", drop_prob, 0.0, 1.0)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 5]))
    req = sample_requests(world, size, rng, synthetic_campaigns=True, users=users)
    values, no_interests = drop_groups(request_values(world, req), rng, drop_prob)
    goal, cat = req["goal"], req["category"]
    u = rng.random((size, 1, DRAWS_PER_CREATIVE))
    teach = teacher(world, world.config.n_interest_tags)
    uf = world.user_features[req["user"]]
    creatives = teach.candidates(u, goal, cat, uf)[:, 0]
    plain = teach.candidates(u, goal, cat, None)[:, 0]
    return Corpus(values, np.where(no_interests[:, None], plain, creatives), req["user"])
