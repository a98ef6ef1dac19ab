"""The layout of the observation vectors, defined once: every encoder and decoder reads it here.

| vector | layout (width) |
|---|---|
| ``user`` (40 by default) | demographics: ``age_band`` (6), ``gender`` (3), ``occupation`` (8), ``city_tier`` (4) one-hots; ``interest_tags`` (``n_interest_tags``, 8); ``category_shares`` (8); ``activity``, ``purchase_rate``, ``price_tier`` (1 each) |
| ``context`` (22) | ``hour_sin``, ``hour_cos`` (1 each), ``hour_bucket`` (4), ``weekend`` (1), ``location`` (5), ``weather`` (4), ``device`` (3), ``ad_slot`` (3) one-hots |
| ``campaign`` (17) | ``goal`` (5), ``category`` (8), ``price_tier`` (3) one-hots, ``discount`` (1) |
| ``candidates`` (K × 9) | per creative: ``phrases`` (4 phrase slots), ``template``, ``color``, ``image_style``, ``cta``, ``unparsed`` (token count) |

A :class:`Layout` names contiguous fields; ``layout["interest_tags"]`` is that field's slice and
``layout.take(x, "interest_tags")`` its columns (any leading shape). ``user_layout(t)`` depends on
the world's number of interest tags; :func:`user_layout_for_width` recovers it from a vector width.
``adsim.world`` builds the vectors in this order; ``tests/test_world.py`` decodes what the world and
the core encode with these layouts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from adsim.creative.lexicon import ATTRIBUTES, CATEGORIES, GOALS, MAX_PHRASES
from adsim.world import DEMOGRAPHICS, DEVICES, HOUR_BUCKETS, LOCATIONS, POSITION_FACTOR, PRICE_TIERS, WEATHERS


class Layout:
    """Named contiguous fields of one observation vector, in order.

    Args:
        name: the observation key (for messages).
        fields: ``(field, width)`` pairs.
    """

    def __init__(self, name: str, fields: Sequence[tuple[str, int]]):
        self.name, self.fields = name, tuple((str(f), int(w)) for f, w in fields)
        self._slices, start = {}, 0
        for f, w in self.fields:
            if w < 1 or f in self._slices:
                raise ValueError(f"layout {name!r}: field {f!r} has width {w} or appears twice")
            self._slices[f] = slice(start, start + w)
            start += w
        self.size = start

    def __getitem__(self, field: str) -> slice:
        if field not in self._slices:
            raise KeyError(f"layout {self.name!r} has no field {field!r}; fields: {list(self._slices)}")
        return self._slices[field]

    def __contains__(self, field: str) -> bool:
        return field in self._slices

    def width(self, field: str) -> int:
        """The number of columns of ``field``."""
        s = self[field]
        return s.stop - s.start

    def span(self, first: str, last: str) -> slice:
        """The slice from field ``first`` to field ``last``, both included."""
        return slice(self[first].start, self[last].stop)

    def take(self, x: np.ndarray, field: str) -> np.ndarray:
        """The columns of ``field`` in ``x`` (..., size)."""
        x = np.asarray(x)
        if x.shape[-1] != self.size:
            raise ValueError(f"{self.name} vectors have width {x.shape[-1]}, layout expects {self.size}")
        return x[..., self[field]]

    def argmax(self, x: np.ndarray, field: str) -> np.ndarray:
        """The index of a one-hot field's hot entry (any leading shape), int64."""
        return self.take(x, field).argmax(axis=-1).astype(np.int64)

    def __repr__(self) -> str:
        return f"Layout({self.name!r}, {list(self.fields)})"


DEMOGRAPHIC_FIELDS = tuple(DEMOGRAPHICS)
"""The one-hot demographic fields, first in the user vector."""
USER_DENSE_FIELDS = ("activity", "purchase_rate", "price_tier")
"""The dense activity features, last in the user vector."""
N_DEMOGRAPHICS = sum(DEMOGRAPHICS.values())
N_USER_DENSE = len(USER_DENSE_FIELDS)


@functools.lru_cache(maxsize=64)
def user_layout(n_interest_tags: int) -> Layout:
    """The user vector of a world with ``n_interest_tags`` interest tags."""
    return Layout("user", [*DEMOGRAPHICS.items(), ("interest_tags", n_interest_tags),
                           ("category_shares", len(CATEGORIES)), *((f, 1) for f in USER_DENSE_FIELDS)])


def user_layout_for_width(user_dim: int) -> Layout:
    """The user layout of vectors ``user_dim`` wide (the number of interest tags follows from it)."""
    tags = int(user_dim) - N_DEMOGRAPHICS - len(CATEGORIES) - N_USER_DENSE
    if tags < 1:
        raise ValueError(f"user vectors of width {user_dim} are too narrow: demographics, categories and "
                         f"activity alone take {N_DEMOGRAPHICS + len(CATEGORIES) + N_USER_DENSE}")
    return user_layout(tags)


CONTEXT_LAYOUT = Layout("context", [("hour_sin", 1), ("hour_cos", 1), ("hour_bucket", HOUR_BUCKETS), ("weekend", 1),
                                    ("location", len(LOCATIONS)), ("weather", len(WEATHERS)),
                                    ("device", len(DEVICES)), ("ad_slot", len(POSITION_FACTOR))])
CAMPAIGN_LAYOUT = Layout("campaign", [("goal", len(GOALS)), ("category", len(CATEGORIES)),
                                      ("price_tier", PRICE_TIERS), ("discount", 1)])
CANDIDATE_LAYOUT = Layout("candidate", [("phrases", MAX_PHRASES), *((a, 1) for a in ATTRIBUTES), ("unparsed", 1)])
"""One creative's id vector (``obs["candidates"]`` holds K of them)."""
ATTRIBUTE_FIELDS = tuple(ATTRIBUTES)
"""The visual-attribute fields of a creative's id vector, in order."""
CANDIDATE_ATTRIBUTES = CANDIDATE_LAYOUT.span(ATTRIBUTE_FIELDS[0], ATTRIBUTE_FIELDS[-1])
"""The slice of a creative's id vector holding its visual attributes."""


def ad_slot(context: np.ndarray) -> np.ndarray:
    """(…,) the ad slot (0 = top) of context vectors."""
    return CONTEXT_LAYOUT.argmax(context, "ad_slot")


__all__ = ["Layout", "user_layout", "user_layout_for_width", "CONTEXT_LAYOUT", "CAMPAIGN_LAYOUT",
           "CANDIDATE_LAYOUT", "ATTRIBUTE_FIELDS", "CANDIDATE_ATTRIBUTES", "DEMOGRAPHIC_FIELDS", "USER_DENSE_FIELDS", "N_DEMOGRAPHICS", "N_USER_DENSE",
           "ad_slot"]
