"""Logged impressions: collected from the vector env under a logging policy, stored as Parquet.

Schema (one row per impression; ``U`` = user_dim, ``K`` = candidates per request)::

    | column            | Arrow type                  | meaning                                             |
    |-------------------|-----------------------------|-----------------------------------------------------|
    | step              | int64                       | env step of the impression                          |
    | slot              | int32                       | sub-env (request slot) index                        |
    | campaign_id       | int32                       | campaign of the request                             |
    | user              | fixed_size_list<float>[U]   | observed user features                              |
    | context           | fixed_size_list<float>[22]  | observed context features                           |
    | campaign          | fixed_size_list<float>[17]  | observed campaign features                          |
    | creative          | fixed_size_list<int64>[9]   | id vector of the shown creative                     |
    | action            | int32                       | index of the shown creative among the K candidates  |
    | n_candidates      | int32                       | K                                                   |
    | propensity        | double                      | logging policy's probability of ``action``, (0, 1]  |
    | click             | int8                        | 1 if clicked, else 0                                |
    | oracle_click_prob | double                      | TRUE click probability — for evaluation only        |

The file's schema metadata holds ``adsim.logging`` (JSON: scenario config, logging policy, seed, and
``world``, the fingerprint of the world it was logged in: ``adsim.world.World.fingerprint``).
``oracle_click_prob`` is what only a simulator knows: :class:`Impressions` keeps it in its own
field and the feature pipeline never reads it.

The table is a view of the one logged-feedback record: :func:`log_impressions` runs the one logging
path (``adsim.collect.collect_log``, uniform random or ε-greedy on the observed ``ctr_estimate``)
and :func:`impressions_from_log` turns its :class:`~adsim.ope.log.BanditLog` into this table.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from adsim.collect import EstimateEpsilonGreedy, LogStreams, UniformLogging, collect_log
from adsim.config import EnvConfig
from adsim.selection import SelectionCore
from adsim.creative.sampler import CREATIVE_SLOTS
from adsim.ope.log import BanditLog
from adsim.users import held_out_users  # noqa: F401  (re-exported: the split is shared, adsim.users)
from adsim.validation import check_choice, check_float, check_int, check_seed

LOGGING_POLICIES = ("uniform", "egreedy")
FEATURE_COLUMNS = ("user", "context", "campaign", "creative")
SCALAR_COLUMNS = {"step": pa.int64(), "slot": pa.int32(), "campaign_id": pa.int32(), "action": pa.int32(),
                  "n_candidates": pa.int32(), "propensity": pa.float64(), "click": pa.int8(),
                  "oracle_click_prob": pa.float64()}
LIST_TYPES = {"user": pa.float32(), "context": pa.float32(), "campaign": pa.float32(), "creative": pa.int64()}


@dataclass(frozen=True)
class Impressions:
    """A batch of logged impressions (M rows). ``oracle_click_prob`` is for evaluation only."""

    user: np.ndarray  # (M, U) float32
    context: np.ndarray  # (M, 22) float32
    campaign: np.ndarray  # (M, 17) float32
    creative: np.ndarray  # (M, CREATIVE_SLOTS) int64
    campaign_id: np.ndarray  # (M,) int32
    action: np.ndarray  # (M,) int32
    n_candidates: np.ndarray  # (M,) int32
    propensity: np.ndarray  # (M,) float64
    click: np.ndarray  # (M,) int8
    step: np.ndarray  # (M,) int64
    slot: np.ndarray  # (M,) int32
    oracle_click_prob: np.ndarray  # (M,) float64
    metadata: dict = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.click.shape[0])

    def take(self, rows: np.ndarray) -> Impressions:
        """The impressions at ``rows`` (an index array)."""
        arrays = {f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self) if f.name != "metadata"}
        return Impressions(**arrays, metadata=self.metadata)


def log_impressions(config: EnvConfig, n_impressions: int, *, policy: str = "uniform", epsilon: float = 0.1,
                    num_envs: int = 1000, seed: int = 0, progress: bool = False) -> Impressions:
    """Log impressions of a logging policy with the one logging path, as the CTR training table.

    Args:
        config: the scenario.
        n_impressions: impressions to log (the last step of ``num_envs`` slots may be cut short).
        policy: ``"uniform"`` or ``"egreedy"`` (ε-greedy on the observation's ``ctr_estimate``).
        epsilon: exploration probability of ``"egreedy"``.
        num_envs: request slots stepped together.
        seed: scenario stream seed (the slots read the child streams of ``SeedSequence(seed)``, as a
            vector env reset with ``seed``); the actions are drawn from ``SeedSequence([seed, 7])``.
        progress: show a tqdm bar.
    """
    if not isinstance(config, EnvConfig):
        raise TypeError(f"config must be an EnvConfig, got {type(config).__name__}")
    check_int("n_impressions", n_impressions, 1)
    from adsim.memory import check_memory, impressions_bytes

    check_memory(impressions_bytes(n_impressions), f"logging n_impressions == {n_impressions}",
                 "n_impressions (the IMPRESSIONS of ctr_model='NAME:IMPRESSIONS', --impressions)")
    check_choice("policy", policy, LOGGING_POLICIES)
    check_float("epsilon", epsilon, 0.0, 1.0)
    check_int("num_envs", num_envs, 1)
    check_seed(seed)
    num_envs = min(num_envs, n_impressions)
    logging_policy = UniformLogging() if policy == "uniform" else EstimateEpsilonGreedy(epsilon)
    from adsim.world import world_fingerprint

    meta = {"config": _config_dict(config), "world": world_fingerprint(config.world), "policy": policy,
            "epsilon": epsilon, "seed": seed, "num_envs": num_envs}
    # these streams (not LogStreams.from_seed) keep the CTR data of every committed figure unchanged
    streams = LogStreams(core=seed, policy=None, draw=np.random.SeedSequence([seed, 7]))
    log = collect_log(logging_policy, SelectionCore(config, num_envs), n_impressions, streams,
                      progress=progress, meta=meta)
    return impressions_from_log(log)


def impressions_from_log(log: BanditLog) -> Impressions:
    """The CTR training table of a log (a view: the shown creative of every round, its click, the
    propensity and, kept apart, its true click probability)."""
    missing = [c for c in ("click", "click_probs", "campaign_id", "step", "slot", "obs_dims")
               if getattr(log, c) is None]
    if missing:
        raise ValueError(f"this log lacks {missing}, which the CTR training table needs (log it with "
                         "adsim.collect.collect_log)")
    obs, rows = log.observations(), np.arange(log.n_rounds)
    arrays = dict(user=obs["user"], context=obs["context"], campaign=obs["campaign"],
                  creative=log.action_context[rows, log.action], campaign_id=log.campaign_id, action=log.action,
                  propensity=log.pscore, click=log.click, step=log.step, slot=log.slot,
                  oracle_click_prob=log.click_probs[rows, log.action])
    return _impressions_from_arrays(arrays, log.n_actions, dict(log.meta))


def _impressions_from_arrays(a: dict, n_candidates: int, meta: dict) -> Impressions:
    m = a["click"].shape[0]
    return Impressions(
        user=a["user"].astype(np.float32), context=a["context"].astype(np.float32),
        campaign=a["campaign"].astype(np.float32), creative=a["creative"].astype(np.int64),
        campaign_id=a["campaign_id"].astype(np.int32), action=a["action"].astype(np.int32),
        n_candidates=np.full(m, n_candidates, np.int32), propensity=a["propensity"].astype(np.float64),
        click=a["click"].astype(np.int8), step=a["step"].astype(np.int64), slot=a["slot"].astype(np.int32),
        oracle_click_prob=a["oracle_click_prob"].astype(np.float64), metadata=meta)


def _config_dict(config: EnvConfig) -> dict:
    return dataclasses.asdict(config)


def to_table(imp: Impressions) -> pa.Table:
    """An Arrow table with the documented schema."""
    cols = {}
    for name in ("step", "slot", "campaign_id"):
        cols[name] = pa.array(getattr(imp, name), type=SCALAR_COLUMNS[name])
    for name in FEATURE_COLUMNS:
        x = np.ascontiguousarray(getattr(imp, name))
        flat = pa.array(x.reshape(-1), type=LIST_TYPES[name])
        cols[name] = pa.FixedSizeListArray.from_arrays(flat, x.shape[1])
    for name in ("action", "n_candidates", "propensity", "click", "oracle_click_prob"):
        cols[name] = pa.array(getattr(imp, name), type=SCALAR_COLUMNS[name])
    table = pa.table(cols)
    return table.replace_schema_metadata({"adsim.logging": json.dumps(imp.metadata)})


def save_impressions(imp: Impressions, path: str | Path) -> Path:
    """Write impressions to a Parquet file (schema in the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(to_table(imp), path)
    return path


def load_impressions(path: str | Path) -> Impressions:
    """Read and validate a Parquet file of impressions (see :func:`from_table` for the checks)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"impressions file {str(path)!r} does not exist")
    return from_table(pq.read_table(path))


def from_table(table: pa.Table) -> Impressions:
    """Validate an Arrow table against the schema and convert it.

    Raises:
        ValueError: missing columns, no rows, list widths that disagree, NaN or infinite features,
            clicks not in {0, 1}, propensities outside (0, 1], creative ids out of range, actions
            outside [0, n_candidates).
        TypeError: a column of the wrong Arrow type.
    """
    if not isinstance(table, pa.Table):
        raise TypeError(f"table must be a pyarrow.Table, got {type(table).__name__}")
    missing = [c for c in (*SCALAR_COLUMNS, *FEATURE_COLUMNS) if c not in table.column_names]
    if missing:
        raise ValueError(f"impressions table is missing columns {missing}; has {table.column_names}")
    if table.num_rows == 0:
        raise ValueError("impressions table is empty (0 rows); log some impressions first")
    arrays = {}
    for name, typ in SCALAR_COLUMNS.items():
        col = table.column(name)
        if col.type != typ:
            raise TypeError(f"column {name!r} has type {col.type}, expected {typ}")
        if col.null_count:
            raise ValueError(f"column {name!r} has {col.null_count} nulls")
        arrays[name] = col.to_numpy()
    for name, typ in LIST_TYPES.items():
        arrays[name] = _list_column(table, name, typ)
    _check_values(arrays)
    meta = json.loads((table.schema.metadata or {}).get(b"adsim.logging", b"{}"))
    k = int(arrays["n_candidates"][0])
    return _impressions_from_arrays(arrays, k, meta)


def _list_column(table: pa.Table, name: str, typ: pa.DataType) -> np.ndarray:
    col = table.column(name).combine_chunks()
    if not pa.types.is_fixed_size_list(col.type) or col.type.value_type != typ:
        raise TypeError(f"column {name!r} has type {col.type}, expected fixed_size_list<{typ}>")
    if col.null_count or col.values.null_count:
        raise ValueError(f"column {name!r} has nulls")
    width = col.type.list_size
    return col.values.to_numpy(zero_copy_only=False).reshape(-1, width)


def _check_values(a: dict) -> None:
    for name in ("user", "context", "campaign"):
        bad = ~np.isfinite(a[name])
        if bad.any():
            row = int(np.argwhere(bad)[0, 0])
            raise ValueError(f"column {name!r} has {int(bad.sum())} NaN/infinite features (first at row {row})")
    if a["creative"].shape[1] != CREATIVE_SLOTS:
        raise ValueError(f"column 'creative' has width {a['creative'].shape[1]}, expected {CREATIVE_SLOTS}")
    if not np.isin(a["click"], (0, 1)).all():
        raise ValueError(f"column 'click' must be 0 or 1, got values {np.unique(a['click'])[:5]}")
    p = a["propensity"]
    if not (np.isfinite(p).all() and (p > 0).all() and (p <= 1).all()):
        raise ValueError("column 'propensity' must be in (0, 1]")
    q = a["oracle_click_prob"]
    if not (np.isfinite(q).all() and (q >= 0).all() and (q <= 1).all()):
        raise ValueError("column 'oracle_click_prob' must be in [0, 1]")
    if (a["creative"] < 0).any():
        raise ValueError("column 'creative' has negative ids")
    if len(np.unique(a["n_candidates"])) != 1:
        raise ValueError("column 'n_candidates' must be constant within a file")
    k = int(a["n_candidates"][0])
    if k < 2:
        raise ValueError(f"column 'n_candidates' == {k}, must be >= 2")
    bad = (a["action"] < 0) | (a["action"] >= k)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"column 'action' == {int(a['action'][row])} at row {row}, must be in [0, {k - 1}] "
                         f"(n_candidates == {k})")


__all__ = ["Impressions", "held_out_users", "log_impressions", "impressions_from_log", "save_impressions", "load_impressions", "from_table", "to_table",
           "LOGGING_POLICIES"]
