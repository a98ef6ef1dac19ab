"""``adsim fidelity`` and ``adsim calibrate``: the simulator's statistics beside a real log's, and
world parameters fitted to a log (:mod:`adsim.fidelity`)."""

from __future__ import annotations

import json
import sys


def _log_args(p) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--log", help="a logged-bandit CSV in the Open Bandit Dataset format")
    src.add_argument("--obd-sample", metavar="POLICY/CAMPAIGN", nargs="?", const="random/all",
                     help="the OBD sample inside the obp package (default random/all)")
    p.add_argument("--preset", default="default", help="the simulator's scenario (a pool preset)")
    p.add_argument("--impressions", type=int, default=100_000, help="impressions the simulator logs")
    p.add_argument("--seed", type=int, default=0)


def register(sub) -> None:
    p = sub.add_parser("fidelity", help="the simulator's CTR statistics beside a real log's, with 95 %% intervals")
    _log_args(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=run_fidelity)
    c = sub.add_parser("calibrate", help="fit the world parameters a real log identifies; print a preset (TOML)")
    _log_args(c)
    c.add_argument("--target-ctr", type=float, default=None,
                   help="use this CTR instead of the log's (e.g. a published full-data figure)")
    c.set_defaults(func=run_calibrate)


def _inputs(args):
    from adsim.config import make_config
    from adsim.fidelity import log_statistics, obd_sample_path, read_obd
    from adsim.validation import check_int

    check_int("--impressions", args.impressions, 1_000, 10**7)
    base = make_config(args.preset)
    if base.mode != "pool":
        raise ValueError(f"--preset {args.preset!r} has mode {base.mode!r}; fidelity compares items, use a pool preset")
    if args.log is not None:
        path = args.log
    else:
        policy, _, campaign = args.obd_sample.partition("/")
        try:
            path = obd_sample_path(policy, campaign or "all")
        except FileNotFoundError as err:
            raise ValueError(str(err)) from None
    return base, log_statistics(read_obd(path), args.seed)


def _fmt(x, ci=None, pct=False) -> str:
    if x is None or x != x:
        return "–"
    f = (lambda v: f"{100 * v:.3f} %") if pct else (lambda v: f"{v:.3f}")
    return f(x) + (f" [{f(ci[0])}, {f(ci[1])}]" if ci else "")


def table(log: dict, sim: dict) -> str:
    """Markdown: each statistic of the log beside the simulator's, with 95 % intervals."""
    rows = [("impressions (clicks)", f"{log['impressions']} ({log['clicks']})", f"{sim['impressions']} ({sim['clicks']})"),
            ("CTR", _fmt(log["ctr"]["value"], log["ctr"]["ci95"], True), _fmt(sim["ctr"]["value"], sim["ctr"]["ci95"], True))]
    for a, b in zip(log["positions"], sim["positions"]):
        rows.append((f"CTR at position {a['position']} (share {a['share']:.2f} / {b['share']:.2f})",
                     _fmt(a["ctr"], a["ctr_ci95"], True), _fmt(b["ctr"], b["ctr_ci95"], True)))
        if "ctr_over_top" in a or "ctr_over_top" in b:
            rows.append((f"position {a['position']} ÷ top", _fmt(a.get("ctr_over_top"), a.get("ctr_over_top_ci95")),
                         _fmt(b.get("ctr_over_top"), b.get("ctr_over_top_ci95"))))
    rows.append((f"between-item CV of CTR ({log['item_spread']['units']} / {sim['item_spread']['units']} items)",
                 _fmt(log["item_spread"]["between_cv"], log["item_spread"]["ci95"]),
                 _fmt(sim["item_spread"]["between_cv"], sim["item_spread"]["ci95"])))
    for name in [*log["groups"], *(g for g in sim["groups"] if g not in log["groups"])]:
        a, b = log["groups"].get(name), sim["groups"].get(name)
        units = " / ".join(str(g["spread"]["units"]) if g else "–" for g in (a, b))
        rows.append((f"between-group CV of CTR, field {name} ({units} values)",
                     _fmt(a["spread"]["between_cv"], a["spread"]["ci95"]) if a else "",
                     _fmt(b["spread"]["between_cv"], b["spread"]["ci95"]) if b else ""))
    lines = ["| statistic | log | simulator |", "|---|---:|---:|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def run_fidelity(args) -> int:
    from adsim.fidelity import log_statistics, simulated_log

    base, log = _inputs(args)
    sim = log_statistics(simulated_log(base, args.impressions, args.seed), args.seed)
    if args.json:
        from experiments.jsonout import dumps

        print(dumps({"log": log, "simulator": sim, "preset": args.preset}, indent=2))
    else:
        print(f"log: {log['source']}\nsimulator: preset {args.preset!r}, uniformly random logger, seed {args.seed}\n")
        print(table(log, sim))
    return 0


def run_calibrate(args) -> int:
    from adsim.fidelity import calibrate

    base, log = _inputs(args)
    if args.target_ctr is not None:
        from adsim.config import CTR_TARGET_RANGE
        from adsim.validation import check_float

        check_float("--target-ctr", args.target_ctr, *CTR_TARGET_RANGE)
    fit = calibrate(log, base, args.target_ctr, n_impressions=args.impressions, seed=args.seed)
    print(f"# adsim calibrate: fitted to {log['source']} ({log['impressions']} impressions, {log['clicks']} clicks)")
    unidentified = {"slot_factors": "no position effect", "creative_scale": f"--preset {args.preset!r}'s value"}
    for key, ok in fit["identified"].items():
        if not ok:
            print(f"# {key}: not identified by this log (its 95 % interval includes 'no effect'): "
                  f"{unidentified[key]}")
    print(f"# evidence: {json.dumps(fit['evidence'])}")
    for key, value in fit["world"].items():
        print(f"{key} = {json.dumps(value)}")
    sys.stdout.flush()
    return 0
