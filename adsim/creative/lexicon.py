"""The public creative vocabulary: headline phrases by role, and visual attributes.

A headline is a sequence of phrases, each with a *role* (product, benefit, discount …). The same
phrase id has an English and a Chinese surface form, so the hidden appeal of a phrase does not
depend on the language a scenario is rendered in. Product phrases belong to a product category;
a creative whose product phrase names another category than the advertised item is off-product.

Everything in this module is public: policies and models may use it. The *hidden* appeal vectors
and goal-congruence weights of phrases and attributes are sampled per world in ``adsim.world``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

CATEGORIES = ("electronics", "fashion", "beauty", "home", "sports", "groceries", "toys", "books")
GOALS = ("recommendation", "promotion", "social_proof", "new_arrival", "brand")
ROLES = ("product", "benefit", "discount", "social_proof", "urgency", "audience", "style", "novelty")
LANGUAGES = ("en", "zh")

# (role, category or None, english, chinese)
_PHRASES: tuple[tuple[str, str | None, str, str], ...] = (
    ("product", "electronics", "wireless headphones", "无线耳机"),
    ("product", "electronics", "smart watch", "智能手表"),
    ("product", "electronics", "fast charger", "快充充电器"),
    ("product", "fashion", "linen shirt", "亚麻衬衫"),
    ("product", "fashion", "leather boots", "真皮短靴"),
    ("product", "fashion", "summer dress", "夏季连衣裙"),
    ("product", "beauty", "face serum", "精华液"),
    ("product", "beauty", "matte lipstick", "哑光口红"),
    ("product", "beauty", "sunscreen", "防晒霜"),
    ("product", "home", "coffee maker", "咖啡机"),
    ("product", "home", "cotton bedding", "纯棉床品"),
    ("product", "home", "air purifier", "空气净化器"),
    ("product", "sports", "running shoes", "跑鞋"),
    ("product", "sports", "yoga mat", "瑜伽垫"),
    ("product", "sports", "fitness tracker", "运动手环"),
    ("product", "groceries", "organic tea", "有机茶叶"),
    ("product", "groceries", "dark chocolate", "黑巧克力"),
    ("product", "groceries", "fresh fruit box", "鲜果礼盒"),
    ("product", "toys", "building blocks", "积木玩具"),
    ("product", "toys", "plush bear", "毛绒熊"),
    ("product", "toys", "puzzle game", "益智拼图"),
    ("product", "books", "bestselling novel", "畅销小说"),
    ("product", "books", "cookbook", "家常菜谱"),
    ("product", "books", "travel guide", "旅行指南"),
    ("benefit", None, "that lasts all day", "持久耐用"),
    ("benefit", None, "made for comfort", "舒适贴身"),
    ("benefit", None, "built to perform", "性能出众"),
    ("benefit", None, "gentle on skin", "温和不刺激"),
    ("benefit", None, "saves you time", "省时省力"),
    ("benefit", None, "eco friendly", "环保材质"),
    ("benefit", None, "premium quality", "品质上乘"),
    ("benefit", None, "easy to use", "简单易用"),
    ("discount", None, "20% off", "八折优惠"),
    ("discount", None, "half price", "半价"),
    ("discount", None, "buy one get one free", "买一送一"),
    ("discount", None, "free shipping", "包邮"),
    ("discount", None, "member price", "会员专享价"),
    ("discount", None, "save big today", "今日大促"),
    ("social_proof", None, "rated 4.9 stars", "四点九星好评"),
    ("social_proof", None, "10,000 happy buyers", "万人已购"),
    ("social_proof", None, "editor's pick", "编辑推荐"),
    ("social_proof", None, "loved by experts", "专家认可"),
    ("social_proof", None, "top seller", "销量冠军"),
    ("urgency", None, "ends tonight", "今晚截止"),
    ("urgency", None, "limited stock", "库存有限"),
    ("urgency", None, "only 3 days left", "仅剩三天"),
    ("urgency", None, "while it lasts", "售完即止"),
    ("audience", None, "for busy parents", "忙碌父母之选"),
    ("audience", None, "for students", "学生专属"),
    ("audience", None, "for athletes", "运动达人之选"),
    ("audience", None, "for home chefs", "居家厨神之选"),
    ("audience", None, "for gamers", "游戏玩家之选"),
    ("audience", None, "for travellers", "旅行者之选"),
    ("style", None, "minimalist", "极简风"),
    ("style", None, "bold and bright", "大胆亮色"),
    ("style", None, "classic", "经典款"),
    ("style", None, "cozy", "温馨款"),
    ("style", None, "luxury", "奢华款"),
    ("novelty", None, "new arrival", "新品上市"),
    ("novelty", None, "just launched", "全新首发"),
    ("novelty", None, "2026 collection", "二零二六系列"),
    ("novelty", None, "exclusive drop", "独家限定"),
)

# Visual attributes: name -> values.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "template": ("banner", "card", "carousel", "full_bleed", "split", "minimal"),
    "color": ("red", "orange", "yellow", "green", "teal", "blue", "purple", "black"),
    "image_style": ("product_shot", "lifestyle", "model", "flat_lay", "illustration", "ugc"),
    "cta": ("shop_now", "learn_more", "get_deal", "add_to_cart", "discover", "try_it"),
}

# Headline role patterns the template sampler (the "teacher grammar") writes for each goal.
GOAL_PATTERNS: dict[str, tuple[tuple[str, ...], ...]] = {
    "recommendation": (
        ("style", "product", "benefit"),
        ("product", "benefit", "audience"),
        ("product", "audience"),
        ("product", "benefit"),
    ),
    "promotion": (
        ("discount", "product", "urgency"),
        ("product", "discount"),
        ("discount", "product", "benefit"),
        ("product", "discount", "urgency"),
    ),
    "social_proof": (
        ("social_proof", "product"),
        ("product", "social_proof", "benefit"),
        ("social_proof", "product", "audience"),
        ("product", "social_proof"),
    ),
    "new_arrival": (
        ("novelty", "product"),
        ("novelty", "style", "product"),
        ("product", "novelty", "urgency"),
        ("novelty", "product", "benefit"),
    ),
    "brand": (
        ("style", "product"),
        ("product", "benefit"),
        ("style", "product", "audience"),
        ("product", "social_proof"),
    ),
}

MAX_PHRASES = 4
"""Longest headline, in phrases. Creatives are stored as ``MAX_PHRASES`` phrase slots (−1 = empty)."""


@dataclass(frozen=True)
class Lexicon:
    """Phrase and attribute tables (all public)."""

    phrase_role: np.ndarray  # (P,) int64 index into ROLES
    phrase_category: np.ndarray  # (P,) int64 index into CATEGORIES, -1 when not a product phrase
    texts: dict[str, tuple[str, ...]]  # language -> (P,) surface forms
    attr_sizes: tuple[int, ...]  # number of values per attribute kind

    @property
    def n_phrases(self) -> int:
        return int(self.phrase_role.shape[0])

    @property
    def n_attr_values(self) -> int:
        return int(sum(self.attr_sizes))

    @cached_property
    def attr_offsets(self) -> np.ndarray:
        """(n_attr_kinds,) offset of each attribute kind in the flat attribute-value index."""
        return np.concatenate([[0], np.cumsum(self.attr_sizes)[:-1]]).astype(np.int64)

    @cached_property
    def phrases_by_role(self) -> dict[str, np.ndarray]:
        return {r: np.flatnonzero(self.phrase_role == i) for i, r in enumerate(ROLES)}

    @cached_property
    def product_phrases_by_category(self) -> np.ndarray:
        """(n_categories, n_per_category) phrase ids of each category's product phrases."""
        rows = [
            np.flatnonzero((self.phrase_role == 0) & (self.phrase_category == c))
            for c in range(len(CATEGORIES))
        ]
        return np.stack(rows)

    @property
    def candidate_nvec(self) -> np.ndarray:
        """Number of values of each slot of a creative's id vector (phrases + 1 for empty)."""
        return np.array([self.n_phrases + 1] * MAX_PHRASES + list(self.attr_sizes), dtype=np.int64)


def build_lexicon() -> Lexicon:
    """The built-in bilingual lexicon."""
    role = np.array([ROLES.index(r) for r, _, _, _ in _PHRASES], dtype=np.int64)
    cat = np.array([-1 if c is None else CATEGORIES.index(c) for _, c, _, _ in _PHRASES], dtype=np.int64)
    texts = {"en": tuple(p[2] for p in _PHRASES), "zh": tuple(p[3] for p in _PHRASES)}
    return Lexicon(role, cat, texts, tuple(len(v) for v in ATTRIBUTES.values()))


LEXICON = build_lexicon()
