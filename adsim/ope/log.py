"""Logged bandit feedback: one validated record of a policy's run, its Open Bandit Pipeline layout
and its Parquet file.

A :class:`BanditLog` holds, for ``n`` logged rounds with ``K`` candidates each, everything a policy
saw (so a *target* policy can be evaluated on the same observations), what the logging policy did
and the propensity it did it with, and — kept apart, for evaluation only — the simulator's true
expected reward of every candidate. Every array is checked when the log is built or loaded:
propensities must lie in (0, 1], lengths must agree, required columns must be present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REQUIRED = ("context", "action_context", "ctr_estimate", "action", "reward", "pscore", "position")
"""Columns every log must have."""
OPTIONAL = ("expected_reward", "pi_b", "click_probs")
"""(n, K) columns a log may have: the ground truth (simulated logs only), the logging policy's full
distribution, the true click probabilities (simulated logs only)."""
PER_ROUND = ("click", "campaign_id", "step", "slot")
"""(n,) integer columns a log may have: the click (the reward may be a conversion or revenue), the
campaign id, and the loop step and core slot the round was logged at."""
LOG_FILE = "log.parquet"
_PROB_TOL = 1e-6


def _array(name: str, value: Any, ndim: int, kind: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name} has shape {value.shape}, must have {ndim} dimension(s)")
    if kind == "int" and not np.issubdtype(value.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {value.dtype}")
    if kind == "float":
        if not np.issubdtype(value.dtype, np.number) or np.issubdtype(value.dtype, np.complexfloating):
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
        if not np.all(np.isfinite(value)):
            bad = np.flatnonzero(~np.isfinite(value.reshape(-1)))[0]
            raise ValueError(f"{name} must be finite; element {bad} is {value.reshape(-1)[bad]}")
    return value


@dataclass(frozen=True, eq=False)
class BanditLog:
    """``n`` rounds of logged bandit feedback with ``K`` candidates per round.

    Attributes:
        context: (n, d_x) float32 — observed user, context and campaign features, concatenated.
        action_context: (n, K, S) int64 — the candidates' id vectors (the obs ``candidates``).
        ctr_estimate: (n, K) float32 — the platform's CTR estimate per candidate, as observed.
        action: (n,) int64 — the candidate shown, in [0, K).
        reward: (n,) float64 — the observed reward.
        pscore: (n,) float64 — propensity of ``action`` under the logging policy, in (0, 1].
        position: (n,) int64 — ad slot of the request (0 = top).
        expected_reward: (n, K) float64 or None — true expected reward of every candidate
            (ground truth, evaluation only; never shown to an estimator's reward model).
        pi_b: (n, K) float64 or None — the logging policy's full action distribution.
        click_probs: (n, K) float64 or None — true click probability of every candidate (ground
            truth, evaluation only; equals ``expected_reward`` when the reward is the click).
        click: (n,) int8 or None — 1 if the shown creative was clicked.
        campaign_id: (n,) int64 or None — campaign of the request.
        step, slot: (n,) int64 or None — the collection loop's step and the core slot of the round.
        obs_dims: sizes of the ``user``, ``context`` and ``campaign`` parts of ``context``.
        meta: free JSON-able description (env config, logging policy, seed).
    """

    context: np.ndarray
    action_context: np.ndarray
    ctr_estimate: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    position: np.ndarray
    expected_reward: np.ndarray | None = None
    pi_b: np.ndarray | None = None
    click_probs: np.ndarray | None = None
    click: np.ndarray | None = None
    campaign_id: np.ndarray | None = None
    step: np.ndarray | None = None
    slot: np.ndarray | None = None
    obs_dims: tuple[int, int, int] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        _array("context", self.context, 2, "float")
        _array("action_context", self.action_context, 3, "int")
        _array("ctr_estimate", self.ctr_estimate, 2, "float")
        _array("action", self.action, 1, "int")
        _array("reward", self.reward, 1, "float")
        _array("pscore", self.pscore, 1, "float")
        _array("position", self.position, 1, "int")
        n, K = self.action.shape[0], self.ctr_estimate.shape[1]
        self._check_lengths(n, K)
        self._check_values(K)
        if self.obs_dims is not None:
            dims = tuple(int(d) for d in self.obs_dims)
            if len(dims) != 3 or min(dims) < 1 or sum(dims) != self.context.shape[1]:
                raise ValueError(f"obs_dims == {self.obs_dims}, must be 3 positive sizes summing to "
                                 f"context.shape[1] == {self.context.shape[1]}")
            object.__setattr__(self, "obs_dims", dims)

    def _check_lengths(self, n: int, K: int) -> None:
        if n == 0:
            raise ValueError("the log is empty (action has length 0), need at least one round")
        cols = {"context": self.context, "action_context": self.action_context,
                "ctr_estimate": self.ctr_estimate, "reward": self.reward, "pscore": self.pscore,
                "position": self.position}
        for name in OPTIONAL:
            if getattr(self, name) is not None:
                cols[name] = _array(name, getattr(self, name), 2, "float")
        for name in PER_ROUND:
            if getattr(self, name) is not None:
                cols[name] = _array(name, getattr(self, name), 1, "int")
        for name, arr in cols.items():
            if arr.shape[0] != n:
                raise ValueError(f"mismatched lengths: {name} has {arr.shape[0]} rounds, action has {n}")
        for name in ("action_context", *(c for c in OPTIONAL if c in cols)):
            if cols[name].shape[1] != K:
                raise ValueError(f"{name} has shape {cols[name].shape}, expected K == {K} candidates "
                                 f"(from ctr_estimate {self.ctr_estimate.shape})")

    def _check_values(self, K: int) -> None:
        p = self.pscore
        if np.any(p <= 0) or np.any(p > 1):
            i = int(np.flatnonzero((p <= 0) | (p > 1))[0])
            raise ValueError(f"pscore[{i}] == {p[i]}, propensities must be in (0, 1]; a zero propensity "
                             "means the logging policy could not have taken the action (wrap deterministic "
                             "policies in agents.mixture.EpsilonMixture)")
        if self.action.min() < 0 or self.action.max() >= K:
            bad = self.action[(self.action < 0) | (self.action >= K)][0]
            raise ValueError(f"action == {bad}, must be in [0, {K - 1}] (K == {K})")
        for name in ("position", *(c for c in PER_ROUND if getattr(self, c) is not None)):
            low = getattr(self, name).min()
            if low < 0:
                raise ValueError(f"{name} == {low}, must be >= 0")
        if self.click is not None and self.click.max() > 1:
            raise ValueError(f"click == {self.click.max()}, must be 0 or 1")
        if self.click_probs is not None and (self.click_probs.min() < 0 or self.click_probs.max() > 1):
            raise ValueError(f"click_probs must be in [0, 1], got values in [{self.click_probs.min()}, "
                             f"{self.click_probs.max()}]")
        if self.pi_b is not None:
            rows = np.arange(self.n_rounds)
            if np.any(self.pi_b < 0) or not np.allclose(self.pi_b.sum(axis=1), 1.0, atol=_PROB_TOL):
                raise ValueError("pi_b rows must be probability distributions (>= 0, summing to 1)")
            gap = np.abs(self.pi_b[rows, self.action] - p)
            if gap.max() > _PROB_TOL:
                i = int(np.argmax(gap))
                raise ValueError(f"pscore[{i}] == {p[i]} but pi_b[{i}, action] == {self.pi_b[i, self.action[i]]}")

    # ------------------------------------------------------------------ views
    @property
    def n_rounds(self) -> int:
        return int(self.action.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.ctr_estimate.shape[1])

    @property
    def n_positions(self) -> int:
        return int(self.position.max()) + 1

    def observations(self, rows: slice | np.ndarray = slice(None)) -> dict[str, np.ndarray]:
        """The logged rounds as a batched CreativeSelection observation dict (for target policies)."""
        if self.obs_dims is None:
            raise ValueError("this log has no obs_dims, so observations cannot be rebuilt")
        u, c, _ = self.obs_dims
        x = self.context[rows]
        return {"user": x[:, :u], "context": x[:, u:u + c], "campaign": x[:, u + c:],
                "candidates": self.action_context[rows].reshape(x.shape[0], -1),
                "ctr_estimate": self.ctr_estimate[rows]}

    def subset(self, rows: np.ndarray | slice) -> BanditLog:
        """The log restricted to some rounds (validated again)."""
        cols = {name: getattr(self, name)[rows] for name in REQUIRED}
        opt = {name: getattr(self, name)[rows] for name in (*OPTIONAL, *PER_ROUND) if getattr(self, name) is not None}
        return BanditLog(**cols, **opt, obs_dims=self.obs_dims, meta=dict(self.meta))

    def to_obp(self) -> dict[str, Any]:
        """Open Bandit Pipeline's ``bandit_feedback`` dict.

        ``position`` is the ad slot; pass :func:`obp_action_dist` of the target's probabilities to
        obp's estimators so its ``position`` indexes a real axis. ``action_context`` is per round,
        (n, K, S), because candidates change with the campaign (obp's ``RegressionModel`` wants
        (K, S): use ``action_context[0]`` when the candidate set is fixed).
        """
        out = {"n_rounds": self.n_rounds, "n_actions": self.n_actions, "context": self.context,
               "action": self.action, "reward": self.reward, "pscore": self.pscore,
               "position": self.position, "action_context": self.action_context,
               "expected_reward": self.expected_reward}
        if self.pi_b is not None:
            out["pi_b"] = self.pi_b[:, :, None]
        return out

    # ------------------------------------------------------------------ Parquet
    def save(self, path: str | Path) -> Path:
        """Write the log to ``path`` (a directory gets ``log.parquet`` inside); returns the file."""
        path = Path(path)
        if path.suffix != ".parquet":
            path.mkdir(parents=True, exist_ok=True)
            path = path / LOG_FILE
        cols = {name: getattr(self, name) for name in (*REQUIRED, *OPTIONAL, *PER_ROUND)
                if getattr(self, name) is not None}
        arrays = {name: _to_arrow(arr) for name, arr in cols.items()}
        shapes = {name: list(arr.shape[1:]) for name, arr in cols.items()}
        meta = {"adsim_log": json.dumps({"shapes": shapes, "obs_dims": self.obs_dims, "meta": self.meta})}
        pq.write_table(pa.table(arrays).replace_schema_metadata(meta), path)
        return path


def _to_arrow(arr: np.ndarray) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(arr).reshape(-1))
    width = int(np.prod(arr.shape[1:], dtype=np.int64))
    return flat if arr.ndim == 1 else pa.FixedSizeListArray.from_arrays(flat, width)


def _from_arrow(col: pa.ChunkedArray, shape: list[int]) -> np.ndarray:
    col = col.combine_chunks()
    if not shape:
        return col.to_numpy(zero_copy_only=False)
    return col.values.to_numpy(zero_copy_only=False).reshape(len(col), *shape)


def load_log(path: str | Path) -> BanditLog:
    """Read a log written by :meth:`BanditLog.save` (a ``.parquet`` file or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / LOG_FILE
    if not path.exists():
        raise FileNotFoundError(f"no log at {str(path)!r} (expected a .parquet file or a directory with {LOG_FILE})")
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"adsim_log")
    if raw is None:
        raise ValueError(f"{str(path)!r} is not an adsim log: schema metadata 'adsim_log' is missing")
    info = json.loads(raw)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ValueError(f"log {str(path)!r} is missing required column(s) {missing}; "
                         f"required: {list(REQUIRED)}")
    cols = {name: _from_arrow(table[name], info["shapes"][name])
            for name in (*REQUIRED, *OPTIONAL, *PER_ROUND) if name in table.column_names}
    dims = info.get("obs_dims")
    return BanditLog(**cols, obs_dims=tuple(dims) if dims else None, meta=info.get("meta", {}))


def obp_action_dist(probs: np.ndarray, n_positions: int) -> np.ndarray:
    """(n, K) target probabilities → obp's (n, K, len_list) ``action_dist``, one copy per ad slot.

    The target's probabilities were computed on each round's own observation (which includes its
    slot), so the copy at the logged position is the one obp reads.
    """
    return np.repeat(np.asarray(probs, dtype=np.float64)[:, :, None], n_positions, axis=2)
