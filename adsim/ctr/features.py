"""The feature pipeline of the CTR models: observed request + creative → sparse (id, value) slots.

One encoding serves training and serving. Every impression becomes ``S`` *slots*, each a feature
id into one shared vocabulary and a value (1 for a categorical value, the raw number for a weighted
or numeric one). Slots are grouped into *fields* (one embedding per field for DeepFM / DCN-v2):

| field | slots | from |
|---|---|---|
| age_band, gender, occupation, city_tier | 1 each (categorical) | user demographics one-hots |
| interest_tags | n_interest_tags (weighted) | user tag weights |
| category_shares | 8 (weighted) | user behaviour-history shares |
| user_dense | 3 (numeric) | activity, purchase rate, mean price tier |
| hour_cycle | 2 (numeric) | hour sin, cos |
| hour_bucket, weekend, location, weather, device, ad_slot | 1 each | context one-hots |
| goal, category, price_tier | 1 each | campaign one-hots |
| discount | 1 (numeric) | campaign discount |
| campaign_id | 1 | campaign id (``FeatureSpec.use_campaign_id``) |
| phrases | 4 (bag: part id, value 1; empty slot value 0) | creative phrase slots |
| template, color, image_style, cta | 1 each | creative visual attributes |

Creative slots use the part ids of ``adsim.creative.sampler.creative_parts`` (the same parts the
running estimate counts).
| unparsed | 1 | creative's unparsed-token count |

Request-level slots are encoded once per request and broadcast over its K candidates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from adsim.config import EnvConfig
from adsim.creative.lexicon import ATTRIBUTES, LEXICON, MAX_PHRASES
from adsim.creative.parser import MAX_UNPARSED
from adsim.creative.sampler import CREATIVE_SLOTS, N_ATTRS, creative_parts
from adsim.observation import (CAMPAIGN_LAYOUT, CANDIDATE_ATTRIBUTES, CANDIDATE_LAYOUT, CONTEXT_LAYOUT,
                               DEMOGRAPHIC_FIELDS, user_layout)
from adsim.validation import check_int


class Encoded(NamedTuple):
    """Encoded impressions: ``idx`` (..., S) int64 feature ids and ``val`` (..., S) float32 values."""

    idx: np.ndarray
    val: np.ndarray


@dataclass(frozen=True)
class Block:
    """A group of input columns that becomes one field: ``kind`` is cat, bin or num."""

    name: str
    source: str  # user, context, campaign
    start: int
    size: int
    kind: str

    @property
    def n_request_slots(self) -> int:
        """Slots of the request (user, context, campaign); the creative's follow them."""
        return self.n_slots - (MAX_PHRASES + N_ATTRS + 1)

    @property
    def n_slots(self) -> int:
        return self.size if self.kind == "num" else 1

    @property
    def n_ids(self) -> int:
        return {"cat": self.size, "bin": 2, "num": self.size}[self.kind]


@dataclass(frozen=True)
class FeatureSpec:
    """Everything the encoding depends on; saved with a model (JSON) and checked against an env."""

    n_interest_tags: int = 8
    """Interest tags in the user vector (``WorldConfig.n_interest_tags``)."""
    n_campaigns: int = 20
    """Campaign ids (``WorldConfig.n_campaigns``)."""
    use_campaign_id: bool = True
    """Whether the campaign id is a feature (it is in ``Request``, not in the observation)."""
    n_phrases: int = LEXICON.n_phrases
    """Phrases in the lexicon."""
    attr_sizes: tuple[int, ...] = LEXICON.attr_sizes
    """Values per visual attribute."""

    def __post_init__(self):
        check_int("n_interest_tags", self.n_interest_tags, 2, 64)
        check_int("n_campaigns", self.n_campaigns, 1)
        check_int("n_phrases", self.n_phrases, 1)
        if not isinstance(self.use_campaign_id, bool):
            raise TypeError(f"use_campaign_id must be a bool, got {self.use_campaign_id!r}")
        object.__setattr__(self, "attr_sizes", tuple(int(a) for a in self.attr_sizes))
        if len(self.attr_sizes) != N_ATTRS:
            raise ValueError(f"attr_sizes has {len(self.attr_sizes)} entries, expected {N_ATTRS}")

    @classmethod
    def from_config(cls, config: EnvConfig, use_campaign_id: bool = True) -> FeatureSpec:
        return cls(config.world.n_interest_tags, config.world.n_campaigns, use_campaign_id)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["attr_sizes"] = list(self.attr_sizes)
        return d

    @property
    def user_dim(self) -> int:
        return user_layout(self.n_interest_tags).size

    @property
    def blocks(self) -> list[Block]:
        """The request-level blocks, in slot order."""
        U, X, C = user_layout(self.n_interest_tags), CONTEXT_LAYOUT, CAMPAIGN_LAYOUT
        spec = [(f, "user", U[f], "cat") for f in DEMOGRAPHIC_FIELDS]
        spec += [("interest_tags", "user", U["interest_tags"], "num"),
                 ("category_shares", "user", U["category_shares"], "num"),
                 ("user_dense", "user", U.span("activity", "price_tier"), "num"),
                 ("hour_cycle", "context", X.span("hour_sin", "hour_cos"), "num"),
                 ("hour_bucket", "context", X["hour_bucket"], "cat"), ("weekend", "context", X["weekend"], "bin"),
                 *((f, "context", X[f], "cat") for f in ("location", "weather", "device", "ad_slot")),
                 *((f, "campaign", C[f], "cat") for f in ("goal", "category", "price_tier")),
                 ("discount", "campaign", C["discount"], "num")]
        return [Block(name, src, s.start, s.stop - s.start, kind) for name, src, s, kind in spec]

    @property
    def field_names(self) -> list[str]:
        names = [b.name for b in self.blocks] + (["campaign_id"] if self.use_campaign_id else [])
        return names + ["phrases", *ATTRIBUTES, "unparsed"]

    @property
    def field_of_slot(self) -> np.ndarray:
        """(S,) field index of every slot."""
        sizes = [b.n_slots for b in self.blocks] + ([1] if self.use_campaign_id else [])
        sizes += [MAX_PHRASES] + [1] * (N_ATTRS + 1)
        return np.repeat(np.arange(len(sizes)), sizes)

    @property
    def n_request_slots(self) -> int:
        """Slots of the request (user, context, campaign); the creative's follow them."""
        return self.n_slots - (MAX_PHRASES + N_ATTRS + 1)

    @property
    def n_slots(self) -> int:
        return int(self.field_of_slot.size)

    @property
    def n_fields(self) -> int:
        return len(self.field_names)

    @property
    def _offsets(self) -> dict[str, int]:
        off, n = {}, 0
        for b in self.blocks:
            off[b.name], n = n, n + b.n_ids
        if self.use_campaign_id:
            off["campaign_id"], n = n, n + self.n_campaigns
        off["parts"], n = n, n + 1 + self.n_phrases + sum(self.attr_sizes)  # creative_parts ids; 0 = empty
        off["unparsed"], n = n, n + MAX_UNPARSED + 1
        off["total"] = n
        return off

    @property
    def numeric_slots(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions (S_num,) of the numeric slots and their (constant) feature ids (S_num,)."""
        pos, ids, p = [], [], 0
        for b in self.blocks:
            if b.kind == "num":
                pos.append(p + np.arange(b.size))
                ids.append(self._offsets[b.name] + np.arange(b.size))
            p += b.n_slots
        return np.concatenate(pos), np.concatenate(ids)

    @property
    def n_features(self) -> int:
        return self._offsets["total"]


class FeatureEncoder:
    """Vectorised encoder of requests and creatives into :class:`Encoded` slots.

    Args:
        spec: the feature spec (sizes must match the env's observation).
    """

    def __init__(self, spec: FeatureSpec):
        if not isinstance(spec, FeatureSpec):
            raise TypeError(f"spec must be a FeatureSpec, got {type(spec).__name__}")
        self.spec = spec
        self._off = spec._offsets
        self._blocks = spec.blocks
        self.dims = {"user": spec.user_dim, "context": CONTEXT_LAYOUT.size, "campaign": CAMPAIGN_LAYOUT.size}

    def _check(self, name: str, x: np.ndarray, n: int | None, width: int) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != width or (n is not None and x.shape[0] != n):
            want = f"({'N' if n is None else n}, {width})"
            raise ValueError(f"{name} has shape {x.shape}, expected {want} for {self.spec}")
        return x

    def encode_request(self, user, context, campaign, campaign_id=None) -> Encoded:
        """Request-level slots (N, S_req) from user (N, user_dim), context (N, 22), campaign (N, 17)."""
        user = self._check("user", user, None, self.dims["user"])
        n = user.shape[0]
        src = {"user": user, "context": self._check("context", context, n, self.dims["context"]),
               "campaign": self._check("campaign", campaign, n, self.dims["campaign"])}
        idx, val = [], []
        for b in self._blocks:
            x = src[b.source][:, b.start : b.start + b.size]
            off = self._off[b.name]
            if b.kind == "num":
                idx.append(np.broadcast_to(off + np.arange(b.size), (n, b.size)))
                val.append(x)
            else:
                k = np.argmax(x, axis=1) if b.kind == "cat" else (x[:, 0] > 0.5).astype(np.int64)
                idx.append((off + k)[:, None])
                val.append(np.ones((n, 1), np.float32))
        if self.spec.use_campaign_id:
            if campaign_id is None:
                raise ValueError("campaign_id is None but this FeatureSpec uses the campaign id")
            cid = np.asarray(campaign_id).reshape(-1)
            if cid.shape != (n,) or cid.min(initial=0) < 0 or cid.max(initial=0) >= self.spec.n_campaigns:
                raise ValueError(f"campaign_id must be (N,) = ({n},) ints in [0, {self.spec.n_campaigns - 1}], "
                                 f"got shape {cid.shape}")
            idx.append((self._off["campaign_id"] + cid.astype(np.int64))[:, None])
            val.append(np.ones((n, 1), np.float32))
        return Encoded(np.concatenate(idx, 1).astype(np.int64), np.concatenate(val, 1).astype(np.float32))

    def encode_creatives(self, creatives) -> Encoded:
        """Creative slots (..., S_cre) from creative id vectors (..., CREATIVE_SLOTS)."""
        c = np.asarray(creatives)
        if c.shape[-1:] != (CREATIVE_SLOTS,) or not np.issubdtype(c.dtype, np.integer):
            raise ValueError(f"creatives must be integer (..., {CREATIVE_SLOTS}), got {c.dtype} {c.shape}")
        phrases = c[..., CANDIDATE_LAYOUT["phrases"]]
        if phrases.min(initial=0) < 0 or phrases.max(initial=0) > self.spec.n_phrases:
            raise ValueError(f"phrase slots must be in [0, {self.spec.n_phrases}]")
        attrs = c[..., CANDIDATE_ATTRIBUTES]
        if attrs.min(initial=0) < 0 or np.any(attrs >= np.asarray(self.spec.attr_sizes)):
            raise ValueError(f"attribute slots must be in [0, attr_sizes) = {self.spec.attr_sizes}")
        parts = creative_parts(c)  # (..., 8): phrase parts (0 = empty slot) then attribute parts
        unparsed = np.minimum(c[..., CANDIDATE_LAYOUT["unparsed"]], MAX_UNPARSED)
        idx = np.concatenate([self._off["parts"] + parts, self._off["unparsed"] + unparsed], axis=-1)
        val = np.concatenate([(parts > 0).astype(np.float32), np.ones(unparsed.shape, np.float32)], axis=-1)
        return Encoded(idx.astype(np.int64), val)

    def encode(self, user, context, campaign, creatives, campaign_id=None) -> Encoded:
        """Slots of every candidate, (N, K, S), or of one creative per request, (N, S).

        Args:
            user: (N, user_dim) float. context: (N, 22). campaign: (N, 17).
            creatives: (N, K, CREATIVE_SLOTS) or (N, CREATIVE_SLOTS) int.
            campaign_id: (N,) int (required when the spec uses it).
        """
        req = self.encode_request(user, context, campaign, campaign_id)
        cre = self.encode_creatives(creatives)
        n = req.idx.shape[0]
        if cre.idx.shape[0] != n:
            raise ValueError(f"creatives has {cre.idx.shape[0]} rows, user has {n}")
        if cre.idx.ndim == 2:
            return Encoded(np.concatenate([req.idx, cre.idx], 1), np.concatenate([req.val, cre.val], 1))
        k = cre.idx.shape[1]
        shape = (n, k, req.idx.shape[1])
        return Encoded(np.concatenate([np.broadcast_to(req.idx[:, None], shape), cre.idx], 2),
                       np.concatenate([np.broadcast_to(req.val[:, None], shape), cre.val], 2))

    def encode_request_obj(self, request) -> Encoded:
        """(N, K, S) slots of an ``adsim.running_ctr.Request``."""
        return self.encode(request.user_features, request.context_features, request.campaign_features,
                           request.candidates, request.campaign)


def to_dense(enc: Encoded, n_features: int) -> np.ndarray:
    """(M, n_features) design matrix of encoded rows (M, S): X[i, idx] += val (for scikit-learn)."""
    m = enc.idx.shape[0]
    x = np.zeros((m, n_features), dtype=np.float64)
    np.add.at(x, (np.repeat(np.arange(m), enc.idx.shape[1]), enc.idx.reshape(-1)), enc.val.reshape(-1))
    return x


__all__ = ["FeatureSpec", "FeatureEncoder", "Encoded", "to_dense"]
