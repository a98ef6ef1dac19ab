"""Click models of a slate page: how clicks on L ordered positions arise from the shown creatives.

A slate shows L distinct candidates at positions 0 (top) … L−1. Candidate k's *attraction* for a
request is the world's true click probability without the ad slot's factor, ``a_k = σ(logit_k + β0)``
(:func:`adsim.response.attraction_prob`; the top slot's click probability of CreativeSelection when
``slot_factors[0] == 1``). Three models, chosen with ``EnvConfig.click_model``:

* ``"pbm"`` — position-based: position l is examined with probability ``e_l``
  (``EnvConfig.slate_examination``), independently of everything else, and an examined creative is
  clicked with its attraction: ``P(click at l) = e_l · a_{s_l}``; up to L clicks per page.
* ``"cascade"`` — the user scans down from the top, clicks the first attractive creative and
  stops: ``P(click at l) = a_{s_l} · Π_{j<l} (1 − a_{s_j})``; at most one click per page.
* ``"dcm"`` — dependent click model: the user scans down, clicks each attractive creative, and after
  a click at position l goes on with probability ``λ_l`` (``EnvConfig.slate_continuation``), stops
  otherwise (an unclicked position never stops the scan): ``P(click at l) = a_{s_l} · Π_{j<l}
  (1 − (1 − λ_j) a_{s_j})``; several clicks per page. The cascade model is the DCM with λ = 0.

The expected reward of a slate is its expected number of clicks, Σ_l P(click at l).

**Oracle (exact).** PBM: the top-L candidates by attraction, the most attractive at the most
examined position (rearrangement inequality). Cascade: the expected reward ``1 − Π_l (1 − a_{s_l})``
does not depend on the order and grows with each attraction, so any order of the top L; the oracle
lists them in descending attraction. DCM with non-increasing λ: swapping the neighbours x (at l) and
y (at l+1) changes the expected clicks by ``S · (a_x − a_y) · (λ_l − λ_{l+1})`` (S ≥ 0 the expected
clicks below them once reached), so descending attraction is the best order of any set; and in
that order the expected clicks do not decrease in any attraction (``∂/∂a_l ∝ 1 − (1 − λ_l) R_{l+1}
>= 0``, R_{l+1} the expected clicks below l, ``(1 − λ_l) R_{l+1} <= 1 − Π_{m>l}(1 − (1 − λ_m) a_m)``
because ``1 − λ_m >= 1 − λ_l`` further down), so the top-L set in descending order is optimal. Ties
among attractions go to the lower candidate index. ``tests/test_slate.py`` checks all three against
brute force over every ordered slate.

**Randomness.** A page's clicks come from per-position uniforms ``u`` (click) and, for the DCM,
``v`` (continuation), drawn from the request's counter-based streams (``adsim.slate``): PBM clicks
at l iff ``u_l < e_l · a_{s_l}``; cascade and DCM click at a reached position iff ``u_l <
a_{s_l}``, and the DCM goes on after a click iff ``v_l < λ_l``.

Everything is batched over any leading shape (…, L) or (…, K); the only Python loops run over the
L positions.
"""

from __future__ import annotations

import numpy as np

from adsim.config import CLICK_MODELS, EnvConfig
from adsim.validation import check_choice


class ClickModel:
    """One click model over L positions (see the module docstring).

    Args:
        name: ``"pbm"``, ``"cascade"`` or ``"dcm"``.
        slate_size: L >= 1.
        examination: (L,) PBM examination probabilities in (0, 1] (``"pbm"`` only).
        continuation: (L,) DCM continuation probabilities in [0, 1], non-increasing (``"dcm"`` only).
    """

    def __init__(self, name: str, slate_size: int, examination=None, continuation=None):
        check_choice("click_model", name, CLICK_MODELS)
        self.name, self.slate_size = name, int(slate_size)
        L = self.slate_size
        if name == "pbm":
            if examination is None or len(examination) != L:
                raise ValueError(f"the pbm click model needs examination of length slate_size == {L}, got {examination!r}")
            self.examination = np.asarray(examination, dtype=np.float64)
            # the oracle's order of positions: most examined first (ties: the upper position)
            self.position_order = np.argsort(-self.examination, kind="stable")
            self.stop = None
        else:
            lam = np.zeros(L) if name == "cascade" else np.asarray(continuation, dtype=np.float64)
            if lam.shape != (L,):
                raise ValueError(f"the dcm click model needs continuation of length slate_size == {L}, "
                                 f"got {continuation!r}")
            if np.any(np.diff(lam) > 0):
                raise ValueError(f"continuation == {lam.tolist()} must be non-increasing (the oracle is exact so)")
            self.continuation = lam
            self.stop = 1.0 - lam  # (L,) probability of stopping after a click at l
            self.examination = None

    @classmethod
    def from_config(cls, config: EnvConfig) -> ClickModel:
        """The click model an env config describes (``click_model``, ``slate_size`` and the derived
        ``slate_examination`` / ``slate_continuation``)."""
        return cls(config.click_model, config.slate_size,
                   examination=config.slate_examination if config.click_model == "pbm" else None,
                   continuation=config.slate_continuation if config.click_model == "dcm" else None)

    def __repr__(self) -> str:
        if self.name == "pbm":
            return f"ClickModel('pbm', examination={self.examination.tolist()})"
        if self.name == "cascade":
            return f"ClickModel('cascade', slate_size={self.slate_size})"
        return f"ClickModel('dcm', continuation={self.continuation.tolist()})"

    # ----------------------------------------------------------------- probabilities
    def position_probs(self, a: np.ndarray) -> np.ndarray:
        """(…, L) the probability of a click at each position of slates whose shown creatives have
        attractions ``a`` (…, L) (position order)."""
        if self.stop is None:
            return a * self.examination
        out = np.empty_like(a)
        reach = None  # probability that the scan reaches position l: 1 at the top
        for l in range(self.slate_size):
            al = a[..., l]
            if reach is None:
                out[..., l] = al
                reach = 1.0 - self.stop[l] * al
            else:
                np.multiply(reach, al, out=out[..., l])
                reach = reach * (1.0 - self.stop[l] * al)
        return out

    def expected_clicks(self, a: np.ndarray) -> np.ndarray:
        """(…) the expected number of clicks of slates with attractions ``a`` (…, L)."""
        return self.position_probs(a).sum(axis=-1)

    def click_table(self, attraction: np.ndarray) -> np.ndarray:
        """(…, K, L) the probability that candidate k is clicked at position l when no position above
        l was clicked: ``e_l · a_k`` (PBM, clicks independent of the rest), ``a_k`` (cascade, DCM:
        an unclicked prefix is always scanned through)."""
        out = np.empty(attraction.shape + (self.slate_size,))
        for l in range(self.slate_size):  # one position at a time: much faster than broadcasting over L
            if self.stop is None:
                np.multiply(attraction, self.examination[l], out=out[..., l])
            else:
                out[..., l] = attraction
        return out

    def likelihood(self, a: np.ndarray, clicks: np.ndarray) -> np.ndarray:
        """(…) the probability of the click vectors ``clicks`` (…, L) bool on slates with attractions
        ``a`` (…, L). Impossible patterns (a click after the cascade's click) have probability 0."""
        c = np.asarray(clicks, dtype=bool)
        if self.stop is None:
            p = a * self.examination
            return np.where(c, p, 1.0 - p).prod(axis=-1)
        L = self.slate_size
        # tail[..., l] = Π_{j>l} (1 − a_j): no click anywhere below l once the scan goes on past it
        tail = np.ones_like(a)
        for l in range(L - 2, -1, -1):
            tail[..., l] = tail[..., l + 1] * (1.0 - a[..., l + 1])
        any_click = c.any(axis=-1)
        last = np.where(any_click, L - 1 - np.argmax(c[..., ::-1], axis=-1), -1)  # last clicked position
        lik = np.where(any_click, 1.0, tail[..., 0] * (1.0 - a[..., 0]))  # no click: every position skipped
        for l in range(L):
            before, at = l < last, l == last
            lam = 1.0 - self.stop[l]
            # above the last click: clicked (and went on) or skipped; at it: clicked, then stopped or
            # went on without another click
            f_before = np.where(c[..., l], a[..., l] * lam, 1.0 - a[..., l])
            f_at = a[..., l] * ((1.0 - lam) + lam * tail[..., l])
            lik = lik * np.where(before, f_before, np.where(at, f_at, 1.0))
        return lik

    def random_clicks(self, attraction: np.ndarray) -> np.ndarray:
        """(…) the expected clicks of a uniformly random ordered slate (every ordered choice of L
        distinct candidates equally likely) on requests with attractions ``attraction`` (…, K): the
        baseline of a random policy, exact.

        Position l's click probability is ``a_{s_l} Π_{j<l} (1 − c_j a_{s_j})`` (``c = stop``; PBM:
        ``e_l a_{s_l}``). Expanding the product, each term is a product of m + 1 attractions of
        distinct uniformly random candidates, whose mean is ``E_{m+1}(a) / C(K, m+1)`` (``E_m`` the
        elementary symmetric polynomials of the K attractions, from their power sums by Newton's
        identities: a loop over positions, not candidates), so
        ``E[P(click at l)] = Σ_{m<=l} (−1)^m E_m(c_0 … c_{l−1}) E_{m+1}(a) / C(K, m+1)``."""
        from math import comb

        a = np.asarray(attraction, dtype=np.float64)
        K, L = a.shape[-1], self.slate_size
        if self.stop is None:
            return self.examination.sum() * a.mean(axis=-1)
        power = [None] + [np.sum(a ** i, axis=-1) for i in range(1, L + 1)]  # p_i = Σ_k a_k^i
        e = [np.ones(a.shape[:-1])]  # E_0 … E_L of the attractions
        for m in range(1, L + 1):
            e.append(sum((-1) ** (i - 1) * e[m - i] * power[i] for i in range(1, m + 1)) / m)
        total = np.zeros(a.shape[:-1])
        sig = [1.0]  # E_m of the stop probabilities above position l
        for l in range(L):
            total = total + sum((-1) ** m * sig[m] * e[m + 1] / comb(K, m + 1) for m in range(l + 1))
            c = float(self.stop[l])
            sig = [1.0] + [sig[m] + c * sig[m - 1] for m in range(1, len(sig))] + [c * sig[-1]]
        return total

    # ----------------------------------------------------------------- simulation and oracle
    def simulate(self, a: np.ndarray, u: np.ndarray, v: np.ndarray | None = None) -> np.ndarray:
        """(…, L) bool clicks of slates with attractions ``a`` (…, L), from click uniforms ``u`` (…, L)
        and, for the DCM, continuation uniforms ``v`` (…, L)."""
        if self.stop is None:
            return u < a * self.examination
        clicks = np.empty(a.shape, dtype=bool)
        reach = np.ones(a.shape[:-1], dtype=bool)
        for l in range(self.slate_size):
            click = reach & (u[..., l] < a[..., l])
            clicks[..., l] = click
            if self.name == "cascade":
                reach &= ~click
            elif self.stop[l] > 0.0:
                reach &= ~(click & (v[..., l] >= self.continuation[l]))
        return clicks

    def oracle(self, attraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The expected-clicks maximising slate of every request and its expected clicks.

        Args:
            attraction: (…, K) candidates' attractions.

        Returns:
            ``(slate, expected)``: (…, L) int64 candidate per position, (…) float64 expected clicks
            (computed by :meth:`expected_clicks` of the slate's attractions, exactly as a shown
            slate's: the oracle's own regret is 0.0).
        """
        L = self.slate_size
        masked = attraction.copy()
        top = np.empty(attraction.shape[:-1] + (L,), dtype=np.int64)
        for i in range(L):  # the i-th most attractive remaining candidate (argmax: the lowest index on ties)
            k = masked.argmax(axis=-1)
            top[..., i] = k
            np.put_along_axis(masked, k[..., None], -1.0, axis=-1)
        if self.stop is None and np.any(self.position_order != np.arange(L)):
            slate = np.empty_like(top)
            slate[..., self.position_order] = top
        else:
            slate = top
        expected = self.expected_clicks(np.take_along_axis(attraction, slate, axis=-1))
        return slate, expected


__all__ = ["ClickModel"]
