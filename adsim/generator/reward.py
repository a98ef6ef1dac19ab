"""A learned CTR model for fine-tuning rewards: logistic regression on logged impressions.

The fine-tuning reward must come from a model trained on *observable* logs, never from the hidden
response model. :class:`LogisticCTR` implements the ``adsim.running_ctr.CTREstimator`` protocol with
scikit-learn's ``LogisticRegression`` over sparse features of a (request, creative) pair:

* the request's observed user, context and campaign vectors;
* the creative's public quality flags (``creative_quality``);
* one block per creative part (each phrase slot and visual attribute value, ``creative_parts``)
  holding that part crossed with the request's interaction vector
  ``[1, goal, campaign category, user category shares, interest tags, activity, buy rate, tier,
  discount]`` — so a part's estimated effect depends on who sees it, for which campaign.

:func:`log_impressions` produces the logs with the one logging path: a uniformly random logging
policy on a ``SelectionCore`` (any candidate source); the fit reads what was shown and whether it was
clicked.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from adsim.collect import LogStreams, UniformLogging, collect_log, shown_request
from adsim.config import EnvConfig
from adsim.selection import SelectionCore
from adsim.creative.lexicon import LEXICON
from adsim.creative.sampler import CandidateSource, creative_parts, creative_quality
from adsim.running_ctr import Request
from adsim.observation import CAMPAIGN_LAYOUT, user_layout
from adsim.validation import check_float, check_int


class LogisticCTR:
    """Learned CTR estimate (N, K) from logged impressions; fixed after :meth:`fit`.

    Args:
        n_interest_tags: interest tags in the user vector.
        C: inverse L2 regularisation strength of the logistic regression.
    """

    def __init__(self, n_interest_tags: int = 8, C: float = 0.5):
        check_int("n_interest_tags", n_interest_tags, 2, 64)
        check_float("C", C, 0.0, 1e6, open_low=True)
        self.n_interest_tags, self.C = n_interest_tags, C
        self.n_parts = 1 + LEXICON.n_phrases + LEXICON.n_attr_values
        self.model: LogisticRegression | None = None

    def _interaction(self, r: Request) -> np.ndarray:
        """(N, G) the vector each creative part is crossed with."""
        uf, cf, U = r.user_features, r.campaign_features, user_layout(self.n_interest_tags)
        return np.concatenate([np.ones((len(uf), 1)), cf[:, CAMPAIGN_LAYOUT.span("goal", "category")],
                               U.take(uf, "category_shares"), U.take(uf, "interest_tags"),
                               uf[:, U.span("activity", "price_tier")], CAMPAIGN_LAYOUT.take(cf, "discount")], 1)

    def features(self, r: Request) -> sp.csr_matrix:
        """Sparse features (N·K, D) of every candidate of a batch of requests."""
        N, K = r.candidates.shape[:2]
        z = self._interaction(r)  # (N, G)
        G = z.shape[1]
        base = np.concatenate([r.user_features, r.context_features, r.campaign_features], 1)
        cat = CAMPAIGN_LAYOUT.argmax(r.campaign_features, "category")
        qual = creative_quality(r.candidates, cat)  # (N, K, 4)
        parts = creative_parts(r.candidates)  # (N, K, P)
        P, nb = parts.shape[-1], base.shape[1] + 4
        cols_dense = np.broadcast_to(np.arange(nb), (N, K, nb))
        vals_dense = np.concatenate([np.broadcast_to(base[:, None], (N, K, base.shape[1])), qual], -1)
        cols_int = nb + (parts[..., None] * G + np.arange(G)).reshape(N, K, P * G)
        vals_int = np.broadcast_to(z[:, None, None, :], (N, K, P, G)).reshape(N, K, P * G)
        cols = np.concatenate([cols_dense, cols_int], -1).reshape(N * K, -1)
        vals = np.concatenate([vals_dense, vals_int], -1).reshape(N * K, -1)
        width = cols.shape[1]
        indptr = np.arange(0, N * K * width + 1, width)
        return sp.csr_matrix((vals.ravel(), cols.ravel(), indptr), shape=(N * K, nb + self.n_parts * G))

    def fit(self, shown: Request, clicks: np.ndarray) -> LogisticCTR:
        """Fit on logged impressions: ``shown.candidates`` (M, 1, S) were shown, ``clicks`` (M,)."""
        if shown.candidates.shape[1] != 1 or len(clicks) != shown.candidates.shape[0]:
            raise ValueError(f"expected one shown creative per impression, got candidates "
                             f"{shown.candidates.shape} and clicks {np.shape(clicks)}")
        self.model = LogisticRegression(C=self.C, max_iter=300)
        self.model.fit(self.features(shown), np.asarray(clicks, dtype=np.int64))
        return self

    # --------------------------------------------------------------- CTREstimator protocol
    def reset(self) -> None:
        """Nothing to forget: the model is trained offline."""

    def estimate(self, request: Request) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("LogisticCTR.estimate before fit()")
        N, K = request.candidates.shape[:2]
        return self.model.predict_proba(self.features(request))[:, 1].reshape(N, K).astype(np.float32)

    def observe(self, request: Request, actions: np.ndarray, clicks: np.ndarray) -> None:
        """Offline model: feedback is not used online."""


def log_impressions(config: EnvConfig, n_steps: int, num_envs: int, seed: int,
                    candidate_source: CandidateSource | None = None) -> tuple[Request, np.ndarray]:
    """Impressions of a uniformly random logging policy on a ``SelectionCore`` (any candidate source),
    logged by the one logging path (:func:`adsim.collect.collect_log`).

    ``seed`` gives the request streams and the action draws as independent children of
    ``SeedSequence(seed)`` (:meth:`adsim.collect.LogStreams.from_seed`).

    Returns:
        the shown creatives as a ``Request`` (M, 1, S) with M = n_steps · num_envs, and clicks (M,)
        — a view of the log (:func:`adsim.collect.shown_request`).
    """
    check_int("n_steps", n_steps, 1)
    check_int("num_envs", num_envs, 1)
    core = SelectionCore(config.replace(horizon=max(config.horizon, n_steps)), num_envs,
                         candidate_source=candidate_source)
    log = collect_log(UniformLogging(), core, n_steps * num_envs, LogStreams.from_seed(seed))
    return shown_request(log), log.click.astype(bool)
