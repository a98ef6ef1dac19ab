"""Observation and action spaces shared by the CreativeSelection envs."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from adsim.creative.parser import MAX_UNPARSED
from adsim.world import CONTEXT_DIM


def observation_space(world, n_candidates: int) -> spaces.Dict:
    """Dict space of one request of ``n_candidates`` candidates on a world (see the env docstring)."""
    w, K = world, n_candidates
    per_creative = np.concatenate([w.lexicon.candidate_nvec, [MAX_UNPARSED + 1]])
    nvec = np.tile(per_creative, K)
    return spaces.Dict(
        {
            "user": spaces.Box(0.0, 1.0, (w.user_dim,), np.float32),
            "context": spaces.Box(0.0, 1.0, (CONTEXT_DIM,), np.float32),
            "campaign": spaces.Box(0.0, 1.0, (w.campaign_dim,), np.float32),
            "candidates": spaces.MultiDiscrete(nvec),
            "ctr_estimate": spaces.Box(0.0, 1.0, (K,), np.float32),
        }
    )


def check_actions(actions, n_candidates: int, num_envs: int | None) -> np.ndarray:
    """Validate actions: integers in [0, K). Raises instead of clipping."""
    a = np.asarray(actions)
    if not np.issubdtype(a.dtype, np.integer):
        if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or not np.all(a == np.round(a)):
            raise TypeError(f"action must be integer, got {a.dtype} {actions!r}")
        a = a.astype(np.int64)
    expected = () if num_envs is None else (num_envs,)
    if a.shape != expected:
        raise ValueError(f"action shape {a.shape}, expected {expected}")
    if a.size and (a.min() < 0 or a.max() >= n_candidates):
        bad = a[(a < 0) | (a >= n_candidates)].flat[0]
        raise ValueError(f"action == {bad}, must be in [0, {n_candidates - 1}] (K = {n_candidates})")
    return a.reshape(-1).astype(np.int64)


def render_candidates(language: str, header: str, candidates: np.ndarray, probs: np.ndarray,
                      extra_name: str, extra: np.ndarray) -> str:
    """ANSI rendering of one request: a header line, then each candidate's true click probability,
    one more per-candidate figure, its headline and its visual attributes."""
    from adsim.creative.parser import HeadlineParser

    parser = HeadlineParser(language)
    lines = [header]
    for k, cand in enumerate(candidates):
        lines.append(f"  [{k}] p={probs[k]:.4f} {extra_name}={extra[k]:.4f} "
                     f"{parser.render_slots(cand[:4])!r} attrs={cand[4:8].tolist()}")
    return "\n".join(lines)
