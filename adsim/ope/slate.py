"""Off-policy value estimators for slate logs: one row per page of ``L`` ordered positions.

A slate log is held *wide*: for ``n`` logged pages (slates) with ``L`` positions each, every array
has one row per slate and one column per position (0 = top).

| array | shape | holds |
|---|---|---|
| ``reward`` | (n, L) float | the reward observed at each position (a click) |
| ``action`` | (n, L) int | the candidate shown at each position, in [0, K) |
| marginal pscore | (n, L) float | ``π(a_l at position l | x)``: the probability of the shown item at that position |
| cumulative pscore | (n, L) float | ``π(a_0, …, a_l | x)``: the probability of the first ``l + 1`` positions as shown |
| joint pscore | (n,) float | ``π(a_0, …, a_{L−1} | x)``: the whole slate's probability (the last cumulative column) |

Logging propensities (``pscore``) lie in (0, 1]; target propensities (``target``) in [0, 1]. A
cumulative propensity cannot grow along the positions. The slate's reward is the sum of its
positions' rewards, and every estimator estimates ``V(π) = E_π[Σ_l r_l]`` (divide by ``L`` for a
per-impression CTR), with the weights ``w = target / pscore`` of the one-slot estimators
(:mod:`adsim.ope.estimators`, whose propensity floor, result checks and intervals are used here):

| estimator | value | unbiased when |
|---|---|---|
| ``sips`` (standard slate IPS) | mean_i w_joint,i Σ_l r_il | the logger covers the target's slates |
| ``iips`` (independent IPS) | mean_i Σ_l w_marg,il r_il | ``r_l`` depends only on (x, a_l, l) (position-based click model) |
| ``rips`` (reward-interaction IPS) | mean_i Σ_l w_cum,il r_il | ``r_l`` depends only on (x, a_0..a_l) (cascade) |
| ``cascade_dr`` (Kiyohara et al., WSDM 2022) | mean_i Σ_l [w_cum,il (r_il − q̂_l(x, a_0..a_l)) + w_cum,i(l−1) E_{a∼π(·|x, a_<l)} q̂_l(x, a_<l, a)] | as ``rips``, for any q̂ |
| ``pseudo_inverse`` (Swaminathan et al., NeurIPS 2017) | mean_i Σ_l r_il · θ_i, θ_i = q_πᵀ Γ_μ⁺ 1_{s_i} | the slate reward is additive over (item, position) |

The pseudo-inverse needs the logging policy's second moments ``Γ_μ = E_μ[1_s 1_sᵀ]`` of the
(position, item) indicators; two loggers have it in closed form, chosen with ``logging``:

* ``"product"`` — positions drawn independently (``μ(s|x) = Π_l μ_l(s_l|x)``, items may repeat):
  ``θ = Σ_l w_marg,l − L + 1``, from marginal propensities alone (Swaminathan et al.'s example);
* ``"uniform"`` — ``L`` distinct items drawn uniformly from ``K`` (the Open Bandit Dataset's
  random logger): ``θ = [(K − 1)((K − L + 1) Σ_l q(l, s_l) + Σ_l Σ_{k≠l} q(k, s_l)) − K(L − 1)] / (K − L)``
  with ``q(k, a)`` the target's marginal probability of item ``a`` at position ``k`` (all of them:
  ``target`` (n, L, K)). Derivation: with ``1_s`` the (position, item) indicators of slate ``s``,
  PI is unbiased for additive rewards when ``E_μ[θ_s 1_s] = q_π``. Under this logger ``E_μ[1{s_k = b}] =
  1/K`` and ``E_μ[1{s_k = b, s_j = a}] = 1{a ≠ b}/(K(K − 1))`` (j ≠ k), so for ``θ_s = α Σ_l q(l, s_l)
  + β Σ_l Σ_{k≠l} q(k, s_l) + γ`` (using ``Σ_a q(l, a) = 1``) the entry (k, b) of ``E_μ[θ_s 1_s]`` is
  ``q(k, b)(α − β)/(K − 1) + Q_b (β(K − L + 1) − α)/(K(K − 1)) + ((L − 1)(α + β(L − 1))/(K − 1) + γ)/K``
  with ``Q_b = Σ_k q(k, b)``; it equals ``q(k, b)`` for every q iff ``β = (K − 1)/(K − L)``,
  ``α = β(K − L + 1)``, ``γ = −K(L − 1)/(K − L)`` (the formula above; for L = 1 it is ``K·q = q/μ``).
  ``tests/test_slate_ope.py`` checks it by enumerating every slate.

Each estimator returns an :class:`~adsim.ope.estimators.Estimate`: its terms are per slate, so
the normal interval and the percentile bootstrap resample slates, not positions.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from adsim.ope.estimators import Estimate, _summarise, floor_pscore
from adsim.validation import check_choice

SLATE_ESTIMATORS = ("sips", "iips", "rips", "cascade_dr", "pseudo_inverse")
PI_LOGGERS = ("product", "uniform")
_PROB_TOL = 1e-9


def _float_array(name: str, value: Any, shape: tuple[int, ...] | None, ndim: int) -> np.ndarray:
    """``value`` as a finite float64 array with ``ndim`` dimensions (and ``shape`` when given)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(value).__name__}")
    if not np.issubdtype(value.dtype, np.number) or np.issubdtype(value.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    if value.ndim != ndim or (shape is not None and value.shape != shape):
        want = shape if shape is not None else f"{ndim} dimension(s)"
        raise ValueError(f"{name} has shape {value.shape}, expected {want}")
    value = value.astype(np.float64, copy=False)
    if not np.all(np.isfinite(value)):
        at = np.unravel_index(int(np.flatnonzero(~np.isfinite(value))[0]), value.shape)
        raise ValueError(f"{name} must be finite; {name}[{', '.join(map(str, at))}] is {value[at]}")
    return value


def _probability(name: str, value: Any, shape: tuple[int, ...], *, logging: bool,
                 cumulative: bool = False) -> np.ndarray:
    """A propensity array: in (0, 1] for the logger, [0, 1] for a target; non-increasing along
    the positions when ``cumulative``."""
    p = _float_array(name, value, shape, len(shape))
    bad = (p <= 0) | (p > 1 + _PROB_TOL) if logging else (p < 0) | (p > 1 + _PROB_TOL)
    if bad.any():
        at = np.unravel_index(int(np.flatnonzero(bad)[0]), p.shape)
        rule = "(0, 1] (a logged slate has positive logging probability)" if logging else "[0, 1]"
        raise ValueError(f"{name}[{', '.join(map(str, at))}] == {float(p[at])!r}, must be in {rule}")
    if cumulative and p.shape[-1] > 1:
        grows = np.diff(p, axis=-1) > _PROB_TOL * np.maximum(p[..., :-1], 1e-300) + _PROB_TOL
        if grows.any():
            i, l = np.unravel_index(int(np.flatnonzero(grows)[0]), grows.shape)
            before, after = float(p[i, l]), float(p[i, l + 1])
            raise ValueError(f"{name}[{i}] grows from position {l} to {l + 1} ({before!r} -> {after!r}): a "
                             "cumulative propensity π(a_0..a_l | x) cannot grow with l; did you pass marginal "
                             "propensities?")
    return p


def _reward(reward: Any) -> np.ndarray:
    r = _float_array("reward", reward, None, 2)
    if r.shape[0] == 0 or r.shape[1] == 0:
        raise ValueError(f"reward has shape {r.shape}, need at least one slate and one position")
    return r


def _actions(action: Any, shape: tuple[int, int], n_candidates: int) -> np.ndarray:
    if not isinstance(action, np.ndarray):
        raise TypeError(f"action must be a numpy array, got {type(action).__name__}")
    if not np.issubdtype(action.dtype, np.integer):
        raise TypeError(f"action must hold integers (candidate indices), got dtype {action.dtype}")
    if action.shape != shape:
        raise ValueError(f"action has shape {action.shape}, expected {shape} like reward")
    if action.min() < 0 or action.max() >= n_candidates:
        bad = action.min() if action.min() < 0 else action.max()
        raise ValueError(f"action holds {bad}, must be a candidate index in [0, {n_candidates})")
    return action.astype(np.int64, copy=False)


def _weights(pscore: np.ndarray, target: np.ndarray, clip_pscore: bool) -> tuple[np.ndarray, int]:
    p, n_clipped = floor_pscore(pscore, clip_pscore)
    with np.errstate(over="ignore"):
        return target / p, n_clipped


def _result(name: str, num: np.ndarray, n_clipped: int, alpha: float, ci: str, n_boot: int,
            seed: int | None) -> Estimate:
    with np.errstate(over="ignore", invalid="ignore"):
        return _summarise(name, num, None, alpha, ci, n_boot, seed, n_clipped)


def sips(reward: np.ndarray, pscore: np.ndarray, target: np.ndarray, *, alpha: float = 0.05, ci: str = "normal",
         n_boot: int = 200, seed: int | None = None, clip_pscore: bool = False) -> Estimate:
    """Standard slate IPS: the slate's reward weighted by the ratio of the whole slate's probabilities.

    Args:
        reward: (n, L) per-position rewards.
        pscore: (n,) joint logging probability of each logged slate.
        target: (n,) joint target probability of the same slates.
        clip_pscore: clip propensities below the floor (1e-6) to it instead of raising.
    """
    r = _reward(reward)
    p = _probability("pscore", pscore, (r.shape[0],), logging=True)
    t = _probability("target", target, (r.shape[0],), logging=False)
    w, n_clipped = _weights(p, t, clip_pscore)
    with np.errstate(over="ignore", invalid="ignore"):
        num = w * r.sum(axis=1)
    return _result("sips", num, n_clipped, alpha, ci, n_boot, seed)


def iips(reward: np.ndarray, pscore: np.ndarray, target: np.ndarray, *, alpha: float = 0.05, ci: str = "normal",
         n_boot: int = 200, seed: int | None = None, clip_pscore: bool = False) -> Estimate:
    """Independent IPS: each position's reward weighted by that position's marginal ratio.

    Args:
        reward: (n, L) per-position rewards.
        pscore: (n, L) marginal logging probability of each shown (item, position).
        target: (n, L) marginal target probability of the same (item, position).
    """
    r = _reward(reward)
    p = _probability("pscore", pscore, r.shape, logging=True)
    t = _probability("target", target, r.shape, logging=False)
    w, n_clipped = _weights(p, t, clip_pscore)
    with np.errstate(over="ignore", invalid="ignore"):
        num = (w * r).sum(axis=1)
    return _result("iips", num, n_clipped, alpha, ci, n_boot, seed)


def rips(reward: np.ndarray, pscore: np.ndarray, target: np.ndarray, *, alpha: float = 0.05, ci: str = "normal",
         n_boot: int = 200, seed: int | None = None, clip_pscore: bool = False) -> Estimate:
    """Reward-interaction IPS: position ``l``'s reward weighted by the ratio of positions 0..l.

    Args:
        reward: (n, L) per-position rewards.
        pscore: (n, L) cumulative logging probability ``μ(a_0..a_l | x)``.
        target: (n, L) cumulative target probability ``π(a_0..a_l | x)``.
    """
    r = _reward(reward)
    p = _probability("pscore", pscore, r.shape, logging=True, cumulative=True)
    t = _probability("target", target, r.shape, logging=False, cumulative=True)
    w, n_clipped = _weights(p, t, clip_pscore)
    with np.errstate(over="ignore", invalid="ignore"):
        num = (w * r).sum(axis=1)
    return _result("rips", num, n_clipped, alpha, ci, n_boot, seed)


def cascade_dr(reward: np.ndarray, action: np.ndarray, pscore: np.ndarray, target: np.ndarray, q_hat: np.ndarray,
               *, alpha: float = 0.05, ci: str = "normal", n_boot: int = 200, seed: int | None = None,
               clip_pscore: bool = False) -> Estimate:
    """Cascade doubly robust (Kiyohara et al., WSDM 2022): RIPS with a per-position reward model as
    control variate; unbiased under the cascade assumption whatever q̂ is, and of lower variance
    the better q̂ predicts.

    Args:
        reward: (n, L) per-position rewards.
        action: (n, L) int candidates shown, in [0, K).
        pscore: (n, L) cumulative logging probability ``μ(a_0..a_l | x)``.
        target: (n, L, K) the target's conditional distribution at position ``l`` given the logged
            items above it, ``π(a | x, a_0..a_{l−1})`` (its cumulative weights are products of these).
        q_hat: (n, L, K) predicted expected reward at position ``l`` of each candidate ``a`` placed
            below the logged items, ``q̂_l(x, a_0..a_{l−1}, a)``.
    """
    r = _reward(reward)
    n, L = r.shape
    if not isinstance(target, np.ndarray) or target.ndim != 3:
        raise ValueError(f"target has shape {getattr(target, 'shape', None)}, expected (n, L, K) == ({n}, {L}, K): "
                         "the target's conditional distribution over candidates at each position")
    K = target.shape[2]
    t = _probability("target", target, (n, L, K), logging=False)
    sums = t.sum(axis=2)
    if np.abs(sums - 1).max() > 1e-6:
        i, l = np.unravel_index(int(np.argmax(np.abs(sums - 1))), sums.shape)
        raise ValueError(f"target[{i}, {l}] sums to {float(sums[i, l])!r}, must be a distribution over the K == {K} "
                         "candidates (sum 1)")
    q = _float_array("q_hat", q_hat, (n, L, K), 3)
    a = _actions(action, (n, L), K)
    p = _probability("pscore", pscore, (n, L), logging=True, cumulative=True)
    p, n_clipped = floor_pscore(p, clip_pscore)
    cond = np.take_along_axis(t, a[:, :, None], axis=2)[:, :, 0]
    with np.errstate(over="ignore", invalid="ignore"):
        w = np.cumprod(cond, axis=1) / p
        w_prev = np.concatenate([np.ones((n, 1)), w[:, :-1]], axis=1)
        factual = np.take_along_axis(q, a[:, :, None], axis=2)[:, :, 0]
        expected = np.einsum("nlk,nlk->nl", t, q)
        num = (w * (r - factual) + w_prev * expected).sum(axis=1)
    return _result("cascade_dr", num, n_clipped, alpha, ci, n_boot, seed)


def pseudo_inverse(reward: np.ndarray, target: np.ndarray, *, pscore: np.ndarray | None = None,
                   action: np.ndarray | None = None, logging: str = "product", alpha: float = 0.05,
                   ci: str = "normal", n_boot: int = 200, seed: int | None = None,
                   clip_pscore: bool = False) -> Estimate:
    """Pseudo-inverse estimator (Swaminathan et al., NeurIPS 2017) for slate rewards additive over
    (item, position); ``logging`` names the logger's form (see the module docstring).

    Args:
        reward: (n, L) per-position rewards (the slate reward is their sum).
        target: ``"product"``: (n, L) marginal target probability of each shown (item, position);
            ``"uniform"``: (n, L, K) the target's marginal probability of every candidate at every
            position.
        pscore: ``"product"``: (n, L) marginal logging probability of each shown (item, position);
            ``"uniform"``: optional, and if given must be ``1/K`` everywhere.
        action: ``"uniform"`` only: (n, L) int distinct candidates shown, in [0, K).
        logging: ``"product"`` or ``"uniform"``.
    """
    check_choice("logging", logging, PI_LOGGERS)
    r = _reward(reward)
    n, L = r.shape
    if logging == "product":
        if pscore is None:
            raise ValueError("pseudo_inverse(logging='product') needs pscore: (n, L) marginal logging propensities")
        p = _probability("pscore", pscore, (n, L), logging=True)
        t = _probability("target", target, (n, L), logging=False)
        w, n_clipped = _weights(p, t, clip_pscore)
        with np.errstate(over="ignore", invalid="ignore"):
            theta = w.sum(axis=1) - L + 1
    else:
        if not isinstance(target, np.ndarray) or target.ndim != 3 or target.shape[:2] != (n, L):
            raise ValueError(f"target has shape {getattr(target, 'shape', None)}, expected (n, L, K) == ({n}, {L}, K) "
                             "for logging='uniform': every candidate's marginal target probability at every position")
        K = target.shape[2]
        if K <= L:
            raise ValueError(f"logging='uniform' needs more candidates than positions: K == {K}, L == {L}")
        t = _probability("target", target, (n, L, K), logging=False)
        if action is None:
            raise ValueError("pseudo_inverse(logging='uniform') needs action: (n, L) candidates shown")
        a = _actions(action, (n, L), K)
        srt = np.sort(a, axis=1)
        if L > 1 and (srt[:, 1:] == srt[:, :-1]).any():
            i = int(np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))[0])
            raise ValueError(f"action[{i}] == {a[i].tolist()} repeats a candidate; a uniform logger without "
                             "replacement shows L distinct candidates (use logging='product' for one with replacement)")
        if pscore is not None:
            p = _probability("pscore", pscore, (n, L), logging=True)
            if np.abs(p - 1 / K).max() > 1e-9:
                off = float(p.flat[int(np.argmax(np.abs(p - 1 / K)))])
                raise ValueError(f"pscore holds {off!r}; a uniform logger over "
                                 f"K == {K} candidates has marginal propensity 1/K == {1 / K!r} everywhere")
        n_clipped = 0
        # m[i, k, l] = q_i(k, s_il): the target's probability of the item shown at l, at position k
        m = np.take_along_axis(t, np.broadcast_to(a[:, None, :], (n, L, L)), axis=2)
        own = np.einsum("nll->n", m)
        other = m.sum(axis=(1, 2)) - own
        theta = ((K - 1) * ((K - L + 1) * own + other) - K * (L - 1)) / (K - L)
    with np.errstate(over="ignore", invalid="ignore"):
        num = theta * r.sum(axis=1)
    return _result("pseudo_inverse", num, n_clipped, alpha, ci, n_boot, seed)


def cumulative_pscore(conditional: np.ndarray) -> np.ndarray:
    """(n, L) cumulative propensities ``π(a_0..a_l | x)`` from (n, L) conditional ones
    ``π(a_l | x, a_0..a_{l−1})``: their running product along the positions."""
    c = _float_array("conditional", conditional, None, 2)
    return np.cumprod(c, axis=1)


@lru_cache(maxsize=16)
def all_slates(n_candidates: int, n_positions: int) -> np.ndarray:
    """(S, L) int64 every ordered slate of ``L`` distinct candidates out of ``K`` (lexicographic),
    ``S = K! / (K − L)!``; read-only. For policies whose slate distribution is enumerated."""
    from adsim.validation import check_int

    check_int("n_candidates", n_candidates, 1)
    check_int("n_positions", n_positions, 1, n_candidates)
    size = 1
    for k in range(n_candidates - n_positions + 1, n_candidates + 1):
        size *= k
    if size > 2_000_000:
        raise ValueError(f"{size} ordered slates of {n_positions} out of {n_candidates} candidates: too many to "
                         "enumerate (at most 2,000,000)")
    out = np.array(list(itertools.permutations(range(n_candidates), n_positions)), dtype=np.int64)
    out.flags.writeable = False
    return out


def plackett_luce_probs(logits: np.ndarray, n_positions: int) -> np.ndarray:
    """(n, S) probability of every ordered slate (:func:`all_slates` order) under Plackett–Luce:
    position by position, a candidate not yet shown is drawn with probability ∝ ``exp(logit)``.

    Args:
        logits: (n, K) float scores per candidate.
    """
    z = _float_array("logits", logits, None, 2)
    slates = all_slates(z.shape[1], n_positions)
    w = np.exp(z - z.max(axis=1, keepdims=True))  # (n, K)
    ws = w[:, slates]  # (n, S, L)
    shown_before = np.concatenate([np.zeros(ws.shape[:2] + (1,)), np.cumsum(ws, axis=2)[:, :, :-1]], axis=2)
    left = w.sum(axis=1)[:, None, None] - shown_before  # weight of the candidates not yet shown
    return np.prod(ws / left, axis=2)


class SlatePscores(NamedTuple):
    """A policy's propensities of a batch of slates, in every form the estimators read: the one
    slate-propensity type of the project (``agents.slate``'s policies return it from
    ``slate_propensities``; the forms a policy cannot give exactly and cheaply are ``None`` there, and
    :meth:`from_slate_probs` gives them all from the probabilities of every ordered slate).

    Attributes:
        marginal: (n, L) probability of the shown item at its position.
        cumulative: (n, L) probability of the shown items at positions 0..l.
        joint: (n,) probability of the whole shown slate (``cumulative[:, -1]``).
        marginal_table: (n, L, K) probability of every candidate at every position.
        conditional: (n, L, K) distribution at position ``l`` given the shown items above it (where
            the policy never shows those items: its marginal at ``l``, weighted by 0 in every estimator).
    """

    marginal: np.ndarray | None = None
    cumulative: np.ndarray | None = None
    joint: np.ndarray | None = None
    marginal_table: np.ndarray | None = None
    conditional: np.ndarray | None = None

    @classmethod
    def from_slate_probs(cls, probs: np.ndarray, action: np.ndarray) -> "SlatePscores":
        """From a policy's (n, S) probabilities of every ordered slate (:func:`all_slates` order,
        ``K`` and ``L`` taken from ``action`` (n, L) and the number of columns) and the shown slates."""
        a = action
        n, L = a.shape
        K = int(round(_n_candidates(probs.shape[1], L)))
        slates = all_slates(K, L)
        p = _probability("probs", probs, (n, slates.shape[0]), logging=False)
        onehot = (slates[:, :, None] == np.arange(K)).astype(np.float64)  # (S, L, K)
        table = np.einsum("ns,slk->nlk", p, onehot)  # Σ_s p(s) 1{s_l = k}
        match = np.cumprod(slates[None, :, :] == a[:, None, :], axis=2).astype(bool)  # s agrees with the shown on 0..l
        cumulative = np.einsum("ns,nsl->nl", p, match)
        above = np.concatenate([np.ones((n, slates.shape[0], 1), bool), match[:, :, :-1]], axis=2)  # agrees on 0..l-1
        cond = np.einsum("ns,nsl,slk->nlk", p, above, onehot)
        mass = cond.sum(axis=2, keepdims=True)  # the policy's probability of the shown items above l
        with np.errstate(invalid="ignore", divide="ignore"):
            # a prefix the policy never shows: its weight is 0 in every estimator, so any distribution
            # serves; the position's marginal keeps the rows distributions (cascade_dr checks they sum to 1)
            cond = np.where(mass > 0, cond / np.where(mass > 0, mass, 1.0), table)
        marginal = np.take_along_axis(table, a[:, :, None], axis=2)[:, :, 0]
        return cls(marginal, cumulative, cumulative[:, -1].copy(), table, cond)


def _n_candidates(n_slates: int, L: int) -> int:
    for K in range(L, 200):
        size = 1
        for k in range(K - L + 1, K + 1):
            size *= k
        if size == n_slates:
            return K
        if size > n_slates:
            break
    raise ValueError(f"{n_slates} columns is not the number of ordered slates of {L} positions out of any K")


class SlateLogRecord(NamedTuple):
    """``n`` logged pages of a slate core (:func:`adsim.collect.collect_slate_log`), ``L`` positions,
    ``K`` candidates, ``S`` ordered slates (:func:`all_slates` order).

    Attributes:
        action: (n, L) int64 the slate shown.
        clicks: (n, L) float64 the clicks at each position.
        pi_b: (n, S) the logging policy's probability of every slate.
        ctr_estimate: (n, K) the observation's CTR estimate per candidate.
        attraction: (n, K) the candidates' true attractions (truth, evaluation only).
        slate_value: (n, S) every slate's expected clicks on the page (truth, evaluation only).
        campaign_id: (n,) int64 the request's campaign.
        meta: JSON-able description (policy, seed, config).
        pi_targets: (n, S) each target's probability of every slate on the logged pages, for the
            targets given to :func:`adsim.collect.collect_slate_log` (in their order; empty if none).
    """

    action: np.ndarray
    clicks: np.ndarray
    pi_b: np.ndarray
    ctr_estimate: np.ndarray
    attraction: np.ndarray
    slate_value: np.ndarray
    campaign_id: np.ndarray
    meta: dict
    pi_targets: tuple = ()

    @property
    def n_pages(self) -> int:
        return int(self.action.shape[0])

    def logger(self) -> SlatePscores:
        """The logging policy's propensities of the shown slates, every form."""
        return SlatePscores.from_slate_probs(self.pi_b, self.action)

    def true_value(self, target: np.ndarray) -> float:
        """A target's true value on the logged pages: mean_i Σ_s π(s | x_i) E[clicks | x_i, s].

        Args:
            target: (n, S) the target's probability of every slate on each logged page.
        """
        if target.shape != self.slate_value.shape:
            raise ValueError(f"target has shape {target.shape}, expected {self.slate_value.shape} (pages, slates)")
        return float(np.einsum("ns,ns->", target, self.slate_value) / self.n_pages)


def estimate_slate_all(reward: np.ndarray, action: np.ndarray, logger: SlatePscores, target: SlatePscores,
                       q_hat: np.ndarray | None = None, *, pi_logging: str | None = None, alpha: float = 0.05,
                       ci: str = "normal", n_boot: int = 200, seed: int | None = None,
                       clip_pscore: bool = False) -> dict[str, Estimate]:
    """Every slate estimator by name: ``sips``, ``iips``, ``rips``; ``cascade_dr`` when ``q_hat``
    (n, L, K) is given; ``pseudo_inverse`` when ``pi_logging`` names the logger's form
    (``"product"`` or ``"uniform"``, see the module docstring)."""
    kw = {"alpha": alpha, "ci": ci, "n_boot": n_boot, "seed": seed, "clip_pscore": clip_pscore}
    out = {"sips": sips(reward, logger.joint, target.joint, **kw),
           "iips": iips(reward, logger.marginal, target.marginal, **kw),
           "rips": rips(reward, logger.cumulative, target.cumulative, **kw)}
    if q_hat is not None:
        out["cascade_dr"] = cascade_dr(reward, action, logger.cumulative, target.conditional, q_hat, **kw)
    if pi_logging == "product":
        out["pseudo_inverse"] = pseudo_inverse(reward, target.marginal, pscore=logger.marginal, **kw)
    elif pi_logging is not None:
        out["pseudo_inverse"] = pseudo_inverse(reward, target.marginal_table, action=action, logging=pi_logging, **kw)
    return out


__all__ = ["SLATE_ESTIMATORS", "PI_LOGGERS", "SlateLogRecord", "SlatePscores", "all_slates", "cascade_dr",
           "cumulative_pscore", "estimate_slate_all", "iips", "plackett_luce_probs", "pseudo_inverse", "rips", "sips"]
