"""Position auctions of one ad request: mechanisms, outcomes, hindsight bids and the regret decomposition.

A request is an auction among M advertisers — ours and M − 1 competitors — for L ad slots whose
exposure ``e_0 >= e_1 >= … >= e_{L−1}`` (the PBM examination ``EnvConfig.slate_examination``)
multiplies a shown creative's click probability: creative k at slot l is clicked with the *true CTR*
``c_kl = a_k · e_l`` (``a_k`` its attraction, :func:`adsim.response.attraction_prob`).

**Scores and mechanisms.** Every ad is ranked by a score; the highest score gets slot 0.

* ``"second_price"`` (generalised second price by bid): score = bid; the winner of slot l pays the
  next score below it (or the reserve, if higher).
* ``"gsp"`` (generalised second price with quality score): score = bid × pCTR; the winner of slot l
  pays per click the next score below it divided by its own pCTR, ``max(d_next / q, reserve)``.
  Our pCTR q is the platform's estimate (the observation's ``ctr_estimate``), so a creative the
  platform rates higher wins the same slot at a lower price. Charged per click only.
* ``"first_price"``: score = bid; the winner pays its own bid.

``pricing`` is the unit of bids and of payment: ``"cpc"`` — bids are per click and the price is
paid only when the ad is clicked; ``"cpm"`` — bids are per impression (not per mille) and the price
is paid whenever the ad wins a slot. A *reserve price* r (same unit) is a floor: an ad enters only
if its bid is at least r, and never pays less than r. Ties between our score and a competitor's go
to our ad (so a bid equal to a threshold attains it; every threshold is attained, no supremum).

**Competition.** Only the competitors' top-L scores ``d_0 >= … >= d_{L−1}`` (``competition``,
(…, L); 0 where fewer than L competitors are left) matter to our outcome. From them, the minimum bid
of our creative k for slot l is its *threshold* ``t_kl = max(d_l / q_k, r)`` (gsp) or
``max(d_l, r)`` (the others), non-increasing in l. A bid b (after the budget rule of the env) wins
slot ``l(b) = #{l : t_kl > b}`` when that is < L and loses otherwise; the price is ``t_{k,l(b)}``
(second price, gsp) or b (first price). :meth:`Auction.outcome` scores any (creative, bid) so.

**Surplus.** With the true value of a click ``w`` (conversion value × true conversion probability),
the expected surplus of winning slot l at price p is ``c_kl (w − p)`` (cpc) or ``c_kl w − p``
(cpm); losing is worth 0. A bid above the budget left R cannot be used (the env caps it and says
so), so every hindsight quantity is taken over the slots with ``t_kl <= R``.

**Hindsight.** For each creative, the best bid on the realised competition is the threshold of its
best slot (the cheapest bid that gets it: the price does not depend on the bid within a slot under
second price, and grows with it under first price), or 0 when no slot is profitable:
``S*_k = max(0, max_{l : t_kl <= R} S_kl(t_kl))``, ``b*_k`` its threshold. The oracle shows
``argmax_k S*_k`` (the first on ties) at its best bid: ``S* = max_k S*_k``.

**Regret decomposition** (exact, per request, in expected surplus on the realised competition; after
AuctionGym, Jeunen et al. 2022, whose four kinds of regret are here made additive). Our action
(k, b) has expected surplus ``S(k, b)``, ``b`` being the bid used (capped at R). Let ``b̂_k`` be the
*believed-best bid*: the hindsight best bid computed with the pCTR in place of the true CTR
(``q_k e_l`` for ``c_kl``; everything else true), i.e. what a bidder who knew the competition and
its value but trusted the platform's estimate would bid.

* **total** ``= S* − S(k, b) >= 0``;
* **allocation** ``= S* − S*_k >= 0``: the cost of the creative (the best bid of the best creative
  against the best bid of the chosen one);
* the **bidding regret** ``B = S*_k − S(k, b) >= 0`` splits into
* **estimation** ``= min(B, S*_k − S(k, b̂_k)) >= 0``: the part of the bidding loss that trusting
  the pCTR accounts for (a bidder bidding ``b̂_k`` loses exactly ``S*_k − S(k, b̂_k)``). Under cpc
  the surplus of every slot scales with the CTR, so ``b̂_k = b*_k`` and estimation regret is 0; under
  cpm the pCTR sets the value of an impression, and an over- or underestimate moves the bid;
* **overbidding** ``= (B − estimation) · [b > b*_k]`` and **underbidding**
  ``= (B − estimation) · [b < b*_k]``: the rest, by the side of the hindsight best bid the bid lies
  on (a bid equal to ``b*_k`` has B = 0).

So ``allocation + estimation + overbidding + underbidding = total`` (tested to 1e-12), each >= 0.

Everything is batched over the leading axes (requests); the only Python loops run over L slots.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from adsim.validation import check_choice, check_float

MECHANISMS = ("second_price", "gsp", "first_price")
PRICINGS = ("cpc", "cpm")


class AuctionTruth(NamedTuple):
    """What decides the outcome of any (creative, bid) of a batch of requests (arrays, leading shape (N,))."""

    thresholds: np.ndarray  # (N, K, L) minimum bid of creative k for slot l (reserve included)
    ctr: np.ndarray  # (N, K, L) true CTR of creative k at slot l
    pctr: np.ndarray  # (N, K) the platform's CTR estimate (the quality score of gsp)
    value_per_click: np.ndarray  # (N,) true value of a click (conversion value × P(conversion | click))
    budget: np.ndarray  # (N,) budget left (inf: unlimited)

    @classmethod
    def from_info(cls, info: dict) -> AuctionTruth:
        """The truth an auction env's ``info`` carries (its keys ``thresholds``, ``ctr``,
        ``ctr_estimate``, ``value_per_click``, ``budget_remaining``)."""
        return cls(info["thresholds"], info["ctr"], info["ctr_estimate"], info["value_per_click"],
                   info["budget_remaining"])


class Outcome(NamedTuple):
    """Expected outcome of one (creative, bid) per request on the realised competition."""

    bid: np.ndarray  # (N,) the bid used: min(bid, budget left)
    won: np.ndarray  # (N,) bool
    slot: np.ndarray  # (N,) int64 slot won, −1 when lost
    price: np.ndarray  # (N,) price per unit (per click or per impression), 0 when lost
    ctr: np.ndarray  # (N,) true CTR of the shown creative at its slot, 0 when lost
    value: np.ndarray  # (N,) expected value: ctr · value_per_click
    cost: np.ndarray  # (N,) expected payment: ctr · price (cpc) or price (cpm)
    surplus: np.ndarray  # (N,) value − cost


class Regret(NamedTuple):
    """The regret of an action and its decomposition (see the module docstring), (N,) each."""

    total: np.ndarray
    allocation: np.ndarray
    estimation: np.ndarray
    overbid: np.ndarray
    underbid: np.ndarray


class Hindsight(NamedTuple):
    """Best bids on the realised competition (module docstring), per creative and for the oracle."""

    best_bid: np.ndarray  # (N, K) b*_k
    best_surplus: np.ndarray  # (N, K) S*_k
    believed_bid: np.ndarray  # (N, K) b̂_k (pCTR in place of the true CTR)
    oracle_creative: np.ndarray  # (N,) int64
    oracle_bid: np.ndarray  # (N,)
    oracle_surplus: np.ndarray  # (N,) S*


def _pick(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[i, idx[i]]`` of an (N, m, …) array for every row i: (N, …) (one flat gather when 2-D)."""
    n, m = a.shape[:2]
    flat = idx + np.arange(n) * m
    if a.ndim == 2:
        return a.reshape(-1).take(flat)
    return a.reshape((n * m,) + a.shape[2:]).take(flat, axis=0)


def top_scores(scores: np.ndarray, n_slots: int) -> np.ndarray:
    """(…, L) the L highest of ``scores`` (…, C) in descending order, padded with 0 when C < L."""
    C = scores.shape[-1]
    top = np.sort(scores, axis=-1)[..., ::-1][..., :n_slots]
    if C < n_slots:
        top = np.concatenate([top, np.zeros(scores.shape[:-1] + (n_slots - C,))], axis=-1)
    return np.ascontiguousarray(top)


class Auction:
    """One auction rule over L slots (see the module docstring).

    Args:
        mechanism: ``"second_price"``, ``"gsp"`` or ``"first_price"``.
        pricing: ``"cpc"`` or ``"cpm"`` (gsp: cpc only).
        reserve: reserve price r >= 0, in the unit of ``pricing``.
        exposure: (L,) each slot's exposure, in (0, 1] and non-increasing.
    """

    def __init__(self, mechanism: str = "second_price", pricing: str = "cpc", reserve: float = 0.0,
                 exposure=(1.0, 0.75, 0.55)):
        check_choice("mechanism", mechanism, MECHANISMS)
        check_choice("pricing", pricing, PRICINGS)
        if mechanism == "gsp" and pricing != "cpc":
            raise ValueError(f"mechanism 'gsp' ranks per-click bids by pCTR: pricing must be 'cpc', got {pricing!r}")
        check_float("reserve_price", reserve, 0.0, 1e12)
        e = np.asarray(exposure, dtype=np.float64)
        if e.ndim != 1 or e.size < 1 or np.any(e <= 0) or np.any(e > 1):
            raise ValueError(f"exposure == {e.tolist()}, must be L >= 1 numbers in (0, 1]")
        if np.any(np.diff(e) > 0):
            raise ValueError(f"exposure == {e.tolist()}, must be non-increasing: a higher slot is never less "
                             f"exposed in a position auction (set slot_factors or examination so)")
        self.mechanism, self.pricing, self.reserve = mechanism, pricing, float(reserve)
        self.exposure = e
        self.n_slots = e.size

    @classmethod
    def from_config(cls, config) -> Auction:
        """The auction an ``EnvConfig`` describes (``mechanism``, ``pricing``, ``reserve_price``,
        ``slate_size`` slots exposed by ``slate_examination``)."""
        return cls(config.mechanism, config.pricing, config.reserve_price, config.slate_examination)

    def __repr__(self) -> str:
        return (f"Auction({self.mechanism!r}, {self.pricing!r}, reserve={self.reserve}, "
                f"exposure={self.exposure.tolist()})")

    # ----------------------------------------------------------------- competition
    def competitor_scores(self, bids: np.ndarray, quality: np.ndarray | None) -> np.ndarray:
        """(…, C) competitors' scores from their per-click bids (…, C) and pCTRs (…, C): the bid
        (second and first price, cpc), bid × pCTR (gsp, and the per-impression bid under cpm)."""
        if self.mechanism == "gsp" or self.pricing == "cpm":
            return bids * quality
        return bids

    def thresholds(self, competition: np.ndarray, pctr: np.ndarray) -> np.ndarray:
        """(N, K, L) minimum bid of creative k for slot l from the top-L competing scores (N, L) and
        our pCTRs (N, K): ``max(d_l / q_k, r)`` (gsp) or ``max(d_l, r)``, broadcast over K."""
        d = competition[:, None, :]
        if self.mechanism == "gsp":  # pCTR 0: d / 0 = inf (never wins) but 0 / 0 (an empty slot) is the reserve
            with np.errstate(divide="ignore", invalid="ignore"):
                t = d / np.asarray(pctr, dtype=np.float64)[:, :, None]
            return np.fmax(t, self.reserve, out=t)
        t = np.broadcast_to(d, (competition.shape[0], pctr.shape[1], competition.shape[1]))
        return np.maximum(t, self.reserve)

    # ----------------------------------------------------------------- outcomes
    def outcome(self, truth: AuctionTruth | dict, creative, bid) -> Outcome:
        """Expected outcome of showing ``creative`` (N,) int with ``bid`` (N,) on each request.

        ``truth`` is an :class:`AuctionTruth` or an auction env's ``info`` (batched). The bid is
        capped at the budget left, as the env does."""
        if isinstance(truth, dict):
            truth = AuctionTruth.from_info(truth)
        k = np.asarray(creative, dtype=np.int64)
        b = np.minimum(np.asarray(bid, dtype=np.float64), truth.budget)
        return self._score(_pick(truth.thresholds, k), _pick(truth.ctr, k), truth.value_per_click, b)

    def _score(self, t: np.ndarray, c: np.ndarray, w: np.ndarray, b: np.ndarray) -> Outcome:
        """Outcome of bids ``b`` (N,) against thresholds ``t`` and CTRs ``c`` (N, L), click values ``w``."""
        L = self.n_slots
        slot = np.zeros(b.shape, dtype=np.int64)
        for l in range(L):
            slot += t[:, l] > b
        won = slot < L
        at = np.minimum(slot, L - 1)
        if self.mechanism == "first_price":
            price = np.where(won, b, 0.0)
        else:
            price = np.where(won, _pick(t, at), 0.0)
        ctr = np.where(won, _pick(c, at), 0.0)
        value = ctr * w
        if self.pricing == "cpc":  # the surplus as slot_surplus computes it: c (w − p), c w − p
            cost, surplus = ctr * price, ctr * (w - price)
        else:
            cost, surplus = price, value - price
        return Outcome(b, won, np.where(won, slot, -1), price, ctr, value, cost, surplus)

    def slot_surplus(self, truth: AuctionTruth, ctr: np.ndarray | None = None) -> np.ndarray:
        """(N, K, L) expected surplus of winning slot l with creative k at its threshold, −inf where
        the threshold exceeds the budget left; ``ctr`` (N, K, L) replaces the true CTR if given."""
        c = truth.ctr if ctr is None else ctr
        t, w = truth.thresholds, truth.value_per_click[:, None, None]
        s = c * (w - t) if self.pricing == "cpc" else c * w - t
        budget = truth.budget
        if np.isfinite(budget).any():
            s[t > budget[:, None, None]] = -np.inf
        return s

    def _best(self, truth: AuctionTruth, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per creative, the best surplus over its slots and losing (0), and the bid attaining it
        (the first, highest slot on ties: ``argmax``'s rule, by a loop over the L slots)."""
        t = truth.thresholds
        best, bid = s[..., 0].copy(), t[..., 0].copy()
        for l in range(1, s.shape[-1]):
            better = s[..., l] > best
            np.copyto(best, s[..., l], where=better)
            np.copyto(bid, t[..., l], where=better)
        profitable = best > 0.0
        best[~profitable] = 0.0
        bid[~profitable] = 0.0
        return best, bid

    def hindsight(self, truth: AuctionTruth) -> Hindsight:
        """Best and believed-best bids of every creative, and the oracle (module docstring)."""
        best_surplus, best_bid = self._best(truth, self.slot_surplus(truth))
        _, believed_bid = self._best(truth, self.slot_surplus(truth, truth.pctr[:, :, None] * self.exposure))
        k = best_surplus.argmax(axis=1)
        return Hindsight(best_bid, best_surplus, believed_bid, k, _pick(best_bid, k), _pick(best_surplus, k))

    def regret(self, truth: AuctionTruth | dict, creative, bid, hindsight: Hindsight | None = None,
               taken: Outcome | None = None) -> Regret:
        """Regret of (``creative``, ``bid``) (N,) and its exact decomposition (module docstring);
        ``hindsight`` and ``taken`` (the action's :meth:`outcome`) may be passed computed already."""
        if isinstance(truth, dict):
            truth = AuctionTruth.from_info(truth)
        h = self.hindsight(truth) if hindsight is None else hindsight
        k = np.asarray(creative, dtype=np.int64)
        taken = self.outcome(truth, k, bid) if taken is None else taken
        best_k, bstar = _pick(h.best_surplus, k), _pick(h.best_bid, k)
        believed = self.outcome(truth, k, _pick(h.believed_bid, k))
        total = h.oracle_surplus - taken.surplus
        allocation = h.oracle_surplus - best_k
        bidding = best_k - taken.surplus
        estimation = np.minimum(bidding, best_k - believed.surplus)
        rest = bidding - estimation
        return Regret(total, allocation, estimation, np.where(taken.bid > bstar, rest, 0.0),
                      np.where(taken.bid < bstar, rest, 0.0))


__all__ = ["Auction", "AuctionTruth", "Hindsight", "MECHANISMS", "Outcome", "PRICINGS", "Regret", "top_scores"]
