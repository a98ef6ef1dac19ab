"""Creatives of a scenario: each campaign's persistent pool, and the personalised candidate source.

A campaign's **pool** is K distinct creatives drawn once from the world's seed (``pool`` mode shows
them at every request of the campaign; AdSession always shows them). :class:`CampaignPools` holds
the pools and what the hidden response model derives from them once (static logit, hidden feature
φ, discount flag, visual-attribute ids). **Personalised** candidates are drawn fresh per request by a
:class:`adsim.creative.sampler.CandidateSource`; :func:`template_sampler` is the built-in one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from adsim.config import WorldConfig
from adsim.creative.sampler import DRAWS_PER_CREATIVE, MAX_PHRASES, N_ATTRS, CandidateSource, TemplateSampler
from adsim.observation import user_layout
from adsim.response import creative_phi, creative_static_logit, has_discount
from adsim.world import World, cached_world


def template_sampler(world: World) -> TemplateSampler:
    """The built-in personalised candidate source of a world (reads the user's category shares)."""
    return TemplateSampler(world.lexicon, world.audience_by_category,
                           category_slice=user_layout(world.config.n_interest_tags)["category_shares"])


def attribute_index(world: World, candidates: np.ndarray) -> np.ndarray:
    """(..., N_ATTRS) global attribute-value ids (0 .. n_attr_values-1) of creatives (..., CREATIVE_SLOTS)."""
    return candidates[..., MAX_PHRASES : MAX_PHRASES + N_ATTRS] + world.lexicon.attr_offsets


@dataclass(frozen=True)
class CampaignPools:
    """Every campaign's K pool creatives and their hidden-model terms (all read-only arrays)."""

    creatives: np.ndarray  # (n_campaigns, K, CREATIVE_SLOTS) int64
    static: np.ndarray  # (n_campaigns, K) goal fit − quality penalty
    phi: np.ndarray  # (n_campaigns, K, d) hidden feature φ(c)
    discount: np.ndarray  # (n_campaigns, K) bool
    attrs: np.ndarray  # (n_campaigns, K, N_ATTRS) global attribute-value ids

    @classmethod
    def build(cls, world: World, n_candidates: int, sampler: CandidateSource) -> CampaignPools:
        """Draw each campaign's K distinct creatives from ``sampler`` on the world's pool stream."""
        K = n_candidates
        rng = np.random.default_rng(np.random.SeedSequence([world.config.seed, 1, K]))
        pools = []
        for c in range(world.config.n_campaigns):
            u = rng.random((8 * K, DRAWS_PER_CREATIVE))
            cand = sampler.candidates(u, world.campaign_goal[c], world.campaign_category[c])
            _, first = np.unique(cand, axis=0, return_index=True)
            first = np.sort(first)
            if first.size < K:  # lexicon too small for K distinct creatives: allow repeats
                first = np.concatenate([first, np.setdiff1d(np.arange(8 * K), first)])
            pools.append(cand[first[:K]])
        ids = np.stack(pools)
        out = cls(ids, creative_static_logit(world, ids, world.campaign_goal, world.campaign_category),
                  creative_phi(world, ids), has_discount(world, ids), attribute_index(world, ids))
        for a in (out.creatives, out.static, out.phi, out.discount, out.attrs):
            a.flags.writeable = False  # shared by every core of the scenario (cached)
        return out


@functools.lru_cache(maxsize=32)
def campaign_pools(world: WorldConfig, n_candidates: int) -> CampaignPools:
    """The pools of a world config with the built-in sampler (built once per process)."""
    w = cached_world(world)
    return CampaignPools.build(w, n_candidates, template_sampler(w))


__all__ = ["CampaignPools", "attribute_index", "campaign_pools", "template_sampler"]
