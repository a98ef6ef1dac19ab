"""Vectorised creatives: the id layout, the template sampler, and the parts a creative is made of.

A creative is stored as ``CREATIVE_SLOTS`` integers (its public id vector)::

    [phrase_1, phrase_2, phrase_3, phrase_4, template, color, image_style, cta, n_unparsed]

Phrase slots hold ``phrase id + 1`` (0 = empty slot); attribute slots hold the value index within
its attribute; ``n_unparsed`` counts tokens of the headline text the parser could not match
(capped at ``MAX_UNPARSED``). The template sampler writes goal-appropriate, on-product headlines
from the patterns in ``adsim.creative.lexicon.GOAL_PATTERNS``; it is the candidate source until a
learned generator is plugged in behind :class:`CandidateSource`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from adsim.creative.lexicon import ATTRIBUTES, CATEGORIES, GOAL_PATTERNS, GOALS, LEXICON, MAX_PHRASES, ROLES, Lexicon

N_ATTRS = len(ATTRIBUTES)
CREATIVE_SLOTS = MAX_PHRASES + N_ATTRS + 1
N_PARTS_PER_CREATIVE = MAX_PHRASES + N_ATTRS
DRAWS_PER_CREATIVE = 1 + MAX_PHRASES + N_ATTRS  # pattern, phrases, attributes


class CandidateSource(Protocol):
    """Anything that proposes K candidate creatives per request.

    ``candidates(u, goal, category, user_features)`` maps uniforms ``u`` of shape
    ``(..., K, DRAWS_PER_CREATIVE)`` to creative id vectors ``(..., K, CREATIVE_SLOTS)`` for
    requests with the given campaign goal and product category (shape ``(...)``) and observed user
    features ``(..., user_dim)`` (or ``None`` when building a campaign's persistent pool).
    """

    def candidates(self, u, goal, category, user_features) -> np.ndarray: ...


def _pattern_table(lexicon: Lexicon) -> np.ndarray:
    n_pat = max(len(v) for v in GOAL_PATTERNS.values())
    table = np.full((len(GOALS), n_pat, MAX_PHRASES), -1, dtype=np.int64)
    for g, goal in enumerate(GOALS):
        pats = GOAL_PATTERNS[goal]
        for i in range(n_pat):
            pat = pats[i % len(pats)]
            table[g, i, : len(pat)] = [ROLES.index(r) for r in pat]
    return table


def _role_table(lexicon: Lexicon) -> tuple[np.ndarray, np.ndarray]:
    """(n_categories, n_roles, max_count) phrase ids per role (product role per category), counts."""
    by_role = [lexicon.phrases_by_role[r] for r in ROLES]
    width = max(max(len(x) for x in by_role), lexicon.product_phrases_by_category.shape[1])
    table = np.zeros((len(CATEGORIES), len(ROLES), width), dtype=np.int64)
    counts = np.zeros((len(CATEGORIES), len(ROLES)), dtype=np.int64)
    for c in range(len(CATEGORIES)):
        for r, ids in enumerate(by_role):
            if ROLES[r] == "product":
                ids = lexicon.product_phrases_by_category[c]
            table[c, r, : len(ids)] = ids
            counts[c, r] = len(ids)
    return table, counts


class TemplateSampler:
    """Goal-appropriate, on-product headlines from a grammar of role patterns, vectorised.

    Personalisation: when user features are given, the audience phrase names the audience of the
    user's most-browsed category (a public heuristic) with probability ``personal_audience``.
    """

    def __init__(self, lexicon: Lexicon = LEXICON, audience_by_category: np.ndarray | None = None,
                 category_slice: slice | None = None, personal_audience: float = 0.7):
        self.lexicon = lexicon
        self.patterns = _pattern_table(lexicon)
        self.roles, self.role_counts = _role_table(lexicon)
        self.attr_sizes = np.asarray(lexicon.attr_sizes, dtype=np.int64)
        self.audience_by_category = audience_by_category
        self.category_slice = category_slice
        self.personal_audience = personal_audience
        self._audience_role = ROLES.index("audience")

    def candidates(self, u, goal, category, user_features=None) -> np.ndarray:
        """Creatives from uniforms ``u`` (..., K, DRAWS_PER_CREATIVE); see :class:`CandidateSource`."""
        goal = np.asarray(goal)[..., None]
        category = np.asarray(category)[..., None]
        n_pat = self.patterns.shape[1]
        pat = np.minimum((u[..., 0] * n_pat).astype(np.int64), n_pat - 1)
        role = self.patterns[goal[..., None], pat[..., None], np.arange(MAX_PHRASES)]  # (..., K, L)
        role_safe = np.maximum(role, 0)
        cat = np.broadcast_to(category[..., None], role.shape)
        count = self.role_counts[cat, role_safe]
        scaled = u[..., 1 : 1 + MAX_PHRASES] * count
        pick = np.minimum(scaled.astype(np.int64), count - 1)
        phrase = self.roles[cat, role_safe, pick]
        if user_features is not None and self.audience_by_category is not None:
            top = np.argmax(user_features[..., self.category_slice], axis=-1)  # (...)
            personal = self.audience_by_category[top][..., None, None]
            frac = scaled - np.floor(scaled)  # a fresh uniform, independent of ``pick``
            use = (role == self._audience_role) & (frac < self.personal_audience)
            phrase = np.where(use, personal, phrase)
        slots = np.where(role >= 0, phrase + 1, 0)
        attrs = np.minimum((u[..., 1 + MAX_PHRASES :] * self.attr_sizes).astype(np.int64), self.attr_sizes - 1)
        unparsed = np.zeros(slots.shape[:-1] + (1,), dtype=np.int64)
        return np.concatenate([slots, attrs, unparsed], axis=-1)


def creative_parts(ids: np.ndarray, lexicon: Lexicon = LEXICON) -> np.ndarray:
    """Part indices (..., N_PARTS_PER_CREATIVE) into the world's part tables (0 = empty)."""
    offsets = 1 + lexicon.n_phrases + lexicon.attr_offsets
    return np.concatenate([ids[..., :MAX_PHRASES], ids[..., MAX_PHRASES : MAX_PHRASES + N_ATTRS] + offsets], axis=-1)


def creative_quality(ids: np.ndarray, category: np.ndarray, lexicon: Lexicon = LEXICON) -> np.ndarray:
    """Public quality flags of creatives (..., K): (off_product, missing_product, duplicate_roles, unparsed).

    Returns a (..., K, 4) float array; the hidden model turns it into a logit penalty.
    """
    slots = ids[..., :MAX_PHRASES]
    role = np.where(slots > 0, lexicon.phrase_role[np.maximum(slots - 1, 0)], -1)
    pcat = np.where(slots > 0, lexicon.phrase_category[np.maximum(slots - 1, 0)], -1)
    is_prod = role == 0
    cat = np.asarray(category)[..., None, None]
    off = (is_prod & (pcat != cat)).any(-1)
    missing = ~is_prod.any(-1)
    srt = np.sort(np.where(role >= 0, role, -np.arange(1, MAX_PHRASES + 1)), axis=-1)
    dup = (np.diff(srt, axis=-1) == 0).sum(-1)
    return np.stack([off, missing, dup, ids[..., -1]], axis=-1).astype(np.float64)
