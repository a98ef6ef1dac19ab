"""Fidelity against a real log: the statistics a logged-bandit file and the simulator share.

A click log in the Open Bandit Dataset (OBD) format — one row per impression, with ``item_id``,
``position`` (1 = top), ``click`` (0/1), ``propensity_score`` and categorical ``user_feature_*``
columns — and a log the simulator writes through its one logging path
(:func:`adsim.collect.collect_log`, a uniformly random logger) are both reduced to a
:class:`ClickLog`, and :func:`log_statistics` computes, with 95 % intervals:

* the overall CTR (Wilson interval, ``scipy.stats.binomtest``);
* the CTR per position, and each position's CTR relative to the top position (relative risk with
  its interval, ``scipy.stats.contingency.relative_risk``);
* the spread of CTR across items: the between-item coefficient of variation, with the binomial
  noise of each item's few impressions removed (method of moments), and a percentile bootstrap over
  items (``scipy.stats.bootstrap``);
* the CTR per value of each user group field and of the hour-of-day bucket (the OBD timestamp's
  hour, in the simulator's four 6-hour buckets), and the same spread across a field's values.

In the simulator an *item* is a creative of a campaign's pool (campaign × arm), its user groups are
the observed demographic fields. :func:`read_obd` is the project's own reader (obp 0.4.1's loader
fails under pandas 3), and :func:`obd_sample_path` finds the 10,000-row sample that ships inside the
``obp`` package without importing it.

**Slates.** A ZOZOTOWN page shows 3 items, one per position; the OBD has one row per (page,
position). :func:`read_obd` groups rows into pages by this rule: rows with the same ``timestamp``
and the same ``user_feature_*`` values are one page (:attr:`ClickLog.page`). In the 10,000-row
samples shipped with obp 0.4.1 the rule finds almost no page with more than one row — the sample
is a subsample of rows, not of pages: ``random/all`` has 9,991 pages, 9 of two rows and none of
three; ``bts/all`` has 9,999, one of two rows (see :func:`page_summary`). So the samples hold **no
complete slate**. :func:`slate_log` turns a click log into a :class:`SlateLog` (wide: (n, L) items,
clicks, marginal propensities) either from its complete pages (``how="pages"``: a full OBD log, or a
file written by :func:`write_obd`) or, for a *context-free* logger, as pseudo-slates
(``how="by_position"``): slate ``j`` takes the ``j``-th row logged at each position. Under a
context-free logger each position's rows are independent draws of that logger's marginal, so a
pseudo-slate is a slate of a logger that fills positions independently (``μ(s) = Π_l μ_l(s_l)``,
items may repeat), with the page's rewards independent across positions — a log the position-wise
and product-form slate estimators can evaluate. :func:`write_obd` writes a slate log as an OBD CSV
(one row per position, one timestamp per slate) that :func:`read_obd` reads back identically.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adsim.validation import check_choice, check_int

OBD_POLICIES = ("random", "bts")
OBD_CAMPAIGNS = ("all", "men", "women")
OBD_REQUIRED = ("item_id", "position", "click", "propensity_score")
MIN_BOOTSTRAP_UNITS = 5
"""Fewest units (items, group values) a spread gets a bootstrap interval for."""


@dataclass(frozen=True)
class ClickLog:
    """Impressions of a log, reduced to what the fidelity statistics read.

    Attributes:
        item: (n,) int64 item id of each impression.
        position: (n,) int64 position, 0 = top.
        click: (n,) int8 1 if clicked.
        groups: user group fields, each (n,) int64 codes.
        source: where the log came from (a path, or the simulator's config).
        pscore: (n,) float64 or None, the logger's propensity of the row's item at its position.
        page: (n,) int64 or None, the page (slate) of each row, numbered in order of appearance;
            rows of one page share a timestamp and user features (see the module docstring).
        timestamp: (n,) int64 or None, nanoseconds since the epoch (UTC).
    """

    item: np.ndarray
    position: np.ndarray
    click: np.ndarray
    groups: dict[str, np.ndarray]
    source: str
    pscore: np.ndarray | None = None
    page: np.ndarray | None = None
    timestamp: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.click)
        if n == 0:
            raise ValueError(f"{self.source}: the log has no impressions")
        extra = [(k, getattr(self, k)) for k in ("pscore", "page", "timestamp") if getattr(self, k) is not None]
        for name, col in (("item", self.item), ("position", self.position), *self.groups.items(), *extra):
            if len(col) != n:
                raise ValueError(f"{self.source}: column {name!r} has {len(col)} rows, click has {n}")


def obd_sample_path(policy: str = "random", campaign: str = "all") -> Path:
    """The Open Bandit Dataset sample (10,000 rows) that ships inside the ``obp`` package.

    Raises:
        FileNotFoundError: when ``obp`` is not installed (it is optional).
    """
    check_choice("policy", policy, OBD_POLICIES)
    check_choice("campaign", campaign, OBD_CAMPAIGNS)
    spec = importlib.util.find_spec("obp")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the Open Bandit Dataset sample ships inside the optional package obp "
                                "(pip install obp==0.4.1); pass --log FILE instead")
    path = Path(next(iter(spec.submodule_search_locations))) / "dataset" / "obd" / policy / campaign / f"{campaign}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no OBD sample at {path}")
    return path


def read_obd(path: str | Path) -> ClickLog:
    """Read a logged-bandit CSV in the Open Bandit Dataset format (checked, nothing converted silently).

    Raises:
        ValueError: naming the file and the column when a required column is missing, a click is
            not 0/1, a position is not a positive integer or a propensity is outside (0, 1].
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--log {str(path)!r} is not a file")
    frame = pd.read_csv(path, index_col=0)
    missing = [c for c in OBD_REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing OBD column(s) {missing}; an OBD log has {list(OBD_REQUIRED)} and "
                         "user_feature_* columns")
    for col in ("item_id", "position", "click"):
        if not pd.api.types.is_integer_dtype(frame[col]):
            raise ValueError(f"{path}: column {col!r} must hold integers, got {frame[col].dtype}")
    click, position = frame["click"].to_numpy(), frame["position"].to_numpy()
    if not np.isin(click, (0, 1)).all():
        raise ValueError(f"{path}: column 'click' must be 0 or 1")
    if position.min() < 1:
        raise ValueError(f"{path}: column 'position' must be >= 1 (1 = top), got {position.min()}")
    pscore = frame["propensity_score"].to_numpy(dtype=np.float64)
    if not ((pscore > 0) & (pscore <= 1)).all():
        raise ValueError(f"{path}: column 'propensity_score' must be in (0, 1]")
    features = [c for c in sorted(frame.columns) if c.startswith("user_feature_")]
    groups = {c: pd.factorize(frame[c], sort=True)[0].astype(np.int64) for c in features}
    timestamp, page = None, np.arange(len(frame), dtype=np.int64)
    if "timestamp" in frame.columns:  # the request's context: hour of day in the simulator's 4 buckets
        hour = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
        if hour.notna().all():
            groups["hour_bucket"] = (hour.dt.hour.to_numpy() // 6).astype(np.int64)
            timestamp = hour.dt.tz_convert(None).dt.as_unit("ns").to_numpy().view(np.int64)
            key = pd.MultiIndex.from_arrays([timestamp, *(frame[c].astype(str) for c in features)])
            page = pd.factorize(key)[0].astype(np.int64)  # rows of one page: one timestamp, one user
    return ClickLog(frame["item_id"].to_numpy(np.int64), position.astype(np.int64) - 1, click.astype(np.int8),
                    groups, str(path), pscore=pscore, page=page, timestamp=timestamp)


SLATE_HOW = ("pages", "by_position")


@dataclass(frozen=True, eq=False)
class SlateLog:
    """A slate log in the wide layout of :mod:`adsim.ope.slate`: ``n`` slates of ``L`` positions.

    Attributes:
        item: (n, L) int64 item shown at each position (0 = top).
        click: (n, L) int8 1 if that position was clicked.
        pscore: (n, L) float64 the logger's marginal propensity of each shown (item, position).
        timestamp: (n,) int64 or None, nanoseconds since the epoch (UTC), one per slate.
        source: where the log came from.
        how: ``"pages"`` (complete pages of the log) or ``"by_position"`` (pseudo-slates, see
            :func:`slate_log`).
    """

    item: np.ndarray
    click: np.ndarray
    pscore: np.ndarray
    timestamp: np.ndarray | None
    source: str
    how: str = "pages"

    def __post_init__(self):
        check_choice("how", self.how, SLATE_HOW)
        if self.item.ndim != 2 or self.item.shape[0] == 0:
            raise ValueError(f"{self.source}: item has shape {self.item.shape}, need (n_slates >= 1, L)")
        for name in ("click", "pscore"):
            if getattr(self, name).shape != self.item.shape:
                raise ValueError(f"{self.source}: {name} has shape {getattr(self, name).shape}, item has "
                                 f"{self.item.shape}")
        if self.timestamp is not None and self.timestamp.shape != (self.item.shape[0],):
            raise ValueError(f"{self.source}: timestamp has shape {self.timestamp.shape}, expected "
                             f"({self.item.shape[0]},): one per slate")

    @property
    def n_slates(self) -> int:
        return int(self.item.shape[0])

    @property
    def n_positions(self) -> int:
        return int(self.item.shape[1])

    def equals(self, other: "SlateLog") -> bool:
        """Same slates: items, clicks, propensities and timestamps (not the source)."""
        same_ts = (self.timestamp is None) == (other.timestamp is None) and (
            self.timestamp is None or np.array_equal(self.timestamp, other.timestamp))
        return bool(same_ts and self.how == other.how and all(
            np.array_equal(getattr(self, k), getattr(other, k)) for k in ("item", "click", "pscore")))


def page_summary(log: ClickLog, n_positions: int = 3) -> dict:
    """How the log's rows form pages (:attr:`ClickLog.page`): pages by number of rows, and the
    complete ones (every one of the ``n_positions`` positions once)."""
    check_int("n_positions", n_positions, 1, 10)
    if log.page is None:
        raise ValueError(f"{log.source}: the log has no page ids (read it with read_obd)")
    rows = np.bincount(log.page)
    complete = _complete_pages(log, n_positions)
    sizes = np.bincount(rows)
    return {"rows": int(len(log.click)), "pages": int(len(rows)),
            "pages_by_rows": {int(k): int(v) for k, v in enumerate(sizes) if k and v},
            "complete_pages": int(complete.sum()), "rows_in_complete_pages": int(complete.sum() * n_positions),
            "rule": "rows with the same timestamp and the same user_feature_* values form one page"}


def _complete_pages(log: ClickLog, n_positions: int) -> np.ndarray:
    """(n_pages,) bool: the page has exactly one row at every position 0..n_positions-1."""
    n_pages = int(log.page.max()) + 1
    rows = np.bincount(log.page, minlength=n_pages)
    covered = np.zeros((n_pages, n_positions), dtype=np.int64)
    inside = log.position < n_positions
    np.add.at(covered, (log.page[inside], log.position[inside]), 1)
    return (rows == n_positions) & (covered == 1).all(axis=1)


def slate_log(log: ClickLog, n_positions: int = 3, how: str = "pages") -> SlateLog:
    """The log as slates of ``n_positions`` (see the module docstring).

    ``how="pages"``: its complete pages, in order of appearance (rows of incomplete pages are
    dropped; :func:`page_summary` counts them). ``how="by_position"``: pseudo-slates — slate ``j``
    takes the ``j``-th row of each position in log order, ``min`` over positions of their row
    counts slates in all; valid only for a context-free logger (e.g. the OBD's uniform random one).

    Raises:
        ValueError: no propensities, no complete page (``"pages"``) or a position with no row.
    """
    check_int("n_positions", n_positions, 1, 10)
    check_choice("how", how, SLATE_HOW)
    if log.pscore is None:
        raise ValueError(f"{log.source}: the log has no propensity_score; a slate log needs the logger's propensities")
    if how == "pages":
        if log.page is None:
            raise ValueError(f"{log.source}: the log has no page ids (read it with read_obd)")
        complete = _complete_pages(log, n_positions)
        if not complete.any():
            summary = page_summary(log, n_positions)
            raise ValueError(f"{log.source}: no complete page of {n_positions} positions (pages by rows: "
                             f"{summary['pages_by_rows']}); the OBD samples in obp are row subsamples: use "
                             "how='by_position' for a context-free logger")
        keep = complete[log.page]
        order = np.lexsort((log.position[keep], log.page[keep]))  # by page, then position
        shape = (int(complete.sum()), n_positions)
        take = lambda col: col[keep][order].reshape(shape)  # noqa: E731
        ts = None if log.timestamp is None else take(log.timestamp)[:, 0]
        return SlateLog(take(log.item), take(log.click), take(log.pscore), ts, log.source, "pages")
    at = [np.flatnonzero(log.position == pos) for pos in range(n_positions)]
    n = min(len(rows) for rows in at)
    if n == 0:
        raise ValueError(f"{log.source}: position {min(range(n_positions), key=lambda p: len(at[p])) + 1} has no row")
    idx = np.stack([rows[:n] for rows in at], axis=1)
    return SlateLog(log.item[idx], log.click[idx], log.pscore[idx], None, log.source, "by_position")


def write_obd(slates: SlateLog, path: str | Path) -> Path:
    """Write a slate log as an OBD-format CSV: one row per (slate, position), positions 1-based,
    one timestamp per slate (the slate's own, or slate ``i`` at ``i`` microseconds after the epoch
    when it has none). :func:`read_obd` then :func:`slate_log` with ``how="pages"`` read it back."""
    import pandas as pd

    n, L = slates.item.shape
    ts = slates.timestamp if slates.timestamp is not None else np.arange(n, dtype=np.int64) * 1000
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(np.repeat(ts, L), utc=True).astype(str),
        "item_id": slates.item.reshape(-1), "position": np.tile(np.arange(1, L + 1), n),
        "click": slates.click.reshape(-1).astype(np.int64), "propensity_score": slates.pscore.reshape(-1)})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path)  # floats as their shortest round-trip repr
    return path


def simulated_log(env_config, n_impressions: int, seed: int = 0, num_envs: int = 1024) -> ClickLog:
    """A uniformly random logger's impressions in a pool scenario, through the one logging path.

    Items are the campaigns' pool creatives (``campaign × K + arm``); user groups are the observed
    demographic fields and the hour-of-day bucket of the context."""
    from adsim.collect import LogStreams, UniformLogging, collect_log
    from adsim.observation import CONTEXT_LAYOUT, DEMOGRAPHIC_FIELDS, user_layout
    from adsim.selection import SelectionCore

    check_int("n_impressions", n_impressions, 1, 10**8)
    if env_config.mode != "pool":
        raise ValueError(f"mode == {env_config.mode!r}: a fidelity log needs persistent items, mode 'pool'")
    core = SelectionCore(env_config, min(num_envs, n_impressions))
    log = collect_log(UniformLogging(), core, n_impressions, LogStreams.from_seed(seed))
    user, context = log.context[:, : log.obs_dims[0]], log.context[:, log.obs_dims[0]: sum(log.obs_dims[:2])]
    layout = user_layout(env_config.world.n_interest_tags)
    groups = {f: layout.take(user, f).argmax(axis=-1).astype(np.int64) for f in DEMOGRAPHIC_FIELDS}
    groups["hour_bucket"] = CONTEXT_LAYOUT.take(context, "hour_bucket").argmax(axis=-1).astype(np.int64)
    item = log.campaign_id * env_config.n_candidates + log.action
    return ClickLog(item, log.position, log.click.astype(np.int8), groups,
                    f"simulator (seed {seed}, {n_impressions} impressions)")


def _wilson(clicks: int, n: int) -> list[float]:
    from scipy.stats import binomtest

    ci = binomtest(int(clicks), int(n)).proportion_ci(method="wilson")
    return [float(ci.low), float(ci.high)]


def between_cv(clicks: np.ndarray, imps: np.ndarray, axis: int = -1) -> np.ndarray:
    """Between-unit coefficient of variation of CTR, binomial noise removed (method of moments):
    ``τ² = max(0, (Σ nᵢ(p̂ᵢ − p̂)² − (I − 1)·p̂(1 − p̂)) / (Σnᵢ − Σnᵢ²/Σnᵢ))``, CV = τ / p̂
    (0 when the observed spread is no more than binomial noise)."""
    clicks, imps = np.asarray(clicks, dtype=np.float64), np.asarray(imps, dtype=np.float64)
    n = imps.sum(axis, keepdims=True)
    p = clicks.sum(axis, keepdims=True) / np.maximum(n, 1)
    pi = clicks / np.maximum(imps, 1)
    units = (imps > 0).sum(axis, keepdims=True)
    q = (imps * (pi - p) ** 2).sum(axis, keepdims=True) - (units - 1) * p * (1 - p)
    denom = n - (imps**2).sum(axis, keepdims=True) / np.maximum(n, 1)
    tau2 = np.maximum(q, 0) / np.maximum(denom, 1e-300)
    return np.squeeze(np.where(p > 0, np.sqrt(tau2) / np.where(p > 0, p, 1), 0.0), axis)


def _spread(codes: np.ndarray, click: np.ndarray, seed: int) -> dict:
    """CTR spread across the values of ``codes``: the between-unit CV and its bootstrap interval."""
    from scipy.stats import bootstrap

    size = int(codes.max()) + 1
    imps = np.bincount(codes, minlength=size).astype(np.float64)
    clicks = np.bincount(codes, weights=click, minlength=size)
    keep = imps > 0
    imps, clicks = imps[keep], clicks[keep]
    cv = float(between_cv(clicks, imps))
    if len(imps) < MIN_BOOTSTRAP_UNITS:  # a bootstrap over a handful of units says nothing
        return {"units": int(len(imps)), "between_cv": cv, "ci95": None}
    res = bootstrap((clicks, imps), lambda c, n, axis=-1: between_cv(c, n, axis), paired=True, vectorized=True,
                    method="percentile", n_resamples=2000, rng=np.random.default_rng(seed))
    return {"units": int(len(imps)), "between_cv": cv,
            "ci95": [float(res.confidence_interval.low), float(res.confidence_interval.high)]}


def log_statistics(log: ClickLog, seed: int = 0, max_group_values: int = 12) -> dict:
    """The fidelity statistics of a log, with 95 % intervals (see the module docstring)."""
    from scipy.stats.contingency import relative_risk

    n, clicks = len(log.click), int(log.click.sum())
    out: dict = {"source": log.source, "impressions": n, "clicks": clicks,
                 "ctr": {"value": clicks / n, "ci95": _wilson(clicks, n)}}
    positions = []
    top_clicks, top_n = int(log.click[log.position == 0].sum()), int((log.position == 0).sum())
    for pos in range(int(log.position.max()) + 1):
        at = log.position == pos
        c, m = int(log.click[at].sum()), int(at.sum())
        row = {"position": pos + 1, "impressions": m, "share": m / n, "clicks": c,
               "ctr": c / m if m else float("nan"), "ctr_ci95": _wilson(c, m) if m else [float("nan")] * 2}
        if pos > 0 and m and top_n and top_clicks:
            rr = relative_risk(c, m, top_clicks, top_n)
            ci = rr.confidence_interval()
            row["ctr_over_top"], row["ctr_over_top_ci95"] = float(rr.relative_risk), [float(ci.low), float(ci.high)]
        positions.append(row)
    out["positions"] = positions
    out["item_spread"] = _spread(log.item, log.click, seed)
    groups = {}
    for name, codes in log.groups.items():
        size = int(codes.max()) + 1
        m = np.bincount(codes, minlength=size)
        c = np.bincount(codes, weights=log.click, minlength=size)
        order = np.argsort(-m, kind="stable")[:max_group_values]
        groups[name] = {"spread": _spread(codes, log.click, seed),
                        "values": [{"value": int(v), "share": float(m[v] / n), "ctr": float(c[v] / m[v]),
                                    "ctr_ci95": _wilson(c[v], m[v])} for v in order if m[v]]}
    out["groups"] = groups
    return out




def _excludes(ci, null: float) -> bool:
    """Whether a 95 % interval exists and excludes the no-effect value ``null``."""
    return ci is not None and not (ci[0] <= null <= ci[1])


def calibrate(stats: dict, base, target_ctr: float | None = None, n_impressions: int = 100_000, seed: int = 0,
              tol: float = 0.02) -> dict:
    """World parameters fitted to a log's :func:`log_statistics` — only those the log identifies.

    * ``target_ctr``: the log's CTR, or ``target_ctr`` when given (e.g. a published full-data CTR,
      far more precise than a sample's).
    * ``slot_shares``: the positions' shares of impressions.
    * ``slot_factors``: each position's CTR relative to the best position, if some position's CTR
      differs from the top's (its relative-risk interval excludes 1); else no position effect
      (all 1: the log cannot tell the positions apart).
    * ``creative_scale``: bisection on the simulated between-item CV of a uniformly random logger
      (``n_impressions`` per evaluation, in ``base``'s pool scenario) until it matches the log's
      within ``tol`` — if the log's interval excludes 0; else ``base``'s value is kept.

    Returns ``{"world": {field: value}, "identified": {...}, "evidence": {...}}``.
    """
    from adsim.config import N_SLOTS

    positions = stats["positions"]
    if len(positions) != N_SLOTS:
        raise ValueError(f"the log has {len(positions)} positions; adsim's pages have {N_SLOTS} ad slots")
    world: dict = {"target_ctr": float(stats["ctr"]["value"] if target_ctr is None else target_ctr)}
    shares = [p["share"] for p in positions]
    world["slot_shares"] = [*shares[:-1], 1.0 - sum(shares[:-1])]
    ratios = [1.0] + [p.get("ctr_over_top", float("nan")) for p in positions[1:]]
    pos_ok = any(_excludes(p.get("ctr_over_top_ci95"), 1.0) for p in positions[1:])
    world["slot_factors"] = [r / max(ratios) for r in ratios] if pos_ok else [1.0] * N_SLOTS
    spread = stats["item_spread"]
    spread_ok = _excludes(spread["ci95"], 0.0) and spread["between_cv"] > 0
    evidence = {"log_item_cv": spread["between_cv"], "log_item_cv_ci95": spread["ci95"]}
    scale = base.world.creative_scale
    if spread_ok:
        target = spread["between_cv"]

        def cv_at(s: float) -> float:
            log = simulated_log(base.replace(**world, creative_scale=s), n_impressions, seed)
            return log_statistics(log, seed)["item_spread"]["between_cv"]

        lo, hi = 0.0, 20.0  # creative_scale's range; 12 halvings: a resolution of 0.005
        for _ in range(12):
            scale = 0.5 * (lo + hi)
            got = cv_at(scale)
            if abs(got - target) <= tol:
                break
            lo, hi = (scale, hi) if got < target else (lo, scale)
        evidence["simulated_item_cv"] = got
    world["creative_scale"] = scale
    return {"world": world,
            "identified": {"target_ctr": True, "slot_shares": True, "slot_factors": pos_ok,
                           "creative_scale": spread_ok},
            "evidence": evidence}


__all__ = ["ClickLog", "OBD_CAMPAIGNS", "OBD_POLICIES", "SLATE_HOW", "SlateLog", "between_cv", "calibrate",
           "log_statistics", "obd_sample_path", "page_summary", "read_obd", "simulated_log", "slate_log", "write_obd"]
