"""Held-out evaluation of click predictions, next to the oracle (the true probabilities as prediction).

* ``auc``: ROC AUC (scikit-learn), with a bootstrap standard error over impressions;
* ``log_loss``: mean negative log-likelihood;
* ``ece``: expected calibration error over equal-mass bins of the prediction,
  ``Σ_b (n_b / n) · |mean prediction_b − observed CTR_b|``;
* ``pred_obs_ratio``: mean prediction / observed CTR (1 = calibrated on average);
* reliability table: per bin mean prediction, observed CTR and count (for the diagram).

Bootstrap resamples are shared by all predictions (paired), so the standard error of an AUC
*difference* between two models is reported too.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from adsim.config import check_int

EPS = 1e-7


def _check(y: np.ndarray, p: np.ndarray, name: str = "prediction") -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    if y.ndim != 1 or p.shape != y.shape:
        raise ValueError(f"{name} has shape {p.shape}, labels {y.shape}; both must be (M,)")
    if y.size == 0:
        raise ValueError("no impressions to evaluate")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError(f"{name} must be probabilities in [0, 1]")
    return y, p


def reliability(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> dict[str, list[float]]:
    """Equal-mass bins of ``p``: mean prediction, observed CTR and count per bin."""
    y, p = _check(y, p)
    check_int("n_bins", n_bins, 1)
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(n_bins, y.size))
    return {"mean_pred": [float(p[b].mean()) for b in bins], "observed": [float(y[b].mean()) for b in bins],
            "count": [int(b.size) for b in bins]}


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error over equal-mass bins."""
    t = reliability(y, p, n_bins)
    n = sum(t["count"])
    return float(sum(c / n * abs(a - b) for a, b, c in zip(t["mean_pred"], t["observed"], t["count"])))


def metrics(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    """AUC, log loss, ECE, predicted/observed ratio, mean prediction and observed CTR."""
    y, p = _check(y, p)
    if y.min() == y.max():
        raise ValueError("AUC needs both clicks and non-clicks among the impressions")
    return {"auc": float(roc_auc_score(y, p)), "log_loss": float(log_loss(y, np.clip(p, EPS, 1 - EPS))),
            "ece": ece(y, p, n_bins), "pred_obs_ratio": float(p.mean() / y.mean()),
            "mean_pred": float(p.mean()), "observed_ctr": float(y.mean()), "n": int(y.size)}


def bootstrap_auc(y: np.ndarray, preds: dict[str, np.ndarray], n_boot: int = 200,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """(n_boot,) AUCs of every prediction on the same (paired) bootstrap resamples of impressions."""
    check_int("n_boot", n_boot, 2)
    y = np.asarray(y)
    for name, p in preds.items():
        _check(y, p, name)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))
    out = {name: np.empty(n_boot) for name in preds}
    for i in range(n_boot):
        rows = rng.integers(0, y.size, size=y.size)
        for name, p in preds.items():
            out[name][i] = roc_auc_score(y[rows], p[rows])
    return out


def compare(y: np.ndarray, preds: dict[str, np.ndarray], oracle: np.ndarray, *, baseline: str | None = "lr",
            n_boot: int = 200, seed: int = 0, n_bins: int = 15) -> dict:
    """Metrics of every prediction and of the oracle on the same impressions, with bootstrap SEs.

    Returns ``{"oracle": {...}, "models": {name: {..., "auc_se", "auc_gap_to_oracle",
    "auc_gain_over_<baseline>", "auc_gain_se"}}, "reliability": {name: table}}``.
    """
    all_preds = {**preds, "oracle": np.asarray(oracle, dtype=np.float64)}
    boots = bootstrap_auc(y, all_preds, n_boot, seed)
    res = {"models": {}, "reliability": {}}
    for name, p in all_preds.items():
        m = metrics(y, p, n_bins)
        m["auc_se"] = float(boots[name].std(ddof=1))
        res["reliability"][name] = reliability(y, p, n_bins)
        if name == "oracle":
            res["oracle"] = m
            continue
        m["auc_gap_to_oracle"] = float(metrics(y, all_preds["oracle"], n_bins)["auc"] - m["auc"])
        m["auc_gap_se"] = float((boots["oracle"] - boots[name]).std(ddof=1))
        if baseline in preds and name != baseline:
            m[f"auc_gain_over_{baseline}"] = m["auc"] - float(roc_auc_score(y, preds[baseline]))
            m["auc_gain_se"] = float((boots[name] - boots[baseline]).std(ddof=1))
        res["models"][name] = m
    return res


__all__ = ["metrics", "reliability", "ece", "bootstrap_auc", "compare"]
