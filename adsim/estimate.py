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

    ``groups`` > 1 keeps that many independent estimates side by side (stacked scenario seeds, see
    :class:`adsim.core.StackedSelectionCore`): request campaign ids are then global,
    ``group · n_campaigns + campaign``, and nothing is shared between groups.
    """

    def __init__(self, mode: str, n_campaigns: int, n_candidates: int, n_parts: int, strength: float,
                 groups: int = 1):
        self.mode, self.strength = mode, float(strength)
        self.n_campaigns, self.groups = n_campaigns, groups
        self._shape = (groups * n_campaigns, n_candidates) if mode == "pool" else (groups, n_parts)
        self.reset()

    def reset(self) -> None:
        self.imps = np.zeros(self._shape)
        self.clicks = np.zeros(self._shape)
        self.total = np.zeros((self.groups, 2))  # impressions, clicks per group

    def _prior(self) -> np.ndarray:
        """(groups,) running CTR of all impressions so far, shrunk towards ``PRIOR_CTR``."""
        return (self.total[:, 1] + self.strength * PRIOR_CTR) / (self.total[:, 0] + self.strength)

    def _group(self, request: Request) -> np.ndarray | int:
        return 0 if self.groups == 1 else request.campaign // self.n_campaigns

    def estimate(self, request: Request) -> np.ndarray:
        m, s = self._prior(), self.strength
        if self.mode == "pool":
            m = np.repeat(m, self.n_campaigns)[:, None]  # per table row
            table = ((self.clicks + s * m) / (self.imps + s)).astype(np.float32)  # (groups·n_campaigns, K)
            return table[request.campaign]
        parts = creative_parts(request.candidates)
        ctr = (self.clicks + s * m[:, None]) / (self.imps + s)  # (groups, n_parts)
        valid = parts > 0
        per_part = ctr[0][parts] if self.groups == 1 else ctr[self._group(request)[:, None, None], parts]
        est = (per_part * valid).sum(-1) / np.maximum(valid.sum(-1), 1)
        return est.astype(np.float32)

    def observe(self, request: Request, actions: np.ndarray, clicks: np.ndarray) -> None:
        clicks = clicks.astype(np.float64)
        if self.groups == 1:
            self.total[0] += (clicks.size, clicks.sum())
        else:
            g = self._group(request)
            self.total[:, 0] += np.bincount(g, minlength=self.groups)
            self.total[:, 1] += np.bincount(g, weights=clicks, minlength=self.groups)
        if self.mode == "pool":
            flat = request.campaign * self._shape[1] + actions
            size = self.imps.size
            self.imps += np.bincount(flat, minlength=size).reshape(self._shape)
            self.clicks += np.bincount(flat, weights=clicks, minlength=size).reshape(self._shape)
            return
        rows = np.arange(actions.shape[0])
        parts = creative_parts(request.candidates[rows, actions])  # (N, P)
        valid = parts > 0
        flat = (parts + np.reshape(self._group(request) * self._shape[1], (-1, 1)))[valid]  # (group, part)
        w = np.broadcast_to(clicks[:, None], parts.shape)[valid]
        size = self.imps.size
        self.imps += np.bincount(flat, minlength=size).reshape(self._shape)
        self.clicks += np.bincount(flat, weights=w, minlength=size).reshape(self._shape)


class GroupedEstimator:
    """G estimators side by side, one per stacked scenario (e.g. a learned CTR model per world).

    Requests are group-major: rows ``[g·B, (g+1)·B)`` go to estimator g, with campaign ids made
    local again (``campaign − g · n_campaigns``). One call per group and step.
    """

    def __init__(self, estimators, group_size: int, n_campaigns: int):
        self.estimators, self.group_size, self.n_campaigns = list(estimators), group_size, n_campaigns

    def _part(self, request: Request, g: int) -> Request:
        sl = slice(g * self.group_size, (g + 1) * self.group_size)
        return Request(request.campaign[sl] - g * self.n_campaigns, *(f[sl] for f in request[1:]))

    def reset(self) -> None:
        for e in self.estimators:
            e.reset()

    def estimate(self, request: Request) -> np.ndarray:
        return np.concatenate([e.estimate(self._part(request, g)) for g, e in enumerate(self.estimators)])

    def observe(self, request: Request, actions: np.ndarray, clicks: np.ndarray) -> None:
        B = self.group_size
        for g, e in enumerate(self.estimators):
            e.observe(self._part(request, g), actions[g * B:(g + 1) * B], clicks[g * B:(g + 1) * B])
