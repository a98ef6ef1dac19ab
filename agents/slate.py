"""Slate policies: an ad request fills L ordered slots from its K candidates, no candidate twice.

A slate policy is a :class:`agents.base.Policy` (the same reset, own random streams, stacked
groups, batched calls) with a slate size and four slate methods::

    policy.reset(n_actions=K, slate_size=L, seed=s)      # or group_seeds=[…] (stacked scenario seeds)
    slates = policy.select_slate(obs, info)              # (N, L) ints in [0, K), distinct per row
    p = policy.slate_propensities(obs, info, slates)     # adsim.ope.slate.SlatePscores: .joint (N,), …
    policy.update_slate(obs, slates, clicks, examined)   # clicks (N, L); examined (N, L) or None

``slate_propensities`` gives the probability of each whole slate and the marginal probability of
each candidate at each position, both of exactly the distribution ``select_slate`` draws from
(Thompson sampling's are integrals computed by quadrature, within a stated bound; see below).
As a one-slot policy it is the policy of its first position: ``probabilities`` is the position-1
marginal (N, K); with L = 1 ``select`` returns (N,) actions and ``update`` takes (N,) actions and
rewards, so a slate policy of size 1 runs anywhere a policy does; with L > 1 ``select`` returns
the (N, L) slate and ``update(obs, slates, clicks)`` is ``update_slate``.

**Feedback.** ``clicks`` (N, L) per position, bool or numbers in [0, 1]. ``examined`` (N, L) bool
says which positions the user looked at; only those are learned from (each examined (request,
position) is one observation of its candidate's attraction, fed to the base learner as the
one-slot feedback of that candidate). ``examined=None`` derives it from the policy's ``feedback``:
``"cascade"`` (the cascade model: the user scans down and stops at the first click, so positions
up to and including the first click are examined, all L without a click), ``"dcm"`` (the
dependent click model, where a user may go on after a click: positions up to and including the
last click, all L without a click; Katariya et al., "DCM Bandits", ICML 2016) or ``"all"`` (every
position examined: position-based feedback used as is, the position's examination probability not
divided out — a candidate shown low is underrated by the examination factor, the same for every
candidate at that position, so rankings at one position stay comparable; kept simple).

**Top-L by index** (:class:`TopUCB1`, :class:`TopKLUCB`, :class:`TopLinUCB`, :class:`TopBilinearUCB`):
the one-slot policy's per-candidate index ranked, the L best shown. Ties are broken by a uniformly
random order (K uniforms a request, the lower uniform first), so the probabilities are exact: a
tie group of m candidates that covers r positions of the slate fills them with each of its
m!/(m−r)! ordered choices equally likely, each of its candidates at each of those positions with
probability 1/m; without ties the slate has probability 1.

**Thompson sampling.** :class:`TopThompson` shows the top L of one draw per candidate from its
Beta posterior (exact Thompson sampling); the slate's probability (an L-fold nested integral)
and the marginals (integrals of a Poisson-binomial count) are computed by quadrature
(``agents.quadrature.beta_slate``, ``beta_ranks``), within ``SLATE_ERROR_BOUND`` (1e-4, tested).
:class:`TopLinTS` keeps linear TS's design (``agents.linear.LinearTS``): ``samples`` posterior
draws fixed by the policy's state; each request takes one of them uniformly at random and shows
its top L, so its propensities (shares of the draws) are exact.

**Cascade bandits** (Kveton et al., "Cascading Bandits", ICML 2015; Zong et al., "Cascading
Bandits for Large-Scale Recommendation Problems", UAI 2016): :class:`CascadeUCB1`,
:class:`CascadeKLUCB` and :class:`CascadeLinTS` learn from cascade feedback only, and the UCB
indices count rounds (slates shown in the campaign), not observations, in their ``log t``.
Everything is batched: no Python loop over requests or candidates in ``select_slate`` or the
updates (the quadrature's marginals loop over the K arms once per distinct posterior).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adsim.ope.slate import SlatePscores
from adsim.validation import check_choice, check_float, check_int
from agents.arm_tables import check_obs
from agents.base import Obs, Policy
from agents.bilinear import BilinearUCB
from agents.linear import LinearTS, LinUCBShared
from agents.quadrature import NODES, SLATE_ERROR_BOUND, beta_cdfs, beta_ranks, stieltjes_ranks, stieltjes_slate
from agents.thompson import BetaThompson
from agents.ucb import KLUCB, UCB1

MAX_SLATE = 10
"""Largest slate size L."""
FEEDBACK = ("cascade", "dcm", "all")
"""How ``update_slate`` derives the examined positions when none are given (module docstring)."""


def pscores(joint: np.ndarray | None, marginal: np.ndarray, slates: np.ndarray | None,
            cumulative: np.ndarray | None = None) -> SlatePscores:
    """The propensities of a batch of slates as the one slate-propensity type of the project
    (:class:`adsim.ope.slate.SlatePscores`, what the slate estimators read): ``joint`` (N,) each
    whole slate's probability, ``marginal_table`` (N, L, K) every candidate's probability at every
    position (from ``marginal`` (N, K, L), the layout of :meth:`SlatePolicy.marginals`), the shown
    item's ``marginal`` (N, L) and, where given, ``cumulative`` (N, L)."""
    table = marginal.transpose(0, 2, 1)
    shown = None if slates is None else np.take_along_axis(table, slates[:, :, None], axis=2)[:, :, 0]
    return SlatePscores(marginal=shown, cumulative=cumulative, joint=joint, marginal_table=table)


def check_slates(slates: Any, n: int, n_actions: int, slate_size: int, name: str = "slates") -> np.ndarray:
    """Validate slates: (N, L) integers in [0, K), no candidate twice in a row; returns int64."""
    s = np.asarray(slates)
    if s.shape != (n, slate_size):
        raise ValueError(f"{name} shape {s.shape}, expected (N, L) == ({n}, {slate_size})")
    if not np.issubdtype(s.dtype, np.integer):
        raise TypeError(f"{name} must be integers, got dtype {s.dtype}")
    if s.size and (s.min() < 0 or s.max() >= n_actions):
        bad = s[(s < 0) | (s >= n_actions)][0]
        raise ValueError(f"{name} holds candidate {bad}, must be in [0, {n_actions - 1}]")
    srt = np.sort(s, axis=1)
    dup = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise ValueError(f"{name}[{row}] == {s[row].tolist()} shows a candidate twice; a slate's candidates are distinct")
    return s.astype(np.int64, copy=False)


def cascade_examined(clicks: np.ndarray) -> np.ndarray:
    """(N, L) positions a cascade user examined: up to and including the first click (all without one)."""
    c = clicks > 0
    return (np.cumsum(c, axis=1) - c) == 0


def dcm_examined(clicks: np.ndarray) -> np.ndarray:
    """(N, L) positions a dependent-click-model user surely examined: up to and including the last
    click (all without one: the user only leaves after a click)."""
    c = clicks > 0
    return (np.cumsum(c[:, ::-1], axis=1)[:, ::-1] > 0) | ~c.any(axis=1, keepdims=True)


def rank_slates(index: np.ndarray, u: np.ndarray, slate_size: int) -> np.ndarray:
    """(N, L) the L candidates of highest ``index`` (N, K), ties in the order of the uniforms ``u``
    (N, K) (lower first); NaN indices rank as -inf."""
    index = np.where(np.isnan(index), -np.inf, index)
    return np.lexsort((u, -index), axis=1)[:, :slate_size]


def tie_propensities(index: np.ndarray, slates: np.ndarray | None, slate_size: int) -> SlatePscores:
    """Exact propensities of :func:`rank_slates` with independent uniform ``u``: the marginals
    (``marginal_table`` (N, L, K)) and, for ``slates`` (N, L) (or None: only the table), each slate's
    probability (``joint``), the shown items' marginals and the cumulative probabilities of the
    slates' first l + 1 positions (the products of the first l + 1 factors below).

    Candidate k has ``a_k`` candidates above it and ``m_k`` equal (itself included); it sits at
    each position of ``[a_k, a_k + m_k)`` with probability ``1/m_k``. A slate is possible when each
    position l's candidate has ``a ≤ l < a + m``; then position l's candidate was drawn uniformly
    among the ``m − (l − a)`` members of its tie group not yet placed."""
    index = np.where(np.isnan(index), -np.inf, index)
    above = (index[:, None, :] > index[:, :, None]).sum(axis=2)  # (N, K)
    equal = (index[:, None, :] == index[:, :, None]).sum(axis=2)
    pos = np.arange(slate_size)
    inside = (pos >= above[..., None]) & (pos < (above + equal)[..., None])  # (N, K, L)
    marginal = inside / equal[..., None]
    if slates is None:
        return pscores(None, marginal, None)
    rows = np.arange(index.shape[0])[:, None]
    a, m = above[rows, slates], equal[rows, slates]  # (N, L)
    ok = ((pos >= a) & (pos < a + m)).all(axis=1)
    left = np.maximum(m - (pos - a), 1)
    factor = np.where((pos >= a) & (pos < a + m), 1.0 / left, 0.0)
    cumulative = np.cumprod(factor, axis=1)
    return pscores(np.where(ok, 1.0 / left.prod(axis=1), 0.0), marginal, slates, cumulative)


class SlatePolicy(Policy):
    """Base of the slate policies (module docstring): subclasses implement :meth:`select_slate`,
    :meth:`slate_propensities` and :meth:`marginals`; learning goes through :meth:`update_pairs`
    of the one-slot learner they extend, one (request, candidate) pair per examined position."""

    slate_size: int = 1
    feedback: str = "cascade"
    exact_slate_probabilities: bool = True
    """Whether :meth:`slate_probabilities` is exact (a distribution to 1e-9): what a slate OPE log's
    logging policy and targets need (:func:`adsim.collect.collect_slate_log`)."""
    pi_logging: str | None = None
    """The logger form of the pseudo-inverse estimator this policy has (``"uniform"``: every ordered
    slate equally likely; ``adsim.ope.slate.pseudo_inverse``), ``None`` if neither."""

    def _init_feedback(self, feedback: str) -> None:
        check_choice("feedback", feedback, FEEDBACK)
        self.feedback = feedback

    def reset(self, n_actions: int, seed: int | np.random.SeedSequence | None = None, group_seeds=None,
              slate_size: int = 1) -> None:
        """Forget everything learned; reseed; show ``slate_size`` L candidates per request (1 ≤ L ≤ min(10, K))."""
        if isinstance(slate_size, np.integer):
            slate_size = int(slate_size)
        check_int("slate_size", slate_size, 1, MAX_SLATE)
        if not isinstance(n_actions, bool) and isinstance(n_actions, (int, np.integer)) and slate_size > n_actions:
            raise ValueError(f"slate_size == {slate_size} > n_actions == {n_actions}: a slate shows each of the "
                             f"K candidates at most once, so L must be <= K")
        super().reset(n_actions, seed, group_seeds)
        self.slate_size = int(slate_size)

    # ------------------------------------------------------------------ the slate interface
    def select_slate(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N, L) slates drawn with the policy's own generator(s)."""
        raise NotImplementedError

    def marginals(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N, K, L) probability that ``select_slate`` shows candidate k at position l."""
        raise NotImplementedError

    def slate_propensities(self, obs: Obs, info: dict[str, Any] | None = None,
                           slates: np.ndarray | None = None) -> SlatePscores:
        """The propensities of each request's slate under ``select_slate``
        (:class:`adsim.ope.slate.SlatePscores`): ``joint`` (N,), ``marginal_table`` (N, L, K), the shown
        items' ``marginal`` (N, L); ``cumulative`` (N, L) where exact and cheap (random and top-by-index
        policies). Every form of every policy, conditional ones included, follows exactly from
        :meth:`slate_probabilities` (``SlatePscores.from_slate_probs``)."""
        raise NotImplementedError

    def slate_probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N, S) probability of every ordered slate (``adsim.ope.slate.all_slates(K, L)`` order), each
        from :meth:`slate_propensities`: what :func:`adsim.collect.collect_slate_log` draws a logged
        slate from and every slate estimator's propensities (joint, cumulative, marginal, conditional)
        are computed from, exactly (``adsim.ope.slate.SlatePscores.from_slate_probs``). One call of
        ``slate_propensities`` per ordered slate: small K only (S = K!/(K − L)!)."""
        from adsim.ope.slate import all_slates

        n = check_obs(obs, n_actions=self.n_actions)
        slates = all_slates(self.n_actions, self.slate_size)
        out = np.empty((n, slates.shape[0]))
        for j, s in enumerate(slates):
            out[:, j] = self.slate_propensities(obs, info, np.broadcast_to(s, (n, self.slate_size))).joint
        return out

    def update_slate(self, obs: Obs, slates: np.ndarray, clicks: np.ndarray,
                     examined: np.ndarray | None = None) -> None:
        """Learn from a batch of slates: ``clicks`` (N, L) per position (bool or in [0, 1]);
        ``examined`` (N, L) bool, or None to derive it by ``feedback`` (module docstring)."""
        n = check_obs(obs, n_actions=self.n_actions)
        s = check_slates(slates, n, self.n_actions, self.slate_size)
        c = np.asarray(clicks)
        if c.shape != s.shape:
            raise ValueError(f"clicks shape {c.shape}, expected (N, L) == {s.shape}: one per position")
        c = c.astype(np.float64)
        if not np.all(np.isfinite(c)) or (c.size and (c.min() < 0.0 or c.max() > 1.0)):
            bad = c[~np.isfinite(c) | (c < 0) | (c > 1)][0]
            raise ValueError(f"clicks holds {bad}, must be in [0, 1] (clicks per position)")
        if examined is None:
            e = (cascade_examined(c) if self.feedback == "cascade" else dcm_examined(c) if self.feedback == "dcm"
                 else np.ones(s.shape, dtype=bool))
        else:
            e = np.asarray(examined)
            if e.shape != s.shape or e.dtype != bool:
                raise ValueError(f"examined must be a bool array of shape (N, L) == {s.shape}, got {e.dtype} {e.shape}")
        rows, pos = np.nonzero(e)
        self._learn(obs, rows, s[rows, pos], c[rows, pos])

    def _learn(self, obs: Obs, rows: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from the examined (request, candidate) pairs of a batch (hook: the cascade UCBs count rounds)."""
        self.update_pairs(obs, rows, actions, rewards)

    # ------------------------------------------------------------------ the one-slot view
    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N, K) probability of each candidate at the first position."""
        return self.marginals(obs, info)[:, :, 0]

    def select(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N,) actions with L = 1, else the (N, L) slates of :meth:`select_slate`."""
        s = self.select_slate(obs, info)
        return s[:, 0] if self.slate_size == 1 else s

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        """With L = 1, (N,) actions and rewards (a slate of one); else :meth:`update_slate`."""
        a, r = np.asarray(actions), np.asarray(rewards)
        if self.slate_size == 1 and a.ndim == 1:
            if r.shape != a.shape:
                raise ValueError(f"actions shape {a.shape} and rewards shape {r.shape}, expected ({a.shape[0]},) each")
            a, r = a[:, None], r[:, None]
        self.update_slate(obs, a, r)


class RandomSlate(SlatePolicy):
    """Uniformly random slates: an ordered choice of L of the K candidates, each of the K!/(K−L)!
    equally likely (the first L of a random order, from K uniforms a request)."""

    name = "random_slate"
    stackable = True
    pi_logging = "uniform"

    def select_slate(self, obs, info=None):
        n = check_obs(obs, n_actions=self.n_actions)
        return np.argsort(self.rng.random((n, self.n_actions)), axis=1)[:, :self.slate_size]

    def marginals(self, obs, info=None):
        n = check_obs(obs, n_actions=self.n_actions)
        return np.full((n, self.n_actions, self.slate_size), 1.0 / self.n_actions)

    def slate_propensities(self, obs, info=None, slates=None):
        n = check_obs(obs, n_actions=self.n_actions)
        s = check_slates(slates, n, self.n_actions, self.slate_size)
        K, L = self.n_actions, self.slate_size
        cumulative = np.cumprod(1.0 / np.arange(K, K - L, -1, dtype=np.float64)) * np.ones((n, 1))
        return pscores(cumulative[:, -1].copy(), self.marginals(obs, info), s, cumulative)

    def update_pairs(self, obs, rows, actions, rewards) -> None:
        """Learns nothing."""


class OracleSlate(SlatePolicy):
    """Shows the env's oracle slate, ``info["oracle_slate"]`` (N, L) (the slate of most expected
    clicks, ``adsim/SlateSelection-v0``; a reference policy: it reads the truth). With L = 1 and no
    oracle slate in ``info`` it is :class:`agents.base.OraclePolicy` (the best ``expected_reward``)."""

    name = "oracle_slate"
    stackable = True
    reference = True

    def _oracle(self, obs: Obs, info: dict[str, Any] | None) -> np.ndarray:
        n = check_obs(obs, n_actions=self.n_actions)
        if info is not None and "oracle_slate" not in info and "expected_reward" in info and self.slate_size == 1:
            return np.argmax(np.asarray(info["expected_reward"]), axis=1)[:, None]  # a one-slot env
        if info is None or "oracle_slate" not in info:
            raise ValueError("the slate oracle needs the env's info with 'oracle_slate' (ground truth)")
        return check_slates(info["oracle_slate"], n, self.n_actions, self.slate_size, "info['oracle_slate']")

    def select_slate(self, obs, info=None):
        return self._oracle(obs, info).copy()

    def marginals(self, obs, info=None):
        best = self._oracle(obs, info)
        n, L = best.shape
        m = np.zeros((n, self.n_actions, L))
        m[np.arange(n)[:, None], best, np.arange(L)] = 1.0
        return m

    def slate_propensities(self, obs, info=None, slates=None):
        best = self._oracle(obs, info)
        s = check_slates(slates, best.shape[0], self.n_actions, self.slate_size)
        cumulative = np.cumprod(s == best, axis=1).astype(np.float64)
        return pscores(cumulative[:, -1].copy(), self.marginals(obs, info), s, cumulative)

    def update_pairs(self, obs, rows, actions, rewards) -> None:
        """Learns nothing."""


# ---------------------------------------------------------------------------------------------- top L by index
class _TopIndex(SlatePolicy):
    """Top L of a deterministic per-candidate index, ties in a uniformly random order (exact propensities)."""

    def _index(self, obs: Obs) -> np.ndarray:
        return self.candidate_index(obs)

    def select_slate(self, obs, info=None):
        index = self._index(obs)
        return rank_slates(index, self.rng.random(index.shape), self.slate_size)

    def marginals(self, obs, info=None):
        return tie_propensities(self._index(obs), None, self.slate_size).marginal_table.transpose(0, 2, 1)

    def slate_propensities(self, obs, info=None, slates=None):
        index = self._index(obs)
        s = check_slates(slates, index.shape[0], self.n_actions, self.slate_size)
        return tie_propensities(index, s, self.slate_size)


class TopUCB1(_TopIndex, UCB1):
    """UCB1's index (:class:`agents.ucb.UCB1`) ranked: the L arms of highest ``mean + sqrt(c ln n / n_k)``.

    Args:
        c: exploration coefficient, in (0, 100].
        feedback: examined positions when ``update_slate`` is given none, "cascade", "dcm" or "all".
    """

    name = "top_ucb1"

    def __init__(self, c: float = 2.0, feedback: str = "cascade"):
        UCB1.__init__(self, c)
        self._init_feedback(feedback)


class TopKLUCB(_TopIndex, KLUCB):
    """KL-UCB's index (:class:`agents.ucb.KLUCB`) ranked.

    Args:
        c: coefficient of the ``ln ln n`` term, in [0, 10].
        iters: bisection steps, in [10, 60].
        feedback: examined positions when ``update_slate`` is given none, "cascade", "dcm" or "all".
    """

    name = "top_kl_ucb"

    def __init__(self, c: float = 0.0, iters: int = 40, feedback: str = "cascade"):
        KLUCB.__init__(self, c, iters)
        self._init_feedback(feedback)


class TopLinUCB(_TopIndex, LinUCBShared):
    """Shared LinUCB's upper confidence bounds (:class:`agents.linear.LinUCBShared`) ranked.

    Args:
        alpha: width of the confidence bonus, in [0, 100].
        reg: ridge regularisation, in (0, 1e6].
        segment_by: user segmentation, "tag", "category" or "none".
        feedback: examined positions when ``update_slate`` is given none, "cascade", "dcm" or "all".
    """

    name = "top_linucb"

    def __init__(self, alpha: float = 0.3, reg: float = 1.0, segment_by: str = "tag", feedback: str = "cascade"):
        LinUCBShared.__init__(self, alpha, reg, segment_by)
        self._init_feedback(feedback)

    def _index(self, obs):
        return self.scores(obs)


class TopBilinearUCB(_TopIndex, BilinearUCB):
    """The structure-aware policy's optimistic logits (:class:`agents.bilinear.BilinearUCB`) ranked;
    each update is one Laplace step over the batch's examined pairs.

    Args: those of :class:`agents.bilinear.BilinearUCB`, and
        feedback: examined positions when ``update_slate`` is given none, "cascade", "dcm" or "all".
    """

    name = "top_bilinear_ucb"

    def __init__(self, alpha: float = 0.1, prior_precision: float = 300.0, newton_steps: int = 3,
                 request: str = "interests", interaction_precision: float | None = None, feedback: str = "cascade"):
        BilinearUCB.__init__(self, alpha, prior_precision, newton_steps, request, interaction_precision)
        self._init_feedback(feedback)


# ---------------------------------------------------------------------------------------------- Thompson
class TopThompson(SlatePolicy, BetaThompson):
    """Beta-Bernoulli Thompson sampling per campaign and arm, ranked: one draw from each arm's
    posterior (inverse CDFs of K uniforms), the L largest shown (module docstring for the
    propensities: quadrature within ``agents.quadrature.SLATE_ERROR_BOUND``).

    Args:
        alpha0: prior pseudo-clicks, in (0, 1e6].
        beta0: prior pseudo-non-clicks, in (0, 1e6].
        nodes: quadrature grid points per arm, in [8, 1024].
        feedback: examined positions when ``update_slate`` is given none, "cascade", "dcm" or "all".
    """

    name = "top_thompson"
    error_bound = SLATE_ERROR_BOUND
    exact_slate_probabilities = False  # quadrature, within error_bound: not an OPE logger or target

    def __init__(self, alpha0: float = 1.0, beta0: float = 1.0, nodes: int = NODES, feedback: str = "cascade"):
        BetaThompson.__init__(self, alpha0, beta0, nodes, sampling="posterior")
        self._init_feedback(feedback)

    def _posteriors(self, obs: Obs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct campaign rows' Beta parameters (U, K) each, and each request's row among them (N,)."""
        check_obs(obs, n_actions=self.n_actions)
        uniq, inv = np.unique(self.slots(obs), return_inverse=True)
        a, b = self.posterior(uniq)
        return a, b, inv.reshape(-1)

    def select_slate(self, obs, info=None):
        from scipy.special import betaincinv  # imported on first use: importing agents stays light

        a, b, inv = self._posteriors(obs)
        draws = betaincinv(a[inv], b[inv], self.rng.random((inv.shape[0], self.n_actions)))
        return np.argsort(-draws, axis=1, kind="stable")[:, :self.slate_size]

    def marginals(self, obs, info=None):
        a, b, inv = self._posteriors(obs)
        return beta_ranks(a, b, self.slate_size, self.nodes)[inv]

    def slate_propensities(self, obs, info=None, slates=None):
        a, b, inv = self._posteriors(obs)
        s = check_slates(slates, inv.shape[0], self.n_actions, self.slate_size)
        keys, back = np.unique(np.concatenate([inv[:, None], s], axis=1), axis=0, return_inverse=True)
        F = beta_cdfs(a, b, self.nodes)  # (U, K, M): each distinct posterior once
        p = stieltjes_slate(F, keys[:, 1:], keys[:, 0])[back.reshape(-1)]  # each distinct (posterior, slate) once
        return pscores(p, stieltjes_ranks(F, self.slate_size)[inv], s)


# ---------------------------------------------------------------------------------------------- linear TS
class TopLinTS(SlatePolicy, LinearTS):
    """Linear Thompson sampling on the shared candidate features (:class:`agents.linear.LinearTS`),
    ranked: each request takes one of its block's ``samples`` posterior draws (uniformly, one uniform)
    and shows the top L of the candidates' scores under it (equal scores: the lower index first, as
    ``LinearTS``'s winners). The propensities are the shares of the draws: exact.

    Args:
        v: posterior scale, in (0, 100].
        reg: ridge regularisation, in (0, 1e6].
        segment_by: user segmentation, "tag", "category" or "none".
        samples: posterior draws per block and update, in [1, 4096].
        feedback: examined positions when ``update_slate`` is given none, "cascade", "dcm" or "all".
    """

    name = "top_lin_ts"

    def __init__(self, v: float = 0.1, reg: float = 1.0, segment_by: str = "tag", samples: int = 64,
                 feedback: str = "cascade"):
        LinearTS.__init__(self, v, reg, segment_by, samples)
        self._init_feedback(feedback)

    def _draw_slates(self, obs: Obs) -> np.ndarray:
        """(N, samples, L) the top L under each posterior draw."""
        score = self.sampled_scores(obs).transpose(0, 2, 1)  # (N, samples, K)
        return np.argsort(-score, axis=2, kind="stable")[..., :self.slate_size]

    def select_slate(self, obs, info=None):
        tops = self._draw_slates(obs)
        n = tops.shape[0]
        m = np.minimum((self.uniforms(n)[:, 0] * self.samples).astype(np.int64), self.samples - 1)
        return tops[np.arange(n), m]

    def _marginals(self, tops: np.ndarray) -> np.ndarray:
        n, samples, L = tops.shape
        flat = (np.arange(n)[:, None, None] * self.n_actions + tops) * L + np.arange(L)
        return np.bincount(flat.ravel(), minlength=n * self.n_actions * L).reshape(n, self.n_actions, L) / samples

    def marginals(self, obs, info=None):
        return self._marginals(self._draw_slates(obs))

    def slate_propensities(self, obs, info=None, slates=None):
        tops = self._draw_slates(obs)
        s = check_slates(slates, tops.shape[0], self.n_actions, self.slate_size)
        match = np.cumprod(tops == s[:, None, :], axis=2)  # (N, samples, L): the draw agrees on positions 0..l
        cumulative = match.mean(axis=1)
        return pscores(cumulative[:, -1].copy(), self._marginals(tops), s, cumulative)


# ---------------------------------------------------------------------------------------------- cascade bandits
class _CascadeRounds:
    """Mixin for the cascade UCBs: rounds (slates shown) per campaign row, the ``t`` of their ``log t``."""

    def reset(self, n_actions: int, seed=None, group_seeds=None, slate_size: int = 1) -> None:
        super().reset(n_actions, seed, group_seeds, slate_size)
        self.rounds = np.zeros(0)
        """(campaigns,) slates shown (updates received) per campaign row."""

    def _grow(self, n_rows: int) -> None:
        super()._grow(n_rows)
        self.rounds = np.concatenate([self.rounds, np.zeros(self.counts.shape[0] - self.rounds.shape[0])])

    def _slot_index(self, slots: np.ndarray, n: np.ndarray | None = None) -> np.ndarray:
        return super()._slot_index(slots, self.rounds[slots][:, None] if n is None else n)

    def update_slate(self, obs, slates, clicks, examined=None) -> None:
        super().update_slate(obs, slates, clicks, examined)
        self.rounds += np.bincount(self.slots(obs), minlength=self.rounds.shape[0])


class CascadeUCB1(_CascadeRounds, _TopIndex, UCB1):
    """CascadeUCB1 (Kveton et al., ICML 2015): per campaign and item, the attraction estimate ŵ from
    the item's examined impressions, index ``ŵ + sqrt(c · ln t / T)`` with ``T`` the item's
    observations and ``t`` the campaign's rounds, items never observed first; the top L shown;
    learns from cascade feedback (positions up to and including the first click).

    Args:
        c: exploration coefficient, in (0, 100]; the paper's 1.5.
    """

    name = "cascade_ucb1"

    def __init__(self, c: float = 1.5):
        UCB1.__init__(self, c)
        self._init_feedback("cascade")


class CascadeKLUCB(_CascadeRounds, _TopIndex, KLUCB):
    """CascadeKL-UCB (Kveton et al., ICML 2015): index ``max{q ≥ ŵ : T · KL(ŵ ‖ q) ≤ ln t + c ln ln t}``
    (``T`` the item's observations, ``t`` the campaign's rounds); the top L shown; cascade feedback.

    Args:
        c: coefficient of the ``ln ln t`` term, in [0, 10]; the paper's analysis takes 3, KL-UCB's
            practice (and this default) 0.
        iters: bisection steps, in [10, 60].
    """

    name = "cascade_klucb"

    def __init__(self, c: float = 0.0, iters: int = 40):
        KLUCB.__init__(self, c, iters)
        self._init_feedback("cascade")


class CascadeLinTS(TopLinTS):
    """CascadeLinTS (Zong et al., UAI 2016): one Bayesian linear regression of attraction on the
    candidates' features (``agents.features``), ``θ ~ N(θ̂, v² A⁻¹)``, the top L under a posterior
    draw shown, learning from cascade feedback. The paper's single θ is ``segment_by="none"``
    (per user segment with "tag" or "category"); draws as :class:`TopLinTS` (exact propensities).

    Args:
        v: posterior scale σ, in (0, 100].
        reg: ridge regularisation (prior precision), in (0, 1e6].
        segment_by: user segmentation, "none" (the paper's), "tag" or "category".
        samples: posterior draws per block and update, in [1, 4096].
    """

    name = "cascade_lints"

    def __init__(self, v: float = 0.1, reg: float = 1.0, segment_by: str = "none", samples: int = 64):
        super().__init__(v, reg, segment_by, samples, feedback="cascade")


__all__ = ["CascadeKLUCB", "CascadeLinTS", "CascadeUCB1", "FEEDBACK", "MAX_SLATE", "OracleSlate", "RandomSlate", "SlatePolicy", "SlatePscores",
           "TopBilinearUCB", "TopKLUCB", "TopLinTS", "TopLinUCB", "TopThompson", "TopUCB1", "cascade_examined", "dcm_examined",
           "check_slates", "rank_slates", "tie_propensities"]
