"""Evaluation against the truth the simulator knows: well-formedness, diversity, true CTR.

* **parse_ok**: the parser, run on the rendered text, recovers exactly the generated phrases with
  no unparsed tokens; **on_product**: at least one product phrase and every product phrase is of
  the campaign's category; **well_formed**: both, and no repeated role.
* **distinct-n**: distinct phrase n-grams / all phrase n-grams over the generated headlines;
  **distinct_candidates**: share of a request's K candidates that are distinct creatives.
* **true CTR**: ``adsim.response`` click probabilities of candidates for their request's user,
  context and ad slot, with the env's calibrated β0 — compared with the template sampler's
  candidates on the same requests and with the *oracle creative*: for each request, the best
  well-formed creative (one on-category product phrase, up to three phrases of distinct other
  roles, each attribute) a search over the whole lexicon finds under the hidden model.
* **personalisation lift** (:func:`personalisation_lift`): the true CTR of each request's
  candidates for its own user against the same candidates shown to another user of the same
  campaign (a seeded permutation within campaign, :func:`other_user_permutation`), paired.
* **fair baselines** (:func:`fair_baselines`): the generator's candidates, its pick by a learned
  CTR model and by the truth, against the mean template candidate, the template's best of K by the
  same learned model and by the truth, and the best creative the lexicon allows; the learned model's
  estimate of its own picks against their true CTR is the reward-hacking measure.

Every interval is a 95 % paired bootstrap over requests (:func:`paired_bootstrap`), seeded.
"""

from __future__ import annotations

import numpy as np

from adsim.creative.lexicon import MAX_PHRASES, ROLES
from adsim.creative.parser import HeadlineParser
from adsim.creative.sampler import CREATIVE_SLOTS, creative_parts, creative_quality
from adsim.response import (click_logits, click_prob, creative_affinity, creative_static_logit, discount_gain,
                            has_discount, interests_in_context, item_interest)
from adsim.world import World


def true_ctr(world: World, beta0: float, req: dict[str, np.ndarray], creatives: np.ndarray) -> np.ndarray:
    """(n, K) true click probabilities of creatives (n, K, CREATIVE_SLOTS) for requests ``req``
    (from :func:`adsim.generator.conditioning.sample_requests`)."""
    goal, cat, product = req["goal"], req["category"], req["product"]
    theta = interests_in_context(world, req["user"], req["hour"], req["weekend"], req["location"], req["weather"])
    static = creative_static_logit(world, creatives, goal, cat)
    affinity = creative_affinity(world, theta, creative_parts(creatives, world.lexicon))
    logits = click_logits(world, theta, req["user"], req["device"], item_interest(world, theta, product), affinity,
                          has_discount(world, creatives), static)
    return click_prob(logits, beta0, req["position"], world.context.position_factor)


def oracle_creatives(world: World, req: dict[str, np.ndarray]) -> np.ndarray:
    """(n, 1, CREATIVE_SLOTS) the best well-formed creative per request under the hidden model."""
    lex, beta = world.lexicon, world.config.interest_strength
    goal, cat = req["goal"], req["category"]
    theta = interests_in_context(world, req["user"], req["hour"], req["weekend"], req["location"], req["weather"])
    score = beta * theta @ world.part_appeal.T + world.part_goal[:, goal].T  # (n, n_parts)
    n, P = len(goal), lex.n_phrases
    phrase = score[:, 1 : 1 + P]
    prods = lex.product_phrases_by_category[cat]  # (n, per_category)
    best_prod = prods[np.arange(n), np.argmax(np.take_along_axis(phrase, prods, 1), 1)]
    roles = [r for r in range(len(ROLES)) if ROLES[r] != "product"]
    best, gain = [], []
    for r in roles:  # best phrase of each non-product role (a handful of roles, not a loop over users)
        ids = lex.phrases_by_role[ROLES[r]]
        s = phrase[:, ids]
        bonus = discount_gain(world) * world.user_price_sens[req["user"]][:, None] if ROLES[r] == "discount" else 0.0
        j = np.argmax(s + bonus, 1)
        best.append(ids[j])
        gain.append(s[np.arange(n), j] + (bonus[:, 0] if ROLES[r] == "discount" else 0.0))
    best, gain = np.stack(best, 1), np.stack(gain, 1)  # (n, n_roles)
    top = np.argsort(-gain, 1)[:, : MAX_PHRASES - 1]
    use = np.take_along_axis(gain, top, 1) > 0
    slots = np.zeros((n, MAX_PHRASES), dtype=np.int64)
    slots[:, 0] = best_prod + 1
    slots[:, 1:] = np.where(use, np.take_along_axis(best, top, 1) + 1, 0)
    attrs = []
    for k, size in enumerate(lex.attr_sizes):
        off = 1 + P + lex.attr_offsets[k]
        attrs.append(np.argmax(score[:, off : off + size], 1))
    out = np.concatenate([slots, np.stack(attrs, 1), np.zeros((n, 1), dtype=np.int64)], 1)
    return out[:, None]


def creative_headroom(world: World, beta0: float, n: int = 20_000, K: int = 8, seed: int = 0) -> dict[str, float]:
    """How much a better creative is worth in this world, on ``n`` fresh requests (true CTRs): the
    mean template creative, the best of the template sampler's ``K`` candidates, and the best
    creative the lexicon allows (:func:`oracle_creatives`), with the ratios to the mean template.

    Real creative sets differ by tens of percent, not multiples: published creative-level CTRs in
    one campaign, and +6–13 % lifts from production creative generation."""
    from adsim.creative.sampler import DRAWS_PER_CREATIVE
    from adsim.generator.conditioning import sample_requests
    from adsim.pools import template_sampler

    rng = np.random.default_rng(np.random.SeedSequence([seed, 29]))
    req = sample_requests(world, n, rng)
    u = rng.random((n, K, DRAWS_PER_CREATIVE))
    template = template_sampler(world).candidates(u, req["goal"], req["category"], world.user_features[req["user"]])
    p = true_ctr(world, beta0, req, template)
    best = true_ctr(world, beta0, req, oracle_creatives(world, req))[:, 0]
    mean, best_of_k, lexicon_best = float(p.mean()), float(p.max(1).mean()), float(best.mean())
    return {"requests": n, "K": K, "mean_template_ctr": mean, "best_of_K_template_ctr": best_of_k,
            "lexicon_best_ctr": lexicon_best, "best_of_K_over_mean_template": best_of_k / mean,
            "lexicon_best_over_mean_template": lexicon_best / mean}


def well_formedness(creatives: np.ndarray, category: np.ndarray, language: str = "en") -> dict[str, float]:
    """Shares of parse_ok, on_product and well_formed over creatives (n, K, S) of requests with
    product ``category`` (n,). Parses each distinct headline once (evaluation, not a hot path)."""
    parser = HeadlineParser(language)
    slots = creatives[..., :MAX_PHRASES].reshape(-1, MAX_PHRASES)
    uniq, inv = np.unique(slots, axis=0, return_inverse=True)
    ok = np.empty(len(uniq), dtype=bool)
    for i, row in enumerate(uniq):
        parse = parser.parse(parser.render_slots(row))
        ok[i] = parse.n_unparsed == 0 and parse.overflow == 0 and np.array_equal(parse.slots(), _packed(row))
    parse_ok = ok[inv.reshape(-1)].reshape(creatives.shape[:-1])
    q = creative_quality(creatives, category)  # off_product, missing_product, duplicate_roles, unparsed
    on_product = (q[..., 0] == 0) & (q[..., 1] == 0)
    wf = parse_ok & on_product & (q[..., 2] == 0)
    return {"parse_ok": float(parse_ok.mean()), "on_product": float(on_product.mean()),
            "well_formed": float(wf.mean())}


def _packed(row: np.ndarray) -> np.ndarray:
    kept = row[row > 0]
    out = np.zeros(MAX_PHRASES, dtype=np.int64)
    out[: len(kept)] = kept
    return out


def diversity(creatives: np.ndarray) -> dict[str, float]:
    """Diversity of each request's K candidates (creatives (n, K, S)), averaged over requests:
    distinct-1 / distinct-2 (distinct phrase unigrams / bigrams over all unigrams / bigrams of the
    K headlines) and the share of the K candidates that are distinct creatives."""
    n, K = creatives.shape[:2]
    slots = creatives[..., :MAX_PHRASES]
    uni = np.where(slots > 0, slots, -1 - np.arange(K * MAX_PHRASES).reshape(K, MAX_PHRASES))
    a, b = slots[..., :-1], slots[..., 1:]
    ok2 = (a > 0) & (b > 0)
    bi = np.where(ok2, a * 1000 + b, -1 - np.arange(K * (MAX_PHRASES - 1)).reshape(K, MAX_PHRASES - 1))
    key = np.zeros((n, K), dtype=np.int64)
    for s in range(CREATIVE_SLOTS):
        key = key * 101 + creatives[..., s]
    return {"distinct_1": float(np.mean(_n_distinct(uni.reshape(n, -1), slots.reshape(n, -1) > 0))),
            "distinct_2": float(np.mean(_n_distinct(bi.reshape(n, -1), ok2.reshape(n, -1)))),
            "distinct_candidates": float(np.mean(_n_distinct(key, np.ones((n, K), dtype=bool))))}


def _n_distinct(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(n,) distinct valid values / valid values per row (invalid entries are unique negatives)."""
    srt = np.sort(x, 1)
    new = np.ones_like(srt, dtype=bool)
    new[:, 1:] = srt[:, 1:] != srt[:, :-1]
    n_valid = valid.sum(1)
    distinct = (new & (srt >= 0)).sum(1)
    return distinct / np.maximum(n_valid, 1)


def bootstrap_ratio(a: np.ndarray, b: np.ndarray, seed: int = 0, n_boot: int = 2000) -> dict[str, float]:
    """Paired lift mean(a)/mean(b) − 1 over requests with a 95 % bootstrap interval."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boots = a[idx].mean(1) / b[idx].mean(1) - 1
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return {"lift": float(a.mean() / b.mean() - 1), "ci95": [float(lo), float(hi)]}


def compare(world: World, beta0: float, req: dict[str, np.ndarray], generated: np.ndarray,
            template: np.ndarray, seed: int = 0) -> dict:
    """Truth-based report for generated vs template candidates (both (n, K, S)) on requests ``req``."""
    cat = req["category"]
    p_gen = true_ctr(world, beta0, req, generated).mean(1)
    p_tpl = true_ctr(world, beta0, req, template).mean(1)
    p_orc = true_ctr(world, beta0, req, oracle_creatives(world, req))[:, 0]
    return {
        "n_requests": int(len(p_gen)),
        "K": int(generated.shape[1]),
        "generated": {**well_formedness(generated, cat), **diversity(generated)},
        "template": {**well_formedness(template, cat), **diversity(template)},
        "true_ctr": {"generated": float(p_gen.mean()), "template": float(p_tpl.mean()),
                     "oracle_creative": float(p_orc.mean())},
        "generation_lift_vs_template": bootstrap_ratio(p_gen, p_tpl, seed),
        "share_of_oracle_ctr": float(p_gen.mean() / p_orc.mean()),
        "template_share_of_oracle_ctr": float(p_tpl.mean() / p_orc.mean()),
    }


def other_user_permutation(req: dict[str, np.ndarray], seed: int = 0) -> np.ndarray:
    """(n,) for each request, another request of the same campaign whose creatives it is shown
    (−1 where there is none: the campaign's only request, or the partner has the same user).

    Requests are grouped by campaign (id, advertised item and goal: synthetic campaigns, id −1,
    group by item and goal), put in a random order drawn from ``seed`` within each group and each
    one's partner is the next in that order, cyclically: a fixed-point-free permutation, so every
    request's creatives are shown to exactly one other request of its campaign."""
    from adsim.validation import check_seed

    seed = check_seed(seed, many=False)
    for key in ("user", "campaign", "product", "goal"):
        if key not in req:
            raise ValueError(f"req has no {key!r} field (fields: {sorted(req)}); pass requests from "
                             "adsim.generator.conditioning.sample_requests")
    user, campaign, product, goal = (np.asarray(req[k]) for k in ("user", "campaign", "product", "goal"))
    n = len(user)
    if not (len(campaign) == len(product) == len(goal) == n):
        raise ValueError(f"req fields have lengths user {n}, campaign {len(campaign)}, product {len(product)}, "
                         f"goal {len(goal)}: all must be equal")
    key = np.random.default_rng(np.random.SeedSequence([seed, 31])).random(n)
    order = np.lexsort((key, goal, product, campaign))
    c, p, g = campaign[order], product[order], goal[order]
    start = np.ones(n, dtype=bool)
    start[1:] = (c[1:] != c[:-1]) | (p[1:] != p[:-1]) | (g[1:] != g[:-1])
    gid = np.cumsum(start) - 1
    first = np.flatnonzero(start)
    size = np.diff(np.append(first, n))
    pos = np.arange(n) - first[gid]
    partner = np.empty(n, dtype=np.int64)
    partner[order] = order[first[gid] + (pos + 1) % size[gid]]
    partner[user[partner] == user] = -1  # the campaign's only request (its own partner), or the same user
    return partner


def personalisation_lift(world: World, beta0: float, req: dict[str, np.ndarray], creatives: np.ndarray,
                         seed: int = 0, n_boot: int = 2000) -> dict:
    """How much creatives gain by being written for their own request: the true CTR of each
    request's creatives (n, K, S) for that request against the true CTR, for the same request, of
    the creatives written for another request of the same campaign (another user;
    :func:`other_user_permutation` with ``seed``, which also seeds the bootstrap). Since the
    partners form a permutation within each campaign, the second figure is also the true CTR of
    every creative set shown to another user.

    Paired over the receiving requests (the user's base propensity, context and slot cancel), with
    a 95 % bootstrap interval (``n_boot`` resamples) on the relative lift and on the difference.
    Creatives that do not depend on the user give a lift of exactly 0.
    """
    from adsim.validation import check_int

    check_int("n_boot", n_boot, 100)
    creatives = np.asarray(creatives)
    n = len(np.asarray(req.get("user", ())))
    if creatives.ndim != 3 or creatives.shape[0] != n:
        raise ValueError(f"creatives has shape {creatives.shape}, expected (n_requests={n}, K, CREATIVE_SLOTS)")
    partner = other_user_permutation(req, seed)
    ok = partner >= 0
    if ok.sum() < 2:
        raise ValueError(f"req has {int(ok.sum())} requests with another user of the same campaign, need >= 2: "
                         "draw more requests")
    rows = {k: np.asarray(v)[ok] for k, v in req.items()}
    own = true_ctr(world, beta0, rows, creatives[ok]).mean(1)
    other = true_ctr(world, beta0, rows, creatives[partner[ok]]).mean(1)
    return {"n_pairs": int(ok.sum()), "own_user_ctr": float(own.mean()), "other_user_ctr": float(other.mean()),
            **paired_bootstrap(own, other, seed, n_boot)}


def paired_bootstrap(a: np.ndarray, b: np.ndarray, seed: int = 0, n_boot: int = 2000) -> dict:
    """Paired comparison of per-request values ``a`` and ``b`` (n,): the lift mean(a)/mean(b) − 1
    and the difference mean(a − b), each with a 95 % bootstrap interval over requests (the same
    resamples for both)."""
    from adsim.validation import check_int

    check_int("n_boot", n_boot, 100)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
        raise ValueError(f"a and b have shapes {a.shape} and {b.shape}: expected the same (n,), n >= 2")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    ma, mb = a[idx].mean(1), b[idx].mean(1)
    lift_lo, lift_hi = np.quantile(ma / mb - 1, [0.025, 0.975])
    diff_lo, diff_hi = np.quantile(ma - mb, [0.025, 0.975])
    return {"lift": float(a.mean() / b.mean() - 1), "ci95": [float(lift_lo), float(lift_hi)],
            "diff": float((a - b).mean()), "diff_ci95": [float(diff_lo), float(diff_hi)]}


BASELINES = ("template_mean", "template_model_pick", "template_truth_pick", "lexicon_best")
"""The fair baselines of :func:`fair_baselines`: (a) the mean template candidate, (b) the best of
the K template candidates picked by the learned CTR model, (c) picked by the truth, (d) the best
creative the lexicon allows (:func:`oracle_creatives`)."""


def fair_baselines(world: World, beta0: float, req: dict[str, np.ndarray], generated: np.ndarray,
                   template: np.ndarray, generated_scores: np.ndarray, template_scores: np.ndarray,
                   seed: int = 0, n_boot: int = 2000) -> dict:
    """The generator's candidates against fair baselines, in true CTR, on requests ``req``.

    ``generated`` / ``template`` (n, K, S) are each request's candidates; ``*_scores`` (n, K) a
    learned CTR model's estimates of them (the platform's pick is the argmax). Reports the true
    CTR of: the generator's mean candidate, its model pick and its truth pick; the baselines
    :data:`BASELINES`; the paired lift of the generator's model pick over each baseline and of its
    mean candidate over the mean template; and, as the reward-hacking measure, the learned model's
    mean estimate of each model pick against its true CTR (``estimate / true − 1``).
    """
    shapes = {"generated": np.shape(generated), "template": np.shape(template)}
    n = len(np.asarray(req.get("user", ())))
    for name, shape in shapes.items():
        if len(shape) != 3 or shape[0] != n:
            raise ValueError(f"{name} has shape {shape}, expected (n_requests={n}, K, CREATIVE_SLOTS)")
    for name, s, c in (("generated_scores", generated_scores, generated),
                       ("template_scores", template_scores, template)):
        if np.shape(s) != np.shape(c)[:2]:
            raise ValueError(f"{name} has shape {np.shape(s)}, expected {np.shape(c)[:2]} (one score per candidate)")
    rows = np.arange(n)
    p_gen, p_tpl = true_ctr(world, beta0, req, generated), true_ctr(world, beta0, req, template)
    g_pick, t_pick = np.argmax(generated_scores, 1), np.argmax(template_scores, 1)
    per_request = {
        "generated_mean": p_gen.mean(1), "generated_model_pick": p_gen[rows, g_pick],
        "generated_truth_pick": p_gen.max(1),
        "template_mean": p_tpl.mean(1), "template_model_pick": p_tpl[rows, t_pick], "template_truth_pick": p_tpl.max(1),
        "lexicon_best": true_ctr(world, beta0, req, oracle_creatives(world, req))[:, 0],
    }
    pick = per_request["generated_model_pick"]
    est = {"generated_model_pick": np.asarray(generated_scores, dtype=np.float64)[rows, g_pick],
           "template_model_pick": np.asarray(template_scores, dtype=np.float64)[rows, t_pick]}
    return {
        "n_requests": int(n), "K": int(np.shape(generated)[1]),
        "true_ctr": {k: float(v.mean()) for k, v in per_request.items()},
        "generated_model_pick_vs": {b: paired_bootstrap(pick, per_request[b], seed, n_boot) for b in BASELINES},
        "generated_mean_vs_template_mean": paired_bootstrap(per_request["generated_mean"],
                                                            per_request["template_mean"], seed, n_boot),
        "reward_hacking": {k: {"estimated_ctr": float(e.mean()), "true_ctr": float(per_request[k].mean()),
                               "overestimate": float(e.mean() / per_request[k].mean() - 1)} for k, e in est.items()},
        "share_of_lexicon_best": {k: float(v.mean() / per_request["lexicon_best"].mean())
                                  for k, v in per_request.items()},
    }
