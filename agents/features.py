"""Feature maps of the contextual policies (public observation data only).

``request_features`` — the disjoint LinUCB context: chosen observation blocks plus a bias.

``CandidateFeatures`` — the shared models' features of one (request, candidate) pair, so they
work when candidates change every request (personalised mode). A candidate's vector ``z`` has
``DIM = 2 + N_PARTS − 1`` (= 90 with the built-in lexicon) entries:

=============  ========================================================================
index          feature
=============  ========================================================================
0              bias, 1
1              the CTR estimate relative to the request's mean, ``e_k / mean(e) − 1``
2 … DIM − 1    multi-hot of the creative's *parts*: its headline phrases and its four
               visual-attribute values (template, colour, image style, CTA)
=============  ========================================================================

The interaction with the user is the *segment*: ``user_segment`` maps each request to the
user's strongest interest tag (``by="tag"``), the top category of the user's behaviour history
(``by="category"``) or one segment for everybody (``by="none"``). The shared model's full
feature vector is ``z ⊗ onehot(segment)`` — every part gets its own weight per segment — and
since its Gram matrix is then block diagonal, the policies keep one ``DIM``-sized block per
segment: the cost per decision is that of a ``DIM``-dimensional model, not ``DIM × segments``.

``candidate_columns`` gives the same features in sparse form — each candidate's few part
columns and its CTR value — from which ``candidate_features`` builds the dense array; shared
LinUCB scores from the sparse form directly (a quadratic form over the ≈ 9 columns in use).
"""

from __future__ import annotations

import numpy as np

from adsim.creative.lexicon import CATEGORIES, LEXICON
from adsim.creative.lexicon import MAX_PHRASES
from adsim.creative.sampler import CREATIVE_SLOTS, N_ATTRS
from adsim.observation import user_layout_for_width
from adsim.validation import check_choice

N_PARTS = 1 + LEXICON.n_phrases + LEXICON.n_attr_values
"""Part index space of ``creative_parts`` (0 = empty slot)."""
DIM = 2 + N_PARTS - 1
"""Dimension of a candidate's feature vector."""
SEGMENTS = ("tag", "category", "none")
_ATTR_COLUMN = 2 + LEXICON.n_phrases + LEXICON.attr_offsets
"""Column of value 0 of each visual attribute (``creative_parts``' offsets, + 1)."""


def request_features(obs: dict[str, np.ndarray], keys: tuple[str, ...]) -> np.ndarray:
    """(N, d) float64: the blocks ``obs[k]`` for k in ``keys`` side by side, then a bias column."""
    missing = [k for k in keys if k not in obs]
    if missing:
        raise ValueError(f"observation has no key {missing[0]!r} (features); it has {sorted(obs)}")
    n = np.asarray(obs[keys[0]]).shape[0]
    blocks = [np.asarray(obs[k], dtype=np.float64).reshape(n, -1) for k in keys]
    return np.concatenate(blocks + [np.ones((blocks[0].shape[0], 1))], axis=1)


def n_interest_tags(user_dim: int) -> int:
    """Interest tags in a user vector of ``user_dim`` (demographics, tags, categories, 3 dense)."""
    return user_layout_for_width(user_dim).width("interest_tags")


def n_segments(by: str, user_dim: int) -> int:
    check_choice("segment_by", by, SEGMENTS)
    return {"tag": n_interest_tags(user_dim), "category": len(CATEGORIES), "none": 1}[by]


def user_segment(user: np.ndarray, by: str) -> np.ndarray:
    """(N,) segment of each request's user (see the module docstring)."""
    user = np.asarray(user)
    if by == "none":
        return np.zeros(user.shape[0], dtype=np.int64)
    field = "interest_tags" if by == "tag" else "category_shares"
    return np.argmax(user[:, user_layout_for_width(user.shape[1])[field]], axis=1)


def candidate_columns(obs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The sparse form of :func:`candidate_features`: ``(cols, ctr)``, where ``cols`` (P, N, K)
    int64 are the candidates' part columns of ``z``, slot by slot (2 … DIM − 1; ``DIM`` for an
    empty slot or a part already counted in an earlier slot of the same creative), and ``ctr``
    (N, K) are the relative CTR estimates: ``z = e_0 + ctr · e_1 + Σ_p e_{cols_p}`` (columns
    ``DIM`` dropped)."""
    cand = np.asarray(obs["candidates"])
    n = cand.shape[0]
    ids = cand.reshape(-1, CREATIVE_SLOTS)  # (N·K, slots)
    k, n_slots = ids.shape[0] // max(n, 1), MAX_PHRASES + N_ATTRS
    # creative_parts(ids) + 1, written slot-major, (P, N·K), each slot contiguous: phrase ids, then
    # the attribute values offset into the part index space (0 = empty)
    cols = np.empty((n_slots, ids.shape[0]), dtype=np.result_type(ids, _ATTR_COLUMN))
    np.add(ids[:, :MAX_PHRASES].T, 1, out=cols[:MAX_PHRASES])
    np.add(ids[:, MAX_PHRASES:n_slots].T, _ATTR_COLUMN[:, None], out=cols[MAX_PHRASES:])
    cols[cols == 1] = DIM  # empty slots
    for p in range(1, n_slots):  # a part shown twice is one 1 of the multi-hot
        repeat = cols[0] == cols[p]
        for q in range(1, p):
            repeat |= cols[q] == cols[p]
        cols[p][repeat] = DIM
    est = np.asarray(obs["ctr_estimate"], dtype=np.float64)
    ctr = est / np.maximum(est.mean(axis=1, keepdims=True), 1e-12) - 1.0
    return cols.reshape(n_slots, n, k), ctr


def dense_features(cols: np.ndarray, ctr: np.ndarray) -> np.ndarray:
    """(..., DIM) float64 features ``z`` from their sparse form (:func:`candidate_columns`):
    ``cols`` (P, ...) and ``ctr`` (...)."""
    shape = ctr.shape
    m = ctr.size
    z = np.zeros((m, DIM))
    # empty slots (column DIM, here DIM % DIM = 0) write the bias column, which is set to 1 below anyway
    flat = (cols % DIM).reshape(-1, m) + np.arange(0, m * DIM, DIM)
    z.ravel()[flat.ravel()] = 1.0
    z[:, 0] = 1.0
    z[:, 1] = ctr.ravel()
    return z.reshape(shape + (DIM,))


def candidate_features(obs: dict[str, np.ndarray]) -> np.ndarray:
    """(N, K, DIM) float64 features of every candidate of a batch of requests."""
    return dense_features(*candidate_columns(obs))
