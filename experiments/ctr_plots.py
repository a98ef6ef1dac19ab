"""Figures of the CTR models: reliability diagram and learning curve (matplotlib, written to files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def reliability_diagram(tables: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """Observed CTR against mean prediction per equal-mass bin, one line per model (and the oracle)."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    hi = 0.0
    for name, t in tables.items():
        style = {"color": "black", "linestyle": "--"} if name == "oracle" else {}
        ax.plot(t["mean_pred"], t["observed"], marker="o", markersize=3, label=name, **style)
        hi = max(hi, max(t["mean_pred"]), max(t["observed"]))
    ax.plot([0, hi], [0, hi], color="grey", linewidth=0.8, label="perfect calibration")
    ax.set_xlabel("mean predicted CTR (equal-mass bins)")
    ax.set_ylabel("observed CTR")
    ax.set_title(title or "Reliability diagram (held-out impressions)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def learning_curve(histories: dict[str, list[dict]], path: str | Path, oracle_log_loss: float | None = None) -> Path:
    """Validation log loss per epoch, one line per model; the oracle's held-out log loss as a line."""
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    for name, hist in histories.items():
        ax.plot([h["epoch"] for h in hist], [h["val_log_loss"] for h in hist], marker="o", markersize=3, label=name)
    if oracle_log_loss is not None:
        ax.axhline(oracle_log_loss, color="black", linestyle="--", linewidth=0.8, label="oracle (test)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation log loss")
    ax.set_title("Learning curve")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
