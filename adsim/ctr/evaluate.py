"""Held-out evaluation of click predictions, next to the oracle (the true probabilities as prediction).

* ``auc``: ROC AUC (scikit-learn), with a bootstrap standard error over impressions;
* ``log_loss``: mean negative log-likelihood;
* ``ece``: expected calibration error over equal-mass bins of the prediction,
  ``Σ_b (n_b / n) · |mean prediction_b − observed CTR_b|``;
* ``pred_obs_ratio``: mean prediction / observed CTR (1 = calibrated on average);
* reliability table: per bin mean prediction, observed CTR and count (for the diagram).

Bootstrap resamples are shared by all predictions (paired), so the standard error of an AUC
*difference* between two models is reported too. :func:`selection` measures what the estimate is
for in the env: the true CTR of the candidate each model would choose, against random and best.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from adsim.validation import check_int

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


def selection(predictors: dict, config, n_requests: int = 20_000, seed: int = 10**7) -> dict:
    """How well each model *chooses* a creative: greedy on its estimate over fresh requests.

    AUC over logged impressions mostly ranks users and contexts against each other; choosing among
    one request's K candidates only needs the ranking within the request, which is where
    user × creative interactions matter (logistic regression ranks every user's candidates alike).

    Args:
        predictors: name → ``CTRPredictor`` (anything with ``predict_request``).
        config: the scenario (``EnvConfig``).
        n_requests: requests (each from its own stream ``seed + i``, first request of an episode).
        seed: first stream seed (default far from the training and test streams).

    Returns:
        ``{"random_ctr", "best_ctr", "models": {name: {"ctr", "lift_captured", "lift_se",
        "gain_over_<first>", "gain_se"}}}``; ``lift_captured`` = (ctr − random) / (best − random),
        1 for the oracle; SEs over requests, paired against the first model.
    """
    from adsim.selection import SelectionCore

    check_int("n_requests", n_requests, 2)
    core = SelectionCore(config, n_requests)
    core.seed(range(seed, seed + n_requests))
    core.start_episode()
    p_true, rows = core.click_probs, np.arange(n_requests)
    rand, best = p_true.mean(1), p_true.max(1)
    span = float(best.mean() - rand.mean())
    chosen = {name: p_true[rows, np.argmax(m.predict_request(core.request), 1)] for name, m in predictors.items()}
    first = next(iter(chosen), None)
    out = {"random_ctr": float(rand.mean()), "best_ctr": float(best.mean()), "n_requests": n_requests, "models": {}}
    for name, c in chosen.items():
        lift = (c - rand) / span
        m = {"ctr": float(c.mean()), "lift_captured": float(lift.mean()),
             "lift_se": float(lift.std(ddof=1) / np.sqrt(n_requests))}
        if name != first:
            d = (c - chosen[first]) / span
            m[f"gain_over_{first}"] = float(d.mean())
            m["gain_se"] = float(d.std(ddof=1) / np.sqrt(n_requests))
        out["models"][name] = m
    return out


__all__ = ["metrics", "reliability", "ece", "bootstrap_auc", "compare", "selection"]
