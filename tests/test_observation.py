"""The observation layouts (``adsim.observation``) describe what the world and the core encode."""

from __future__ import annotations

import numpy as np
import pytest

from adsim import make_config
from adsim.selection import SelectionCore
from adsim.observation import (CAMPAIGN_LAYOUT, CANDIDATE_LAYOUT, CONTEXT_LAYOUT, Layout, ad_slot, user_layout,
                               user_layout_for_width)
from adsim.world import CONTEXT_DIM, DEMOGRAPHICS, context_features

CFG = make_config("default", n_users=300, n_products=50, n_interest_tags=6)


@pytest.fixture(scope="module")
def core():
    c = SelectionCore(CFG, 40)
    c.seed(0)
    c.start_episode()
    return c


def test_the_readme_sizes():
    assert user_layout(8).size == 40 and CONTEXT_LAYOUT.size == 22 == CONTEXT_DIM
    assert CAMPAIGN_LAYOUT.size == 17 and CANDIDATE_LAYOUT.size == 9


def test_user_vectors_decode_with_the_layout(core):
    w, U = core.world, user_layout(CFG.world.n_interest_tags)
    assert U.size == w.user_dim and user_layout_for_width(w.user_dim) is U
    for i, field in enumerate(DEMOGRAPHICS):
        np.testing.assert_array_equal(U.argmax(w.user_features, field), w.user_demographics[:, i])
    np.testing.assert_array_equal(U.take(w.user_features, "interest_tags"), w.user_tags)
    shares = U.take(w.user_features, "category_shares").sum(axis=1)
    np.testing.assert_allclose(shares[shares > 0], 1.0, rtol=1e-5)


def test_context_vectors_decode_with_the_layout():
    rng = np.random.default_rng(0)
    ids = {"hour": rng.integers(0, 24, 50), "weekend": rng.integers(0, 2, 50), "location": rng.integers(0, 5, 50),
           "weather": rng.integers(0, 4, 50), "device": rng.integers(0, 3, 50), "position": rng.integers(0, 3, 50)}
    x = context_features(*ids.values())
    np.testing.assert_array_equal(CONTEXT_LAYOUT.argmax(x, "hour_bucket"), ids["hour"] // 6)
    for field in ("location", "weather", "device"):
        np.testing.assert_array_equal(CONTEXT_LAYOUT.argmax(x, field), ids[field])
    np.testing.assert_array_equal(ad_slot(x), ids["position"])
    np.testing.assert_array_equal(CONTEXT_LAYOUT.take(x, "weekend")[:, 0], ids["weekend"])


def test_campaign_and_candidate_vectors_decode_with_the_layout(core):
    w = core.world
    np.testing.assert_array_equal(CAMPAIGN_LAYOUT.argmax(w.campaign_features, "goal"), w.campaign_goal)
    np.testing.assert_array_equal(CAMPAIGN_LAYOUT.argmax(w.campaign_features, "category"), w.campaign_category)
    obs = core.observation()
    cands = obs["candidates"].reshape(40, CFG.n_candidates, CANDIDATE_LAYOUT.size)
    np.testing.assert_array_equal(cands[..., CANDIDATE_LAYOUT["phrases"]], core.candidates[..., :4])
    np.testing.assert_array_equal(ad_slot(obs["context"]), core.block.position[:, core.j])


def test_bad_layouts_and_widths_raise():
    with pytest.raises(ValueError, match="width 10, layout expects 22"):
        CONTEXT_LAYOUT.take(np.zeros((2, 10)), "weekend")
    with pytest.raises(KeyError, match="no field 'hour'"):
        CONTEXT_LAYOUT["hour"]
    with pytest.raises(ValueError, match="too narrow"):
        user_layout_for_width(30)
    with pytest.raises(ValueError, match="appears twice"):
        Layout("x", [("a", 1), ("a", 2)])
