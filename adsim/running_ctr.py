"""The CTR estimate an environment puts in every observation.

:class:`CTREstimator` is the interface: ``estimate(request) -> (N, K)`` and
``observe(request, actions, clicks)``. :class:`RunningCTR` is the built-in estimate, a smoothed
running CTR shared by all sub-environments of a vector env (one platform-wide model serving every
request slot), and reset by ``reset(seed=…)``:

* pool mode: per (campaign, arm) ``(clicks + s·m) / (impressions + s)``, where ``m`` is the running
  CTR of all impressions so far, itself shrunk towards 1 % with ``s`` pseudo-impressions;
* personalised mode (fresh creatives each request): the same smoothing per creative *part* (each
  phrase and visual attribute value), averaged over the candidate's parts.

A trained CTR model replaces it behind the same interface without changing the observation space.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

from adsim.creative.sampler import creative_parts

PRIOR_CTR = 0.01


class Request(NamedTuple):
    """The observable part of a batch of requests."""

    campaign: np.ndarray  # (N,) campaign ids
    user_features: np.ndarray  # (N, user_dim)
    context_features: np.ndarray  # (N, context_dim)
    campaign_features: np.ndarray  # (N, campaign_dim)
    candidates: np.ndarray  # (N, K, CREATIVE_SLOTS) int64


class CTREstimator(Protocol):
    def reset(self) -> None: ...

    def estimate(self, request: Request) -> np.ndarray: ...

    def observe(self, request: Request, actions: np.ndarray, clicks: np.ndarray) -> None: ...


class RunningCTR:
    """Smoothed running CTR per (campaign, arm) in pool mode or per creative part otherwise.

    One instance serves one world; stacked scenario seeds (``adsim.stacking``) give every stacked
    world its own instance, so nothing is ever shared between worlds.
    """

    def __init__(self, mode: str, n_campaigns: int, n_candidates: int, n_parts: int, strength: float,
                 prior: float = PRIOR_CTR):
        self.mode, self.strength, self.prior = mode, float(strength), float(prior)
        self.n_campaigns = n_campaigns
        self._shape = (n_campaigns, n_candidates) if mode == "pool" else (n_parts,)
        self.reset()

    def reset(self) -> None:
        self.imps = np.zeros(self._shape)
        self.clicks = np.zeros(self._shape)
        self.total = np.zeros(2)  # impressions, clicks

    def _prior(self) -> float:
        """Running CTR of all impressions so far, shrunk towards ``prior`` (default ``PRIOR_CTR``)."""
        return (self.total[1] + self.strength * self.prior) / (self.total[0] + self.strength)

    def estimate(self, request: Request) -> np.ndarray:
        m, s = self._prior(), self.strength
        if self.mode == "pool":
            c = request.campaign
            if c.shape[0] < self.n_campaigns:  # fewer requests than campaigns: only their rows
                return ((self.clicks.take(c, axis=0) + s * m) / (self.imps.take(c, axis=0) + s)).astype(np.float32)
            table = ((self.clicks + s * m) / (self.imps + s)).astype(np.float32)  # (n_campaigns, K)
            return table.take(c, axis=0)
        parts = creative_parts(request.candidates)
        ctr = (self.clicks + s * m) / (self.imps + s)  # (n_parts,)
        valid = parts > 0
        est = (ctr[parts] * valid).sum(-1) / np.maximum(valid.sum(-1), 1)
        return est.astype(np.float32)

    def observe(self, request: Request, actions: np.ndarray, clicks: np.ndarray) -> None:
        if self.mode == "pool" and actions.shape[0] == 1:  # one request: the same sums, without bincount
            c, a, k = int(request.campaign[0]), int(actions[0]), float(clicks[0])
            self.total[0] += 1.0
            self.total[1] += k
            self.imps[c, a] += 1.0
            self.clicks[c, a] += k
            return
        clicks = clicks.astype(np.float64)
        self.total += (clicks.size, clicks.sum())
        if self.mode == "pool":
            flat = request.campaign * self._shape[1] + actions
            size = self.imps.size
            self.imps += np.bincount(flat, minlength=size).reshape(self._shape)
            self.clicks += np.bincount(flat, weights=clicks, minlength=size).reshape(self._shape)
            return
        rows = np.arange(actions.shape[0])
        parts = creative_parts(request.candidates[rows, actions])  # (N, P)
        valid = parts > 0
        w = np.broadcast_to(clicks[:, None], parts.shape)[valid]
        size = self.imps.size
        self.imps += np.bincount(parts[valid], minlength=size)
        self.clicks += np.bincount(parts[valid], weights=w, minlength=size)
