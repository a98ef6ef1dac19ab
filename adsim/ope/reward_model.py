"""Reward models q̂(x, a) for the direct method and doubly robust estimators.

:func:`predict_rewards` turns a log into an (n, K) matrix of predicted expected rewards. The model
may be

* ``None`` — the default: a scikit-learn logistic regression on :func:`reward_features` (ridge
  regression when rewards are not 0/1, e.g. revenue);
* any scikit-learn-style estimator (``fit(X, y)`` and ``predict_proba`` or ``predict``) — fitted on
  the features of the logged (context, action) pairs, with cross-fitting over ``n_folds`` folds so
  no round is predicted by a model that saw its own reward;
* any callable ``model(log) -> (n, K)`` — used as is (the project's CTR model plugs in here, and
  so does the simulator's truth, ``lambda log: log.expected_reward``, for a perfect model).

The truth (``log.expected_reward``) is never used as a feature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

from adsim.ope.log import BanditLog
from adsim.validation import check_int


def default_model(binary: bool = True) -> LogisticRegression | Ridge:
    """The default reward model: L2 logistic regression for 0/1 rewards (clicks, conversions; ``C``
    moderate as positives are rare), ridge regression for others (revenue)."""
    return LogisticRegression(C=0.5, max_iter=300) if binary else Ridge(alpha=1.0)


def reward_features(log: BanditLog, encoder: OneHotEncoder, rows: np.ndarray, actions: np.ndarray) -> sp.csr_matrix:
    """Sparse features of (round, candidate) pairs.

    Args:
        log: the log.
        encoder: a ``OneHotEncoder`` fitted on candidate id vectors (``log.action_context`` rows).
        rows: (m,) round indices.
        actions: (m,) candidate indices.

    Returns:
        (m, d_x + 1 + n_onehot) CSR matrix: observed context, the candidate's CTR estimate, its
        one-hot candidate ids.
    """
    cand = log.action_context[rows, actions]
    est = log.ctr_estimate[rows, actions][:, None].astype(np.float64)
    return sp.hstack([sp.csr_matrix(log.context[rows].astype(np.float64)), sp.csr_matrix(est),
                      encoder.transform(cand)], format="csr")


def _predict(model: Any, X: sp.csr_matrix) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        classes = list(model.classes_)
        return proba[:, classes.index(1)] if 1 in classes else np.zeros(X.shape[0])
    return np.asarray(model.predict(X), dtype=np.float64)


def _accepts_sparse(model: Any) -> bool:
    """Whether a scikit-learn estimator takes sparse input (its tags say; unknown estimators: yes)."""
    try:
        return bool(model.__sklearn_tags__().input_tags.sparse)
    except AttributeError:
        return True


def _fit(model: Any, X: sp.csr_matrix, y: np.ndarray) -> Any | float:
    """A fitted clone, or the constant mean when the fold has a single reward value."""
    if hasattr(model, "predict_proba") and np.unique(y).size < 2:
        return float(y.mean())
    return clone(model).fit(X if _accepts_sparse(model) else X.toarray(), y)


def predict_rewards(log: BanditLog, model: Any | Callable[[BanditLog], np.ndarray] | None = None, *,
                    n_folds: int = 2, seed: int = 0, threads: int | None = 1) -> np.ndarray:
    """(n, K) predicted expected reward of every candidate of every logged round.

    Args:
        log: the logged feedback.
        model: ``None`` (default logistic regression), a scikit-learn-style estimator, or a callable
            ``log -> (n, K)``; see the module docstring.
        n_folds: cross-fitting folds (1 = fit and predict on the whole log).
        seed: seed of the fold assignment.
        threads: BLAS/OpenMP threads while fitting (``None``: unchanged). One is the default: these
            fits are small, and thread start-up dominates them on a busy machine (2.6x faster
            measured on 2 shared cores).
    """
    if callable(model) and not hasattr(model, "fit"):
        q = np.asarray(model(log), dtype=np.float64)
        if q.shape != (log.n_rounds, log.n_actions):
            raise ValueError(f"reward model returned shape {q.shape}, expected {(log.n_rounds, log.n_actions)}")
        return q
    model = default_model(bool(np.isin(log.reward, (0.0, 1.0)).all())) if model is None else model
    if not hasattr(model, "fit") or not (hasattr(model, "predict") or hasattr(model, "predict_proba")):
        raise TypeError(f"model must be None, a callable log -> (n, K) or an estimator with fit/predict, "
                        f"got {type(model).__name__}")
    check_int("n_folds", n_folds, 1, log.n_rounds)
    with threadpool_limits(limits=threads):
        return _cross_fit(log, model, n_folds, seed)


def _cross_fit(log: BanditLog, model: Any, n_folds: int, seed: int) -> np.ndarray:
    n, K = log.n_rounds, log.n_actions
    encoder = OneHotEncoder(handle_unknown="ignore").fit(log.action_context.reshape(n * K, -1))
    fold = np.random.default_rng(seed).permutation(n) % n_folds
    all_rows, all_actions = np.repeat(np.arange(n), K), np.tile(np.arange(K), n)
    q = np.empty(n * K)
    for f in range(n_folds):
        train = np.flatnonzero(fold != f) if n_folds > 1 else np.arange(n)
        fitted = _fit(model, reward_features(log, encoder, train, log.action[train]), log.reward[train])
        pred = np.repeat(fold == f, K)
        if isinstance(fitted, float):
            q[pred] = fitted
        else:
            X = reward_features(log, encoder, all_rows[pred], all_actions[pred])
            q[pred] = _predict(fitted, X if _accepts_sparse(fitted) else X.toarray())
    return q.reshape(n, K)


def slate_position_model(record, n_folds: int = 2) -> np.ndarray:
    """(n, L, K) q̂ for cascade-DR from a slate log: position l's expected click of candidate a is
    ``c_l · ctr_estimate[a]`` (the observed CTR estimate scaled per position), ``c_l`` fitted on the
    other folds' pages (interleaved folds: ``page % n_folds``) as ``Σ clicks_l / Σ ctr_estimate(a_l)``.
    It ignores the items above (a model of the position-based kind), which cascade-DR tolerates:
    it stays unbiased under the cascade assumption whatever q̂ is."""
    n, L = record.action.shape
    est = record.ctr_estimate
    shown = np.take_along_axis(est, record.action, axis=1)  # (n, L)
    fold = np.arange(n) % n_folds
    c = np.empty((n, L))
    for f in range(n_folds):
        train = fold != f if n_folds > 1 else np.ones(n, bool)
        c[fold == f] = record.clicks[train].sum(axis=0) / np.maximum(shown[train].sum(axis=0), 1e-12)
    return c[:, :, None] * est[:, None, :]
