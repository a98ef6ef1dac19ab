"""The hidden response model: click and conversion probabilities over batches of requests.

``p(click) = σ(β0 + b_u + device + β·θ_u(ctx)ᵀ(φ(c) + ½·item) + goal fit + quality
+ price-sensitivity × discount − fatigue) × position factor``

All functions are pure and batched over any leading shape. ``β0`` is calibrated by
:func:`calibrate_intercept` so that a uniformly random policy sees the configured mean CTR.
"""

from __future__ import annotations

import numpy as np

from adsim.creative.sampler import creative_parts, creative_quality
from adsim.world import POSITION_FACTOR, World

QUALITY_PENALTY = np.array([1.5, 1.0, 0.5, 0.4])
"""Logit penalty per unit of (off_product, missing_product, duplicate_roles, unparsed tokens)."""
DISCOUNT_GAIN = 1.2
"""Logit gain of a discount phrase for a fully price-sensitive user at ``creative_scale`` 1 (the
gain is ``creative_scale · DISCOUNT_GAIN``: :func:`discount_gain`)."""
ITEM_WEIGHT = 0.5


def sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf for x < -709 gives exactly 0, as meant
        return 1.0 / (1.0 + np.exp(-x))


def context_log_multiplier(world: World, hour, weekend, location, weather) -> np.ndarray:
    """Log re-weighting of the topics by the real-time context, (..., d)."""
    ctx = world.context
    log_m = ctx.w_hour[hour // 6] + ctx.w_weekend[weekend] + ctx.w_location[location] + ctx.w_weather[weather]
    return world.config.context_strength * log_m


def interests_in_context(world: World, user, hour, weekend, location, weather, time=None,
                         multiplier: np.ndarray | None = None) -> np.ndarray:
    """θ_u re-weighted by real-time context (and scheduled drift), (..., d), rows on the simplex.

    ``multiplier`` (..., d) may carry a precomputed ``exp(context_log_multiplier(...))``.
    """
    if multiplier is None:
        multiplier = np.exp(context_log_multiplier(world, hour, weekend, location, weather))
    amp = world.config.drift_amplitude
    if amp > 0 and time is not None:
        ang = (2 * np.pi / world.config.drift_period) * np.asarray(time, dtype=np.float64)
        multiplier = multiplier * np.exp(amp * np.sin(ang[..., None] + world.topic_phase))
    theta = np.take(world.user_theta, user, axis=0)  # always a fresh array: updated in place
    if theta.shape == np.broadcast_shapes(theta.shape, multiplier.shape):
        theta *= multiplier
    else:
        theta = theta * multiplier
    theta /= theta.sum(axis=-1, keepdims=True)
    return theta


def _parts_in_range(parts: np.ndarray, n_parts: int) -> bool:
    """Whether every part index is in ``0 .. n_parts-1`` (then flat gathers read what the
    multi-index gathers read)."""
    return parts.size == 0 or (int(parts.min()) >= 0 and int(parts.max()) < n_parts)


def creative_static_logit(world: World, ids: np.ndarray, goal, category, parts: np.ndarray | None = None) -> np.ndarray:
    """User-independent part of a creative's logit (goal fit + quality), (..., K).

    ``parts`` may carry ``creative_parts(ids, world.lexicon)`` computed already."""
    if parts is None:
        parts = creative_parts(ids, world.lexicon)
    goal = np.asarray(goal)[..., None, None]
    if _parts_in_range(parts, world.n_parts):
        # part_goal[parts, goal] as one take from the goal-major table: the same numbers, summed alike
        fit = world.part_goal_by_goal.take(parts + goal * world.n_parts).sum(-1)
    else:  # negative (wrapping) part indices: the general gather
        fit = world.part_goal[parts, goal].sum(-1)
    quality = creative_quality(ids, category, world.lexicon) @ QUALITY_PENALTY
    return fit - quality


def creative_affinity(world: World, theta_ctx: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """θ_ctx · φ(c) for creatives given by their part indices, (..., K).

    Args:
        theta_ctx: (..., d) interests in context.
        parts: (..., K, P) part indices (``creative_parts``).
    """
    scores = theta_ctx @ world.part_appeal.T  # (..., n_parts)
    lead = scores.shape[:-1]
    n = scores.shape[-1]
    if parts.shape[: len(lead)] != lead or not _parts_in_range(parts, n):
        # broadcast leading shapes or wrapping indices: the general gather
        flat = parts.reshape(lead + (-1,))
        return np.take_along_axis(scores, flat, axis=-1).reshape(parts.shape).sum(-1)
    # each request's row of scores gathered by one flat take: the same numbers, summed alike
    row = (np.arange(int(np.prod(lead)), dtype=parts.dtype) * n).reshape(lead + (1,) * (parts.ndim - len(lead)))
    return scores.reshape(-1).take(parts + row).sum(-1)


def creative_phi(world: World, ids: np.ndarray) -> np.ndarray:
    """Hidden feature φ(c) = Σ of the appeal vectors of a creative's parts, (..., K, d)."""
    return world.part_appeal[creative_parts(ids, world.lexicon)].sum(-2)


def has_discount(world: World, ids: np.ndarray, parts: np.ndarray | None = None) -> np.ndarray:
    """(..., K) whether a creative carries a discount phrase; ``parts`` may carry ``creative_parts``."""
    if parts is None:
        parts = creative_parts(ids, world.lexicon)
    flags = world.part_is_discount.take(parts)  # (..., K, P) bool
    if flags.shape[-1] == 8 and flags.flags.c_contiguous:  # each creative's 8 flags one 8-byte word
        return flags.view(np.uint64)[..., 0] != 0
    return flags.any(-1)


def item_interest(world: World, theta_ctx, product, topic: np.ndarray | None = None) -> np.ndarray:
    """θ_ctx · (topic vector of the advertised product), (...); ``topic`` (..., d) may carry
    ``world.product_topic[product]`` gathered already."""
    prod = theta_ctx * (world.product_topic[product] if topic is None else topic)
    return prod.sum(-1)


def discount_gain(world: World) -> float:
    """Logit gain of a discount phrase for a fully price-sensitive user: a creative effect, so it
    scales with ``creative_scale`` like the parts' appeal and goal fit."""
    return DISCOUNT_GAIN * world.config.creative_scale


def click_logits(world: World, theta_ctx, user, device, item, affinity, discount, static,
                 candidate_axis: int = -1) -> np.ndarray:
    """Click logits without the intercept β0 and without fatigue, (..., K).

    Args:
        theta_ctx: (..., d) interests in context.
        user, device: (...) ints.
        item: (...) :func:`item_interest` of the advertised product.
        affinity: (..., K) θ_ctx · φ(c) (:func:`creative_affinity`).
        discount: (..., K) bool, the creative carries a discount phrase.
        static: (..., K) from :func:`creative_static_logit`.
        candidate_axis: -1 (default), or 0 where ``affinity``, ``discount``, ``static`` and the
            result are laid out candidate-first, (K, ...): the same numbers, each of the K rows a
            contiguous run (NumPy steps through long rows much faster than through K-wide ones).
    """
    if candidate_axis not in (-1, 0):
        raise ValueError(f"candidate_axis == {candidate_axis!r}, must be -1 or 0")
    beta = world.config.interest_strength
    user_term = world.user_bias[user] + world.context.device_bias[device] + beta * ITEM_WEIGHT * item
    gain = discount_gain(world) * world.user_price_sens[user]
    if candidate_axis == -1:
        user_term, gain = user_term[..., None], gain[..., None]
    gain = gain * discount
    logits = beta * affinity
    if logits.shape != np.broadcast_shapes(logits.shape, user_term.shape, np.shape(static), gain.shape):
        return user_term + logits + static + gain
    # ((user_term + β·affinity) + static) + gain, summed in place: the same roundings, fewer temporaries
    logits += user_term
    logits += static
    logits += gain
    return logits


def conversion_prob(world: World, item, user, product, tier: np.ndarray | None = None,
                    discount: np.ndarray | None = None) -> np.ndarray:
    """P(conversion | click), (...): interest in the item (:func:`item_interest`), price sensitivity, discount.

    ``tier`` and ``discount`` may carry ``world.product_tier[product] / 2.0`` and
    ``world.product_discount[product]`` gathered already."""
    item = item * world.d
    ps = world.user_price_sens[user]
    tier = world.product_tier[product] / 2.0 if tier is None else tier
    disc = world.product_discount[product] if discount is None else discount
    return sigmoid(-2.0 + 0.6 * item - 1.5 * ps * tier + 3.0 * ps * disc)


def attraction_prob(logit_wo_intercept: np.ndarray, beta0: float) -> np.ndarray:
    """σ(logit + β0), any shape: the click probability before the ad slot's factor — a creative's
    *attraction* in a slate's click model (``adsim.click_models``), and at the top slot (factor 1 by
    default) its click probability. A new array."""
    # σ in place: 1 / (1 + exp(−x)) with −x = −(logit + β0) = (−β0) − logit exactly (rounding is symmetric)
    p = np.subtract(-beta0, logit_wo_intercept)
    with np.errstate(over="ignore"):
        np.exp(p, out=p)
    p += 1.0
    np.divide(1.0, p, out=p)
    return p


def click_prob(logit_wo_intercept, beta0: float, position, slot_factors: np.ndarray = POSITION_FACTOR,
               candidate_axis: int = -1) -> np.ndarray:
    """(..., K) click probabilities from logits, the intercept and the ad slot (...): the slot's
    factor (``world.context.position_factor``) times the sigmoid. ``candidate_axis=0``: logits and
    result laid out (K, ...), as in :func:`click_logits`."""
    if candidate_axis not in (-1, 0):
        raise ValueError(f"candidate_axis == {candidate_axis!r}, must be -1 or 0")
    p = attraction_prob(logit_wo_intercept, beta0)
    factor = slot_factors.take(position)
    if candidate_axis == -1:
        factor = factor[..., None]
        if factor.shape[:-1] != p.shape[:-1]:  # positions of another (broadcast) shape
            return p * factor
    elif factor.shape != p.shape[1:]:
        return p * factor
    p *= factor
    return p


def truth_info(click_probs: np.ndarray, expected: np.ndarray, outcome=None, fields: tuple[str, ...] = (),
               optimal: np.ndarray | None = None) -> dict:
    """An env's batched ``info``: the true click probabilities and expected rewards (N, K) of the
    current requests, the optimal action, and the outcome of the step that led to them (``regret``,
    ``clicked``, the env's own ``fields`` and ``reward_expected``; ``regret`` 0 after a reset).
    ``optimal`` may carry ``argmax(expected, axis=1)`` computed already (a fresh copy is returned)."""
    optimal = expected.argmax(axis=1) if optimal is None else optimal.copy()
    info = {"click_probs": click_probs, "expected_reward": expected, "optimal_action": optimal}
    if outcome is None:
        info["regret"] = np.zeros(expected.shape[0])
    else:
        info.update(regret=outcome.regret, clicked=outcome.clicked, **{k: getattr(outcome, k) for k in fields},
                    reward_expected=outcome.expected_reward)
    return info


CALIBRATION_MAX_REL_SE = 0.10
"""Largest relative standard error of the reference sample's random-policy CTR that calibration accepts."""


def _mean_click_prob(logits: np.ndarray, pf: np.ndarray, beta0: float) -> float:
    return float((sigmoid(logits + beta0) * pf).mean())


def calibrate_intercept(logits: np.ndarray, position: np.ndarray, target: float, *, world_config=None,
                        slot_factors: np.ndarray | None = None) -> float:
    """β0 such that the mean of ``click_prob(logits, β0, position)`` equals ``target``.

    ``logits`` are (M, K) logits of a reference sample of requests under a uniformly random
    choice among K candidates. Bisection on a monotone function; exact to 1e-10. The search starts
    in [-30, 30] and widens to wherever β0 lies (every logit spread the config ranges allow).

    Raises:
        ValueError: naming the world parameters (``world_config``, when given) if the target cannot
            be reached, or if it can only be reached on a few extreme (user, creative) pairs, so that
            the reference sample's CTR has a relative standard error above
            :data:`CALIBRATION_MAX_REL_SE` (a fresh sample would then miss the target).
    """
    if slot_factors is None:
        slot_factors = POSITION_FACTOR if world_config is None else np.array(world_config.slot_factors)
    pf = np.asarray(slot_factors, dtype=np.float64)[position][:, None]
    lo, hi = -30.0, 30.0
    if _mean_click_prob(logits, pf, lo) > target:  # a spread of logits beyond the default bracket
        lo = -float(np.max(logits)) - 40.0  # every σ below e^-40: mean CTR below any allowed target
    if _mean_click_prob(logits, pf, hi) < target:
        hi = max(hi, -float(np.min(logits)) + 40.0)  # every σ ≈ 1: the CTR is the position factors' mean
        if _mean_click_prob(logits, pf, hi) < target:
            raise ValueError(f"target_ctr == {target} is not reachable with these position factors "
                             f"(at most {_mean_click_prob(logits, pf, hi):.3f}){_params(world_config)}")
    for _ in range(100 if hi - lo <= 60.0 else 100 + int(np.ceil(np.log2((hi - lo) / 60.0)))):
        mid = 0.5 * (lo + hi)
        if _mean_click_prob(logits, pf, mid) < target:
            lo = mid
        else:
            hi = mid
    beta0 = 0.5 * (lo + hi)
    per_request = (sigmoid(logits + beta0) * pf).mean(axis=1)
    rel_se = float(per_request.std() / np.sqrt(per_request.shape[0]) / target)
    if rel_se > CALIBRATION_MAX_REL_SE:
        raise ValueError(
            f"target_ctr == {target} cannot be calibrated reliably{_params(world_config)}: at β0 = {beta0:.1f} "
            f"the clicks come from a few extreme (user, creative) pairs (the random-policy CTR of "
            f"{per_request.shape[0]} reference requests has a relative standard error of {rel_se:.0%}, "
            f"allowed {CALIBRATION_MAX_REL_SE:.0%}); reduce interest_strength, creative_scale or "
            f"context_strength, or raise target_ctr")
    return beta0


def _params(world_config) -> str:
    if world_config is None:
        return ""
    names = ("interest_strength", "creative_scale", "context_strength", "drift_amplitude", "target_ctr")
    return " with " + ", ".join(f"{n} == {getattr(world_config, n)}" for n in names)
