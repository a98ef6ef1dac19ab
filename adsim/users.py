"""The held-out user split shared by everything that is trained on the world's users and then
evaluated (``adsim train-ctr``'s CTR models, ``adsim train-generator``'s creative generator and its
reward model).

A user is identified by its observed vector (every user's is unique): a user is held out when a
uniform that is a pure function of (the vector's key, ``seed``) falls below ``fraction``. The split is
therefore the same in every log of a world and in every command given the same ``fraction`` and
``seed``, and needs no list of ids stored anywhere: a held-out user's rows can be dropped from
training data and evaluated as users the model never saw.
"""

from __future__ import annotations

import numpy as np

from adsim.validation import check_float, check_seed

DEFAULT_HELD_OUT_USERS = 0.2
"""Default share of users kept out of training by the commands (``--held-out-users``)."""
MAX_HELD_OUT_USERS = 0.9
"""Largest share a command may hold out (training keeps at least a tenth of the users)."""


def check_held_out_fraction(fraction, name: str = "held_out_users") -> float:
    """``fraction`` validated as a command's held-out share of users: a number in
    [0, :data:`MAX_HELD_OUT_USERS`] (0: no user split); returned as float."""
    check_float(name, fraction, 0.0, MAX_HELD_OUT_USERS)
    return float(fraction)


def held_out_users(user: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """(M,) bool: whether each row's user (observed vectors ``user``, (M, U)) is in the held-out
    share ``fraction`` (in [0, 1]) of users, for split ``seed``."""
    from adsim.rng import key_uniforms, row_keys

    check_float("fraction", fraction, 0.0, 1.0)
    check_seed(seed, many=False, seed_sequence=False)
    return key_uniforms(row_keys(user), seed) < fraction


def seen_user_ids(user_features: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """(n,) int64 ids (rows of a world's ``user_features``, (n_users, U)) of the users *not* held out:
    the users training data may be drawn from. Raises ``ValueError`` if the split leaves none."""
    ids = np.flatnonzero(~held_out_users(user_features, fraction, seed)).astype(np.int64)
    if ids.size == 0:
        raise ValueError(f"held-out user fraction == {fraction} (seed {seed}) holds out all "
                         f"{len(user_features)} users: none is left to train on")
    return ids


__all__ = ["DEFAULT_HELD_OUT_USERS", "MAX_HELD_OUT_USERS", "check_held_out_fraction", "held_out_users",
           "seen_user_ids"]
