"""The Open Bandit Dataset's standard OPE validation, on rows and on slates.

The OBD logged the same ZOZOTOWN campaign with two policies at once: uniform random and Bernoulli
Thompson sampling (BTS). The validation estimates BTS's CTR from the **random** log and compares it
with BTS's **on-policy** CTR (the mean click of the BTS log, with its Wilson interval). Estimates
are per impression (a slate's value divided by its ``L = 3`` positions), each with its interval and
its relative error ``estimate / on-policy − 1`` (the interval's ends divided likewise, the on-policy
CTR taken as fixed; its own interval is reported beside it).

**The evaluation policy's propensities** (``target``):

* ``"prior"`` — obp 0.4.1's ``BernoulliTS(is_zozotown_prior=True, campaign=…)`` and its
  ``compute_batch_action_dist`` (Monte Carlo, ``n_sim`` draws, seeded): the marginal probability of
  every (item, position) under the prior ZOZOTOWN published — what obp's own OBD example uses;
* ``"frequency"`` — the BTS log's own frequency of each (item, position) among its rows at that
  position: an unbiased estimate of BTS's time-averaged marginal (BTS's parameters changed during
  the week; the mean of the log's ``propensity_score`` per (item, position) would be size-biased,
  since BTS logged an item most often exactly when its probability was high).

Neither gives BTS's **joint** slate probability (the data has marginals only): the slate estimators
use the **factorised** target ``π(s) = Π_l π_l(s_l)`` and its running products as cumulative
propensities — an approximation that ignores BTS's no-repeat constraint — and the report says so.

**Logged slates.** The samples hold no complete page (:func:`adsim.fidelity.page_summary`), so the
slate estimators run on pseudo-slates of the random log (:func:`adsim.fidelity.slate_log`,
``how="by_position"``): the random logger is context-free, so pseudo-slates are slates of a logger
that fills positions independently and uniformly, marginal ``1/K``, cumulative ``K^−(l+1)``. The
per-position estimators (IPS and SNIPS per row, :mod:`adsim.ope.estimators`) use every row.
"""

from __future__ import annotations

import numpy as np

from adsim.validation import check_choice, check_int

TARGET_SOURCES = ("prior", "frequency")
N_POSITIONS = 3


def bts_marginals(campaign: str, n_items: int, source: str = "prior", bts_log=None, *, n_sim: int = 100_000,
                  seed: int = 12345) -> np.ndarray:
    """(L, K) BTS's marginal probability of each item at each position (see the module docstring).

    Args:
        campaign: the OBD campaign (``all``, ``men``, ``women``).
        n_items: K, the campaign's number of items.
        source: ``"prior"`` (obp's ZOZOTOWN-prior BTS; needs ``obp``) or ``"frequency"`` (``bts_log``'s).
        bts_log: the BTS :class:`~adsim.fidelity.ClickLog` (``"frequency"`` only).
        n_sim: Monte Carlo draws of ``"prior"``.
        seed: its ``random_state``.
    """
    check_choice("source", source, TARGET_SOURCES)
    check_int("n_items", n_items, 2)
    if source == "prior":
        from obp.policy import BernoulliTS

        check_int("n_sim", n_sim, 100)
        policy = BernoulliTS(n_actions=int(n_items), len_list=N_POSITIONS, is_zozotown_prior=True, campaign=campaign,
                             random_state=int(seed))
        return policy.compute_batch_action_dist(n_sim=int(n_sim), n_rounds=1)[0].T.copy()
    if bts_log is None:
        raise ValueError("source='frequency' needs bts_log, the BTS log whose frequencies are the marginals")
    counts = np.zeros((N_POSITIONS, n_items))
    inside = bts_log.position < N_POSITIONS
    np.add.at(counts, (bts_log.position[inside], bts_log.item[inside]), 1)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def _row(est, truth: float, scale: float = 1.0) -> dict:
    value, lo, hi = est.value / scale, est.ci_low / scale, est.ci_high / scale
    return {"value": value, "ci": [lo, hi], "std_err": est.std_err / scale, "n": est.n_rounds,
            "relative_error": value / truth - 1, "relative_error_ci": [lo / truth - 1, hi / truth - 1],
            "interval_covers_on_policy": bool(lo <= truth <= hi)}


def _position_ctr_model(slates, n_folds: int = 2) -> np.ndarray:
    """(n, L, K) q̂ for cascade-DR: each position's CTR, cross-fitted over ``n_folds`` interleaved folds
    (a slate's prediction comes from the other folds' slates)."""
    n, L = slates.click.shape
    fold = np.arange(n) % n_folds
    q = np.empty((n, L))
    for f in range(n_folds):
        q[fold == f] = slates.click[fold != f].mean(axis=0)
    return q


def validate(random_log, bts_log, campaign: str, target: str = "prior", *, slates=None, n_sim: int = 100_000,
             seed: int = 12345, alpha: float = 0.05, ci: str = "normal", n_boot: int = 2000) -> dict:
    """The validation on one campaign: BTS's CTR from the random log, against BTS's on-policy CTR.

    Args:
        random_log, bts_log: :class:`~adsim.fidelity.ClickLog` of the two policies (``read_obd``).
        campaign: the campaign (names obp's prior).
        target: ``"prior"`` or ``"frequency"`` (module docstring).
        slates: a :class:`~adsim.fidelity.SlateLog` of the random logger to use instead of the
            random log's pseudo-slates (e.g. one read back from :func:`adsim.fidelity.write_obd`).
        n_sim, seed: the prior's Monte Carlo draws and seed (also the bootstrap's seed).
        alpha, ci, n_boot: the intervals (as every estimator's).
    """
    from adsim.fidelity import _wilson, page_summary, slate_log
    from adsim.ope.estimators import ips, snips
    from adsim.ope.slate import cascade_dr, iips, pseudo_inverse, rips, sips

    L = N_POSITIONS
    n_items = int(max(random_log.item.max(), bts_log.item.max())) + 1
    q = bts_marginals(campaign, n_items, target, bts_log, n_sim=n_sim, seed=seed)  # (L, K)
    clicks, n_bts = int(bts_log.click.sum()), len(bts_log.click)
    truth = clicks / n_bts
    kw = {"alpha": alpha, "ci": ci, "n_boot": n_boot, "seed": seed}

    reward = random_log.click.astype(np.float64)
    target_rows = q[np.minimum(random_log.position, L - 1)]  # (n, K): BTS's distribution at each row's position
    per_row = {"ips": ips(reward, random_log.item, random_log.pscore, target_rows, **kw),
               "snips": snips(reward, random_log.item, random_log.pscore, target_rows, **kw)}

    s = slates if slates is not None else slate_log(random_log, L, how="by_position")
    n = s.n_slates
    r = s.click.astype(np.float64)
    marg_t = q[np.arange(L)[None, :], s.item]
    cum_b, cum_t = np.cumprod(s.pscore, axis=1), np.cumprod(marg_t, axis=1)
    dist = np.broadcast_to(q[None], (n, L, n_items))
    q_hat = np.broadcast_to(_position_ctr_model(s)[:, :, None], (n, L, n_items))
    slate = {"sips": sips(r, cum_b[:, -1], cum_t[:, -1], **kw), "iips": iips(r, s.pscore, marg_t, **kw),
             "rips": rips(r, cum_b, cum_t, **kw),
             "cascade_dr": cascade_dr(r, s.item, cum_b, dist, q_hat, **kw),
             "pseudo_inverse": pseudo_inverse(r, marg_t, pscore=s.pscore, logging="product", **kw)}
    return {
        "campaign": campaign, "n_items": n_items, "positions": L,
        "on_policy": {"ctr": truth, "ci95": _wilson(clicks, n_bts), "impressions": n_bts, "clicks": clicks,
                      "source": bts_log.source},
        "logging": {"source": random_log.source, "impressions": len(reward), "clicks": int(reward.sum()),
                    "pages": page_summary(random_log, L), "slates": n, "slates_how": s.how,
                    "slate_logger": ("positions filled independently and uniformly (pseudo-slates of a context-free "
                                     "logger): marginal 1/K, cumulative K^-(l+1), joint K^-L") if s.how == "by_position"
                    else "slates read from a file; positions taken as filled independently: cumulative and joint "
                         "propensities are running products of the file's marginal ones"},
        "target": {"source": target,
                   "marginals": ("obp 0.4.1 BernoulliTS(is_zozotown_prior=True).compute_batch_action_dist, "
                                 f"n_sim={n_sim}, random_state={seed}") if target == "prior" else
                                "the BTS log's frequency of each (item, position) among its rows at that position",
                   "joint": "factorised: product of the marginals (the data has no joint slate probability)"},
        "confidence": 1 - alpha, "ci": ci,
        "per_position": {k: _row(e, truth) for k, e in per_row.items()},
        "slate": {k: _row(e, truth, L) for k, e in slate.items()},
    }


__all__ = ["TARGET_SOURCES", "bts_marginals", "validate"]
