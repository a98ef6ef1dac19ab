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

:func:`save_reward_model` / :func:`load_reward_model` store a reward model without pickle: a
directory with ``reward.json`` (format, kind, hyper-parameters and the world fingerprint) and
either ``logistic.npz`` (the regression's coefficient arrays, read with ``allow_pickle=False``) or
``ctr/`` (an ``adsim.ctr`` model: JSON plus a ``weights_only`` state dict).
"""

from __future__ import annotations

import json
from pathlib import Path

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


REWARD_FORMAT = "adsim.reward/1"


def save_reward_model(ctr, path: str | Path, world) -> Path:
    """Write a fitted :class:`LogisticCTR` or ``adsim.ctr.LearnedCTR`` into directory ``path``.

    Args:
        ctr: the reward model.
        path: the directory (created).
        world: the ``World`` (or ``WorldConfig``) it was trained in; its fingerprint is recorded.
    """
    from adsim.world import world_fingerprint

    path = Path(path)
    doc = {"format": REWARD_FORMAT, "world": world_fingerprint(world)}
    if isinstance(ctr, LogisticCTR):
        if ctr.model is None:
            raise ValueError("save_reward_model: the LogisticCTR is not fitted; call fit() first")
        path.mkdir(parents=True, exist_ok=True)
        m = ctr.model
        np.savez(path / "logistic.npz", coef=m.coef_, intercept=m.intercept_, classes=m.classes_)
        doc.update(kind="logistic", n_interest_tags=ctr.n_interest_tags, C=ctr.C)
    else:
        from adsim.ctr import LearnedCTR

        if not isinstance(ctr, LearnedCTR):
            raise TypeError(f"ctr must be a LogisticCTR or LearnedCTR, got {type(ctr).__name__}")
        path.mkdir(parents=True, exist_ok=True)
        ctr.model.save(path / "ctr")
        doc.update(kind="learned")
    (path / "reward.json").write_text(json.dumps(doc, indent=2) + "\n")
    return path


def load_reward_model(path: str | Path, world, *, allow_other_world: bool = False):
    """Load a reward model written by :func:`save_reward_model` (no pickle is read).

    Raises:
        ValueError: not such a directory, an unknown format, or a model of another world than
            ``world`` (a ``World`` or ``WorldConfig``) unless ``allow_other_world``.
    """
    from adsim.world import check_world

    path = Path(path)
    if not (path / "reward.json").is_file():
        raise ValueError(f"reward model {str(path)!r} must be a directory with reward.json "
                         "(written by adsim.generator.reward.save_reward_model)")
    doc = json.loads((path / "reward.json").read_text())
    if doc.get("format") != REWARD_FORMAT:
        raise ValueError(f"{path / 'reward.json'}: format {doc.get('format')!r}, expected {REWARD_FORMAT!r}")
    check_world(doc.get("world"), world, f"reward model {str(path)!r}", allow_other_world=allow_other_world)
    if doc.get("kind") == "logistic":
        ctr = LogisticCTR(int(doc["n_interest_tags"]), float(doc["C"]))
        with np.load(path / "logistic.npz", allow_pickle=False) as z:
            m = LogisticRegression(C=ctr.C, max_iter=300)
            m.coef_, m.intercept_, m.classes_ = z["coef"], z["intercept"], z["classes"]
        m.n_features_in_ = m.coef_.shape[1]
        ctr.model = m
        return ctr
    if doc.get("kind") == "learned":
        from adsim.ctr import LearnedCTR

        return LearnedCTR(path / "ctr", allow_other_world=True)  # checked above, against reward.json
    raise ValueError(f"{path / 'reward.json'}: kind {doc.get('kind')!r}, expected 'logistic' or 'learned'")


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
