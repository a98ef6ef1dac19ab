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

    A source may also define ``prepare(world, n_candidates)``: a personalised-mode core calls it
    once, before its first request, with the world and K it serves (the generator's source decodes
    every conditioning of the world there: ``adsim.generator.source``).
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
        self._build_tables()

    def _build_tables(self) -> None:
        """Flat lookups of :meth:`candidates`, one row per (category, goal, pattern), one column per slot:
        the phrase-table offset of the slot's role, its phrase count (1 for an empty slot, whose draw
        is not used) and whether it is the audience slot; the phrase table holds ``phrase id + 1``,
        a leading copy of each role's last entry (so that a pick of −1, a role without phrases, reads
        what ``roles[c, r, -1]`` read) and a zero entry for the empty slots."""
        n_cat, n_roles, width = self.roles.shape
        n_goals, n_pat, _ = self.patterns.shape
        padded = np.concatenate([self.roles[..., -1:], self.roles], axis=-1) + 1  # (C, R, 1 + width)
        self._phrase_table = np.append(padded.reshape(-1), 0)
        empty_at = self._phrase_table.shape[0] - 1
        role = np.broadcast_to(self.patterns[None], (n_cat,) + self.patterns.shape)  # (C, G, n_pat, L)
        cat = np.arange(n_cat)[:, None, None, None]
        role_safe = np.maximum(role, 0)
        base = (cat * n_roles + role_safe) * (1 + width) + 1
        self._slot_base = np.where(role >= 0, base, empty_at).reshape(-1, MAX_PHRASES)
        self._slot_count = np.where(role >= 0, self.role_counts[cat, role_safe], 1).reshape(-1, MAX_PHRASES)
        self._slot_audience = (role == self._audience_role).reshape(-1, MAX_PHRASES)
        self._attr_cap = self.attr_sizes - 1

    def candidates(self, u, goal, category, user_features=None) -> np.ndarray:
        """Creatives from uniforms ``u`` (..., K, DRAWS_PER_CREATIVE); see :class:`CandidateSource`.

        Pattern ``⌊u₀·n_pat⌋``; slot ``l`` of the pattern's role ``r`` takes phrase ``⌊u_l·count⌋`` of
        the category's role-``r`` phrases (the audience slot, with user features, the user's audience
        when the fraction of ``u_l·count`` is below ``personal_audience``); attribute ``a`` takes value
        ``⌊u·size_a⌋``. Gathers from the flat tables of :meth:`_build_tables`."""
        n_goals, n_pat = self.patterns.shape[:2]
        pat = (u[..., 0] * n_pat).astype(np.int64)
        np.minimum(pat, n_pat - 1, out=pat)
        row = ((np.asarray(category) * n_goals + np.asarray(goal)) * n_pat)[..., None] + pat  # (..., K)
        count = self._slot_count.take(row, axis=0)  # (..., K, L)
        scaled = u[..., 1 : 1 + MAX_PHRASES] * count
        pick = scaled.astype(np.int64)
        count -= 1
        np.minimum(pick, count, out=pick)
        pick += self._slot_base.take(row, axis=0)
        out = np.empty(pick.shape[:-1] + (CREATIVE_SLOTS,), dtype=np.int64)
        slots = out[..., :MAX_PHRASES]
        np.take(self._phrase_table, pick, out=slots, mode="clip")  # every index is in range by construction
        if user_features is not None and self.audience_by_category is not None:
            top = np.argmax(user_features[..., self.category_slice], axis=-1)  # (...)
            personal = (self.audience_by_category[top] + 1)[..., None, None]
            frac = scaled - np.floor(scaled)  # a fresh uniform, independent of ``pick``
            use = frac < self.personal_audience
            use &= self._slot_audience.take(row, axis=0)
            np.copyto(slots, personal, where=use)
        attrs = out[..., MAX_PHRASES : MAX_PHRASES + N_ATTRS]
        attrs[...] = u[..., 1 + MAX_PHRASES :] * self.attr_sizes  # truncated, as by astype
        np.minimum(attrs, self._attr_cap, out=attrs)
        out[..., -1] = 0
        return out


def creative_parts(ids: np.ndarray, lexicon: Lexicon = LEXICON) -> np.ndarray:
    """Part indices (..., N_PARTS_PER_CREATIVE) into the world's part tables (0 = empty)."""
    offsets = 1 + lexicon.n_phrases + lexicon.attr_offsets
    out = np.empty(ids.shape[:-1] + (N_PARTS_PER_CREATIVE,), dtype=np.result_type(ids.dtype, offsets.dtype))
    out[..., :MAX_PHRASES] = ids[..., :MAX_PHRASES]
    np.add(ids[..., MAX_PHRASES : MAX_PHRASES + N_ATTRS], offsets, out=out[..., MAX_PHRASES:])
    return out


def _slot_tables(lexicon: Lexicon) -> tuple[np.ndarray, np.ndarray]:
    """Role and product category (−1 when not a product phrase) of each phrase-slot value, int8,
    −1 for the empty slot 0 (cached on the lexicon)."""
    tables = lexicon.__dict__.get("_slot_tables")
    if tables is None:
        role = np.concatenate([[-1], lexicon.phrase_role]).astype(np.int8)
        pcat = np.concatenate([[-1], lexicon.phrase_category]).astype(np.int8)
        tables = (role, pcat)
        object.__setattr__(lexicon, "_slot_tables", tables)  # a frozen dataclass: a private cache entry
    return tables


def creative_quality(ids: np.ndarray, category: np.ndarray, lexicon: Lexicon = LEXICON) -> np.ndarray:
    """Public quality flags of creatives (..., K): (off_product, missing_product, duplicate_roles, unparsed).

    ``duplicate_roles`` counts the phrases whose role an earlier phrase of the headline has already.
    Returns a (..., K, 4) float array; the hidden model turns it into a logit penalty.
    """
    slot_role, slot_cat = _slot_tables(lexicon)
    slots = np.maximum(ids[..., :MAX_PHRASES], 0)  # slot values <= 0 are empty
    role = slot_role.take(slots)  # (..., K, L) int8, -1 empty
    is_prod = role == 0
    off_l = slot_cat.take(slots) != np.asarray(category)[..., None, None]
    off_l &= is_prod
    r = [role[..., i] for i in range(MAX_PHRASES)]
    out = np.empty(ids.shape[:-1] + (4,))
    off, missing = off_l[..., 0], is_prod[..., 0].copy()
    dup = np.zeros(role.shape[:-1], dtype=np.int8)
    for i in range(1, MAX_PHRASES):  # over the L slots of a headline (not over creatives)
        off = off | off_l[..., i]
        missing |= is_prod[..., i]
        seen = r[i] == r[0]
        for j in range(1, i):
            seen |= r[i] == r[j]
        seen &= r[i] >= 0
        dup += seen
    out[..., 0] = off
    np.logical_not(missing, out=missing)
    out[..., 1] = missing
    out[..., 2] = dup
    out[..., 3] = ids[..., -1]
    return out
