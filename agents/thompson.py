"""Beta-Bernoulli Thompson sampling, and the hybrid bandit with the CTR estimate as its prior.

Thompson sampling shows arm k with the posterior probability that k is the best arm.
:class:`BetaThompson` computes that probability by numerical integration over the arms' Beta
posteriors (``agents.quadrature``: no random draws, absolute error below 1e-4, tested); the
hybrid, whose every request has its own posteriors, estimates it from ``samples`` posterior draws
per distinct request (from a stream fixed by the policy's seed and update count, so asking twice
gives the same answer). Either way ``select`` draws the action from exactly those probabilities,
so the logged propensities are the ones the policy acted on — except with ``sampling="posterior"``
(the hybrid's default; ``BetaThompson``'s option), where ``select`` takes the largest of one
posterior draw per arm (exact Thompson sampling: fast one request at a time, and for the hybrid's
distinct posteriors of every request) and ``probabilities`` are the quadrature's value of that
selection distribution (within 1e-4).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from itertools import accumulate, compress
from operator import ge
from typing import Any

import numpy as np

from adsim.validation import check_choice, check_float, check_int
from agents.arm_tables import (
    ArmPolicy,
    CampaignIndex,
    PosteriorDraws,
    check_feedback,
    check_obs,
    check_unit_rewards,
)
from agents import compiled as c
from agents.base import UNIFORM_BLOCK, Obs, Policy
from agents.quadrature import NODES, beta_argmax

SAMPLING = ("propensities", "posterior")
"""How :class:`BetaThompson` selects: from its computed propensities, or by posterior draws."""
ESTIMATE_FLOOR = 1e-4
"""The hybrid's prior mean is the estimate kept inside [1e-4, 1 − 1e-4] so both Beta parameters are > 0."""


def argmax_frequencies(draws: np.ndarray) -> np.ndarray:
    """(U, K) share of the M draws (U, M, K) in which each arm is the largest."""
    u, m, k = draws.shape
    best = draws.argmax(axis=2) + (np.arange(u) * k)[:, None]
    return np.bincount(best.ravel(), minlength=u * k).reshape(u, k) / m


class BetaThompson(ArmPolicy):
    """Beta-Bernoulli Thompson sampling per campaign and arm (rewards in [0, 1]).

    Posterior of arm k: ``Beta(alpha0 + S_k, beta0 + n_k − S_k)`` with ``S_k`` the summed rewards
    and ``n_k`` the impressions. The probability that arm k's posterior draw is the largest is
    integrated numerically (``agents.quadrature.beta_argmax``, ``nodes`` grid points per arm;
    absolute error below ``agents.quadrature.ERROR_BOUND`` = 1e-4 at the default, tested).

    ``sampling`` says how ``select`` acts on it:

    * ``"propensities"`` (default): ``select`` draws the action from exactly those probabilities
      (inverse CDF with one uniform), so the logged propensity is the one acted on; every decision
      after an update computes the integral (about a millisecond for 10 arms).
    * ``"posterior"``: ``select`` draws one sample from each arm's posterior and shows the largest
      (the textbook algorithm, as OBP's ``BernoulliTS``): a few microseconds per decision, and
      ``probabilities`` is computed only when asked. The distribution ``select`` draws from is
      then the exact Thompson distribution, and ``probabilities`` is within the quadrature's
      1e-4 of it (tested against the frequencies of ``select``) rather than equal to it.

    Args:
        alpha0: prior pseudo-clicks, in (0, 1e6].
        beta0: prior pseudo-non-clicks, in (0, 1e6].
        nodes: quadrature grid points per arm, in [8, 1024].
        sampling: "propensities" or "posterior" (above).
    """

    name = "thompson"

    def __init__(self, alpha0: float = 1.0, beta0: float = 1.0, nodes: int = NODES, sampling: str = "propensities"):
        check_float("alpha0", alpha0, 0.0, 1e6, open_low=True)
        check_float("beta0", beta0, 0.0, 1e6, open_low=True)
        check_int("nodes", nodes, 8, 1024)
        check_choice("sampling", sampling, SAMPLING)
        self.alpha0, self.beta0, self.nodes, self.sampling = float(alpha0), float(beta0), nodes, sampling

    # ------------------------------------------------------------------ sampling="posterior"
    def _select_batch(self, obs: Obs, info: dict[str, Any] | None) -> np.ndarray:
        """(N,) actions of a batch: drawn from ``probabilities`` (``sampling="propensities"``), or the arm
        with the largest posterior draw (``sampling="posterior"``, see :meth:`_posterior_select`)."""
        if self.sampling == "propensities":
            return super()._select_batch(obs, info)
        check_obs(obs, n_actions=self.n_actions)
        a, b = self.posterior(self.slots(obs))
        return self._posterior_select(a, b, self.uniforms_matrix(a.shape[0]))

    def uniforms_matrix(self, n: int) -> np.ndarray:
        """(n, K) uniforms of a group-major batch, group g's rows from its own generator."""
        if self.n_groups == 1:
            return self.rng.random((n, self.n_actions))
        B = self.groups.group_size(n)
        return np.concatenate([r.random((B, self.n_actions)) for r in self.rngs])

    @staticmethod
    def _posterior_select(a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
        """(N,) argmax over arms of the posterior draws ``X = F⁻¹(u)`` (inverse Beta CDFs at the
        uniforms ``u``, (N, K)): exact Thompson sampling draws; the first arm if tied."""
        from scipy.special import betaincinv  # imported on first use: importing agents stays light

        return betaincinv(a, b, u).argmax(axis=1)

    def _one_select(self, slot: int) -> int:
        """The action of one request (``ArmPolicy.select``'s lean path): drawn from the propensities
        (``sampling="propensities"``), or :meth:`_posterior_select` of one request, with the same K
        uniforms and the same result, evaluating few inverse CDFs. The row keeps thresholds θ_1 < … < θ_m (quantiles of its leading
        arm's posterior, ``_LEVELS``) and every arm's CDF at them, ``F_k(θ_i)`` (brought up to date
        for an arm when an update changes it, see :class:`_PosteriorRow`): arm k's draw is above θ_i
        exactly when ``u_k > F_k(θ_i)``. The highest threshold some arm's draw surely exceeds rules
        out every arm surely below it; when one arm is left it has the largest draw, otherwise only
        the arms left have their inverse CDFs evaluated. A margin of 1e-9 on the comparisons absorbs
        the CDFs' rounding (and the updates' error, below 1e-11, tested)."""
        if self.sampling != "posterior":
            return super()._one_select(slot)
        row = self._one_rows.get(slot)
        if row is None:
            row = self._one_row(slot)
        cache = row.cache
        if cache is None:
            cache = row.cache = _posterior_row(self, row)
        if cache.packed:  # the compiled twin of what follows (agents.compiled), on the packed row
            pos = self._u_taken
            arm = cache.select(cache.S, self._u_arr, pos)
            if arm < 0:  # the block is used up (or another kind is live)
                arm, pos = cache.select(cache.S, self.uniform_array(), 0), 0
            self._u_taken = pos + self.n_actions
            return arm
        K = self.n_actions
        block = self._u_block
        if len(block) >= K:  # the next K uniforms of the stream, in order (Policy.uniforms_one, inline)
            u = block[:-K - 1:-1]
            del block[-K:]
            self._u_taken += K
        else:
            u = self.uniforms_one(K)
        F, lead = cache.F, cache.lead
        top = bisect_left(F[lead], u[lead] - _MARGIN)  # the leader's draw is surely above θ_top
        if top:  # the other arms not surely below θ_top (the leader's column entry is +inf)
            rivals = list(compress(range(K), map(ge, u, cache.cols[top - 1])))
            if not rivals:
                return lead
            best = top
            for k in rivals:  # the highest threshold any of them surely exceeds
                j = bisect_left(F[k], u[k] - _MARGIN)
                if j > best:
                    best = j
            rivals.append(lead)
            if best > top:
                rivals = [k for k in rivals if u[k] >= F[k][best - 1] - _MARGIN]
                if len(rivals) == 1:
                    return rivals[0]
            rivals.sort()
        else:  # the leader's draw is below every threshold: prune by the highest one any arm surely exceeds
            best = 0
            for k in range(K):
                j = bisect_left(F[k], u[k] - _MARGIN)
                if j > best:
                    best = j
            if best:
                rivals = [k for k in range(K) if u[k] >= F[k][best - 1] - _MARGIN]
                if len(rivals) == 1:
                    return rivals[0]
            else:
                rivals = list(range(K))
        a, b = cache.a, cache.b
        x = _special.betaincinv([a[k] for k in rivals], [b[k] for k in rivals], [u[k] for k in rivals]).tolist()
        return rivals[x.index(max(x))]  # the first of equal draws, as argmax

    def _one_update(self, row, k: int, reward: float, n: float, s: float) -> None:
        """Bring the row's :class:`_PosteriorRow` up to date after arm ``k``'s update by ``reward``."""
        cache = row.cache
        if cache is None:
            return
        if cache.packed:
            status = cache.update(cache.S, k, reward, n, s)
            if status:
                cache.slow_update(k, status)
            return
        A, B = cache.a, cache.b
        a0, b0 = A[k], B[k]
        A[k] = a = self.alpha0 + s  # posterior()'s operations, in the same order (as _PosteriorRow._params)
        B[k] = b = self.beta0 + n - s
        mu = cache.mu
        mu[k] = m = a / (a + b)
        lead = cache.lead
        steps = cache.steps[k] + 1
        F, h = cache.F[k], cache.h[k]
        if steps < _EXACT_EVERY and (reward == 1.0 or reward == 0.0):  # the recurrences, in place
            # (the CDFs nondecreasing, as the exact CDF: rounding could break it)
            if reward == 1.0:  # a → a + 1: I −= h / a, h ·= x (a + b) / a
                d, g, x = -1.0 / a0, (a0 + b0) / a0, cache.theta
            else:  # b → b + 1: I += h / b, h ·= (1 − x) (a + b) / b
                d, g, x = 1.0 / b0, (a0 + b0) / b0, cache.theta1
            prev = -math.inf
            for i in range(len(F)):
                t = h[i]
                f = F[i] + t * d
                F[i] = prev = f if f > prev else prev
                h[i] = t * x[i] * g
        else:
            steps = 0
            F[:] = accumulate(_special.betainc(a, b, cache.theta).tolist(), max)
            h[:] = cache.terms(a, b)
        cache.steps[k] = steps
        if k != lead:
            if m <= mu[lead]:
                for col, f in zip(cache.cols, F):
                    col[k] = f - _MARGIN
                return
            # k leads now: the thresholds stay (the pruning is exact whichever arm leads it), the
            # old leader's column gets its CDFs and k's the +inf
            for col, f in zip(cache.cols, cache.F[lead]):
                col[lead] = f - _MARGIN
                col[k] = math.inf
            cache.lead = k
        if F[0] > 0.05 or F[-1] < 0.95 or (F[0] < _NARROW and F[-1] > 1.0 - _NARROW):
            cache._thresholds()  # the leader is off its thresholds, or they are far in its tails

    def _check_rewards(self, rewards: np.ndarray) -> None:
        check_unit_rewards(rewards, "thompson")

    def posterior(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(U, K) Beta parameters (alpha, beta) of the campaigns' arms."""
        s, n = self.sums[slots], self.counts[slots]
        return self.alpha0 + s, self.beta0 + n - s

    def _slot_probabilities(self, slots: np.ndarray) -> np.ndarray:
        """Cached per campaign row: recomputed only for rows whose counts or sums changed since
        (each row's integral is independent of the others', so this changes no number)."""
        rows = self.counts.shape[0]
        cached_p, cached_counts, cached_sums = cached = self._cached
        if cached_p.shape[0] < rows:
            extra = rows - cached_p.shape[0]
            cached[:] = cached_p, cached_counts, cached_sums = (
                np.concatenate([cached_p, np.zeros((extra, self.n_actions))]),
                np.concatenate([cached_counts, np.full((extra, self.n_actions), np.nan)]),
                np.concatenate([cached_sums, np.full((extra, self.n_actions), np.nan)]))
        fresh = ((cached_counts[slots] == self.counts[slots]).all(axis=1)
                 & (cached_sums[slots] == self.sums[slots]).all(axis=1))
        if not fresh.all():
            stale = np.unique(slots[~fresh])
            a, b = self.posterior(stale)
            cached_p[stale] = beta_argmax(a, b, self.nodes)
            cached_counts[stale] = self.counts[stale]
            cached_sums[stale] = self.sums[stale]
        return cached_p[slots]

    def reset(self, n_actions: int, seed=None, group_seeds=None) -> None:
        super().reset(n_actions, seed, group_seeds)
        if self.sampling == "posterior":  # K uniforms a decision: blocks of K · UNIFORM_BLOCK (the same stream)
            self._u_size = UNIFORM_BLOCK * self.n_actions
        self._cached = [np.zeros((0, self.n_actions)), np.zeros((0, self.n_actions)), np.zeros((0, self.n_actions))]
        """(rows, K) propensities last computed per campaign row, and the counts and sums they are of
        (one attribute: a policy with more than 30 slows every attribute access of its one-request path)."""


_special = None
"""scipy.special, once a posterior row has imported it."""
_MARGIN = 1e-9
"""Uniforms this close to an arm's CDF at a threshold count as undecided (the CDFs' rounding, and
the error of the recurrence below, are far smaller)."""
_LEVELS = (0.02, 0.15, 0.4, 0.6, 0.85, 0.98)
"""The thresholds' quantile levels in the leading arm's posterior."""
_NARROW = 0.01
"""The thresholds are re-chosen when the leader's CDF is below this at the lowest and above 1 − this
at the highest (its posterior has narrowed since: they would rule out few arms)."""
_EXACT_EVERY = 64
"""An arm's CDFs at the thresholds are recomputed by ``betainc`` after this many recurrence steps."""


class _PosteriorRow:
    """A campaign row's Beta posteriors for ``sampling="posterior"`` one request at a time: the
    parameters, the thresholds and each arm's CDF at them (``F[k][i]``, and by threshold ``cols[i][k]
    = F[k][i] − margin``, the leader's +inf), kept up to date by each update of the row (the
    thresholds are re-chosen when the leading arm changes or its posterior has moved away from them).

    An update by a click or a non-click moves one parameter by one, and the CDFs follow from the
    recurrences of the regularised incomplete beta function (DLMF 8.17.20–21),
    ``I_x(a+1, b) = I_x(a, b) − x^a (1−x)^b / (a B(a, b))`` and
    ``I_x(a, b+1) = I_x(a, b) + x^a (1−x)^b / (b B(a, b))``, whose terms ``h = x^a (1−x)^b / B(a, b)``
    (``h``, per arm and threshold) follow by ``h(a+1, b) = h · x (a+b)/a`` and
    ``h(a, b+1) = h · (1−x)(a+b)/b``: a few multiplications instead of a ``betainc`` call. Every
    ``_EXACT_EVERY`` (64) steps of an arm, and for any other reward, its CDFs are recomputed by
    ``betainc`` and its terms from ``math.lgamma``; the recurrence's error stays below 1e-11 (tested), far inside the
    margin, so the CDFs only decide which inverse CDFs are evaluated, never the action."""

    __slots__ = ("a", "b", "theta", "theta1", "lx", "l1x", "F", "h", "cols", "mu", "lead", "steps", "packed")

    def __init__(self, policy: BetaThompson, row):
        self.packed = False
        """Whether the row is :class:`_PackedPosteriorRow` (the compiled kernels' form; a slot, read fast)."""
        K = policy.n_actions
        self.a, self.b, self.mu, self.steps = [0.0] * K, [0.0] * K, [0.0] * K, [0] * K
        for k in range(K):
            self._params(policy, row, k)
        self._thresholds()

    def _params(self, policy: BetaThompson, row, k: int) -> None:
        n, s = row.counts[k], row.sums[k]
        a, b = policy.alpha0 + s, policy.beta0 + n - s  # posterior()'s operations, in the same order
        self.a[k], self.b[k] = a, b
        self.mu[k] = a / (a + b)

    def _thresholds(self) -> None:
        self.lead, self.theta, self.theta1, self.lx, self.l1x, F = _threshold_tables(self.a, self.b, self.mu)
        self.F = F.tolist()
        self.h = [self.terms(a, b) for a, b in zip(self.a, self.b)]
        self.steps = [0] * len(self.a)
        cols = (F - _MARGIN).T
        cols[:, self.lead] = math.inf
        self.cols = cols.tolist()

    def terms(self, a: float, b: float) -> list[float]:
        """``x^a (1 − x)^b / B(a, b)`` at the thresholds x: the recurrences' terms (times a or b)."""
        c = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)  # −log B(a, b)
        exp = math.exp
        return [exp(a * u + b * v + c) for u, v in zip(self.lx, self.l1x)]


def _threshold_tables(a: list[float], b: list[float], mu: list[float]):
    """The leading arm (the first of the largest means), the thresholds (``_LEVELS`` quantiles of its
    posterior, distinct) θ, 1 − θ, log θ and log(1 − θ) as lists, and every arm's CDFs at them (K, m)
    (rows made nondecreasing)."""
    global _special
    if _special is None:  # imported on first use: importing agents stays light
        import scipy.special as _special
    lead = mu.index(max(mu))
    a, b = np.array(a), np.array(b)
    theta = np.unique(_special.betaincinv(a[lead], b[lead], _LEVELS))
    F = np.maximum.accumulate(_special.betainc(a[:, None], b[:, None], theta), axis=1)  # (K, m)
    theta = theta.tolist()
    lx = [math.log(t) if t > 0.0 else -math.inf for t in theta]
    l1x = [math.log1p(-t) if t < 1.0 else -math.inf for t in theta]
    return lead, theta, [1.0 - t for t in theta], lx, l1x, F


def _posterior_row(policy: BetaThompson, row):
    """The posterior row of ``sampling="posterior"``'s one-request path: packed for the compiled
    kernels where they are on (numba, ``ADSIM_NUMBA`` not 0; the same decisions and numbers, tested),
    else :class:`_PosteriorRow`."""
    kern = c.kernels()
    if kern is not None and isinstance(policy._rng.bit_generator, np.random.PCG64):
        return _PackedPosteriorRow(policy, row, kern)
    return _PosteriorRow(policy, row)


class _PackedPosteriorRow:
    """:class:`_PosteriorRow` packed in one array ``S`` for the compiled kernels (layout in
    ``agents.compiled``): the same parameters, thresholds, CDFs, terms, steps and leader, brought up
    to date by the same operations (``posterior_update``, and in Python the exact CDFs and the
    thresholds' re-choice). ``F``, ``h``, ``a``, ``b``, ``mu``, ``steps``, ``lead`` and ``cols`` read
    them back as :class:`_PosteriorRow`'s lists."""

    __slots__ = ("S", "theta", "lx", "l1x", "select", "update", "lead_kernel", "packed")

    def __init__(self, policy: BetaThompson, row, kern):
        self.packed = True
        K = policy.n_actions
        self.S = S = np.zeros((K + 2, c.PR_WIDTH))
        self.select, self.update, self.lead_kernel = kern.posterior_select, kern.posterior_update, kern.posterior_lead
        S[K, c.PR_ALPHA0], S[K, c.PR_BETA0] = policy.alpha0, policy.beta0
        S[K + 1, [c.PR_MARGIN, c.PR_EXACT, c.PR_NARROW, c.PR_LOW, c.PR_HIGH]] = _MARGIN, _EXACT_EVERY, _NARROW, 0.05, 0.95
        for k in range(K):
            n, s = row.counts[k], row.sums[k]
            a, b = policy.alpha0 + s, policy.beta0 + n - s  # posterior()'s operations, in the same order
            S[k, c.PR_A], S[k, c.PR_B], S[k, c.PR_MU] = a, b, a / (a + b)
        self._thresholds()

    def _thresholds(self) -> None:
        S = self.S
        K = S.shape[0] - 2
        lead, self.theta, theta1, self.lx, self.l1x, F = _threshold_tables(
            S[:K, c.PR_A].tolist(), S[:K, c.PR_B].tolist(), S[:K, c.PR_MU].tolist())
        m = len(self.theta)
        S[:K, c.PR_F:c.PR_F + m] = F
        S[:K, c.PR_H:c.PR_H + m] = [self.terms(a, b) for a, b in zip(S[:K, c.PR_A].tolist(), S[:K, c.PR_B].tolist())]
        S[:K, c.PR_STEPS] = 0.0
        S[K, c.PR_F:c.PR_F + m] = self.theta
        S[K, c.PR_H:c.PR_H + m] = theta1
        S[K, c.PR_M], S[K, c.PR_LEAD] = m, lead

    terms = _PosteriorRow.terms

    def slow_update(self, k: int, status: int) -> None:
        """What ``posterior_update`` leaves to Python: arm ``k``'s exact CDFs and terms (status 2,
        then the leader's check), the thresholds' re-choice (status 1)."""
        S = self.S
        if status == 2:
            a, b = float(S[k, c.PR_A]), float(S[k, c.PR_B])
            m = len(self.theta)
            S[k, c.PR_F:c.PR_F + m] = list(accumulate(_special.betainc(a, b, self.theta).tolist(), max))
            S[k, c.PR_H:c.PR_H + m] = self.terms(a, b)
            status = self.lead_kernel(S, k)
        if status == 1:
            self._thresholds()

    def _part(self, col: int, width: int | None = None):
        K = self.S.shape[0] - 2
        if width is None:
            return self.S[:K, col].tolist()
        return self.S[:K, col:col + width].tolist()

    @property
    def F(self) -> list[list[float]]:
        return self._part(c.PR_F, len(self.theta))

    @property
    def h(self) -> list[list[float]]:
        return self._part(c.PR_H, len(self.theta))

    @property
    def a(self) -> list[float]:
        return self._part(c.PR_A)

    @property
    def b(self) -> list[float]:
        return self._part(c.PR_B)

    @property
    def mu(self) -> list[float]:
        return self._part(c.PR_MU)

    @property
    def steps(self) -> list[int]:
        return [int(x) for x in self._part(c.PR_STEPS)]

    @property
    def lead(self) -> int:
        return int(self.S[-2, c.PR_LEAD])

    @property
    def cols(self) -> list[list[float]]:
        """:class:`_PosteriorRow`'s threshold table: F − margin by threshold, the leader's +inf."""
        cols = (np.array(self.F) - _MARGIN).T
        cols[:, self.lead] = math.inf
        return cols.tolist()


class HybridThompson(PosteriorDraws, Policy):
    """Thompson sampling per creative with the platform's CTR estimate as the prior
    (the creative-ranking hybrid bandit: a model prior, refined by each creative's own feedback).

    For candidate k of a request the prior is ``Beta(s·e_k, s·(1 − e_k))``, centred on the CTR
    estimate ``e = obs["ctr_estimate"]`` (kept in [1e-4, 1 − 1e-4]) with strength ``s``
    pseudo-impressions; the feedback of *that creative* in that campaign updates it:
    ``Beta(s·e_k + S, s·(1 − e_k) + n − S)``. Statistics are keyed by (campaign, creative id
    vector), so they follow a creative in pool mode (a persistent arm) and in personalised mode
    (where a creative recurs only when the generator proposes it again; otherwise the policy
    samples around the estimate). They sit in a hashed table of ``2**table_bits`` entries;
    creatives sharing an entry would share statistics, which is negligible while the number of
    creatives shown stays well below the table size.

    ``sampling`` says how ``select`` acts, as :class:`BetaThompson`'s:

    * ``"posterior"`` (default): one draw from each candidate's posterior (``Generator.beta``, the
      policy's own stream), the largest shown — exact Thompson sampling, K variates a request;
      ``probabilities`` is then computed only when asked, by quadrature
      (``agents.quadrature.beta_argmax``): within ``ERROR_BOUND`` (1e-4) of the distribution
      ``select`` draws from (tested against its frequencies).
    * ``"propensities"``: ``probabilities`` estimates that distribution from ``samples`` posterior
      draws per distinct request (a stream fixed by the seed and the update count) and ``select``
      draws from exactly the estimate, so the propensity acted on is the one reported; 128 draws
      per candidate are ≈ 1 M Beta variates per batch of 1,024 (≈ 20,000 decisions/s here).

    Args:
        prior_strength: s, pseudo-impressions behind the estimate, in (0, 1e6].
        samples: posterior draws behind each propensity estimate (``sampling="propensities"``), in [16, 65536].
        table_bits: log2 of the statistics table size, in [10, 26].
        sampling: "posterior" or "propensities" (above).
        nodes: quadrature grid points per candidate (``sampling="posterior"``'s ``probabilities``), in [8, 1024].
    """

    name = "hybrid"
    stackable = True

    def __init__(self, prior_strength: float = 1000.0, samples: int = 128, table_bits: int = 20,
                 sampling: str = "posterior", nodes: int = NODES):
        check_float("prior_strength", prior_strength, 0.0, 1e6, open_low=True)
        check_int("samples", samples, 16, 65536)
        check_int("table_bits", table_bits, 10, 26)
        check_choice("sampling", sampling, SAMPLING)
        check_int("nodes", nodes, 8, 1024)
        self.prior_strength, self.samples, self.table_bits = float(prior_strength), samples, table_bits
        self.sampling, self.nodes = sampling, nodes

    def reset(self, n_actions: int, seed=None, group_seeds=None) -> None:
        super().reset(n_actions, seed, group_seeds)
        self._reset_draws()
        self.index = CampaignIndex(self.groups)
        self.counts = np.zeros(self.n_groups << self.table_bits)
        """Impressions per (campaign, creative) table entry (one table per group)."""
        self.sums = np.zeros(self.n_groups << self.table_bits)
        """Summed rewards per table entry."""

    def creative_keys(self, obs: Obs) -> np.ndarray:
        """(N, K) table entries of the candidates (multiplicative hashing of campaign and ids)."""
        n = check_obs(obs, n_actions=self.n_actions)
        rows = self.index.lookup(obs["campaign"])
        slots = rows.astype(np.uint64) if self.n_groups == 1 else np.asarray(self.index.local, dtype=np.uint64)[rows]
        ids = np.asarray(obs["candidates"]).reshape(n, self.n_actions, -1).astype(np.uint64)
        mult = _HASH_MULT[: ids.shape[2]]
        h = (ids * mult).sum(axis=2, dtype=np.uint64) + slots[:, None] * _HASH_CAMPAIGN
        keys = ((h * _HASH_MIX) >> np.uint64(64 - self.table_bits)).astype(np.int64)
        if self.n_groups > 1:  # each group its own table
            keys = self.groups.key(np.asarray(self.index.group)[rows, None], keys, 1 << self.table_bits)
        return keys

    def posterior(self, keys: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Beta parameters (alpha, beta), each shaped like ``keys``, for table entries with estimates."""
        e = np.clip(np.asarray(estimate, dtype=np.float64), ESTIMATE_FLOOR, 1.0 - ESTIMATE_FLOOR)
        s, n = self.sums[keys], self.counts[keys]
        return self.prior_strength * e + s, self.prior_strength * (1.0 - e) + n - s

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        a, b = self.posterior(self.creative_keys(obs), obs["ctr_estimate"])
        if self.sampling == "posterior":  # the distribution select draws from, by quadrature
            return beta_argmax(a, b, self.nodes)
        ab, k = np.concatenate([a, b], axis=1), self.n_actions
        row_groups = self.group_rows(ab.shape[0]) if self.n_groups > 1 else None

        def draw(rng: np.random.Generator, rows) -> np.ndarray:
            uniq, inv = np.unique(ab[rows], axis=0, return_inverse=True)  # requests sharing posteriors
            draws = rng.beta(uniq[:, None, :k], uniq[:, None, k:], size=(uniq.shape[0], self.samples, k))
            return argmax_frequencies(draws)[inv.reshape(-1)]

        return self.per_group(row_groups, draw)

    def select(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N,) actions: the largest of one posterior draw per candidate (``sampling="posterior"``,
        each group's rows from its own generator; the first of equal draws), else drawn from
        ``probabilities``."""
        if self.sampling == "propensities":
            return super().select(obs, info)
        a, b = self.posterior(self.creative_keys(obs), obs["ctr_estimate"])
        return self.rng.beta(a, b, size=a.shape).argmax(axis=1)  # stacked: each group's rows, its generator

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        keys = self.creative_keys(obs)
        a, r = check_feedback(actions, rewards, keys.shape[0], self.n_actions)
        check_unit_rewards(r, "hybrid")
        shown = keys[np.arange(a.shape[0]), a]
        entries, inv = np.unique(shown, return_inverse=True)  # O(batch), not O(table size)
        self.counts[entries] += np.bincount(inv, minlength=entries.size)
        self.sums[entries] += np.bincount(inv, weights=r, minlength=entries.size)
        self.n_updates += 1


_HASH_MULT = np.random.default_rng(np.random.SeedSequence(20260)).integers(1, 2**63, size=64, dtype=np.uint64) | np.uint64(1)
_HASH_CAMPAIGN = np.uint64(0x9E3779B97F4A7C15)
_HASH_MIX = np.uint64(0xBF58476D1CE4E5B9)
