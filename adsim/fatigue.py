"""Fatigue: remembered exposure lowers the click logit of what was shown before.

One model serves every environment. Each (slot, viewer) keeps decayed counts of the visual attribute
values it was shown and, optionally, of the pool creatives themselves (``creative_weight`` > 0);
counts halve every ``halflife`` time units. A candidate's click-logit penalty is ::

    sens_u × (attribute_weight × Σ_{a ∈ attributes(c)} m(a) + creative_weight × m(c))

CreativeSelection keeps one memory per user of the population in each slot (a user met again
later in the episode remembers; time is the step), attribute values only (``fatigue_strength``).
AdSession keeps one viewer per slot, the session's user, with both terms (``fatigue_attribute``,
``fatigue_creative``) and time counted in impressions; its observation also reads the memories.

Decay is lazy: a memory is stored as of the viewer's last impression and decayed by
``0.5 ** (elapsed / halflife)`` when read (:meth:`Fatigue.penalty`) or updated
(:meth:`Fatigue.record`); a viewer shown something at every step decays by exactly
``0.5 ** (1 / halflife)`` per step. With pool creatives the per-candidate exposure
``creative_weight × m(c) + attribute_weight × Σ m(a)`` is kept directly, each impression adding its
gain ``creative_weight × [same creative] + attribute_weight × (attribute values in common)``.
"""

from __future__ import annotations

import numpy as np

FATIGUE_MEMORY_LIMIT = 1 << 31  # bytes


class Fatigue:
    """Exposure memory of ``n_slots × n_viewers`` viewers and the penalty it causes.

    Args:
        n_slots: N request slots.
        n_viewers: viewers remembered per slot (the user population, or 1 for a session's user).
        n_attr_values: size of the global attribute-value vocabulary.
        attribute_weight: logit penalty per remembered exposure of each attribute value.
        halflife: half-life of a memory, in the caller's time unit.
        n_creatives: K pool creatives to remember individually (0: none).
        creative_weight: logit penalty per remembered exposure of the same creative.
        dtype: float type of the memory.
    """

    def __init__(self, n_slots: int, n_viewers: int, n_attr_values: int, attribute_weight: float, halflife: float,
                 n_creatives: int = 0, creative_weight: float = 0.0, dtype=np.float32):
        need = n_slots * n_viewers * (n_attr_values + n_creatives) * np.dtype(dtype).itemsize
        if need > FATIGUE_MEMORY_LIMIT:
            raise ValueError(f"fatigue memory for num_envs == {n_slots} and n_users == {n_viewers} needs "
                             f"{need / 2**30:.1f} GiB (> 2 GiB); use fewer envs or users, or no fatigue")
        self.attribute_weight, self.creative_weight, self.halflife = attribute_weight, creative_weight, halflife
        self.attr = np.zeros((n_slots, n_viewers, n_attr_values), dtype=dtype)
        self.creative = np.zeros((n_slots, n_viewers, n_creatives), dtype=dtype)
        self.exposure = np.zeros((n_slots, n_viewers, n_creatives), dtype=dtype)
        """With pool creatives: each candidate's ``w_creative·m(c) + w_attribute·Σ m(a)``, kept directly."""
        self.last_seen = np.zeros((n_slots, n_viewers), dtype=np.float64)
        self.rows = np.arange(n_slots)

    def clear(self, rows: np.ndarray | None = None) -> None:
        """Forget everything the viewers of ``rows`` (default: all slots) were shown."""
        rows = slice(None) if rows is None else rows
        self.attr[rows] = 0.0
        self.creative[rows] = 0.0
        self.exposure[rows] = 0.0
        self.last_seen[rows] = 0.0

    def _decay(self, viewer: np.ndarray, now) -> np.ndarray:
        """(N,) retention of the viewers' memories from their last impression to ``now``."""
        return 0.5 ** ((now - self.last_seen[self.rows, viewer]) / self.halflife)

    def _memory(self, memory: np.ndarray, viewer: np.ndarray) -> np.ndarray:
        """(N, ·) the viewers' rows of ``memory``: a view with one viewer per slot, else a gather."""
        return memory[:, 0] if memory.shape[1] == 1 else memory[self.rows, viewer]

    def pool_gains(self, pool_attrs: np.ndarray) -> np.ndarray:
        """(C, K, K) exposure gain of candidate k when pool creative a is shown, for pools (C, K, N_ATTRS)."""
        K = pool_attrs.shape[1]
        shared = (pool_attrs[:, :, None, :] == pool_attrs[:, None, :, :]).sum(-1)  # attribute values in common
        return self.creative_weight * np.eye(K) + self.attribute_weight * shared

    def penalty(self, viewer: np.ndarray, now, attrs: np.ndarray, sensitivity: np.ndarray) -> np.ndarray:
        """(N, K) logit penalties of every slot's K candidates for its ``viewer`` (N,) at time ``now``.

        ``attrs`` (N, K, N_ATTRS): the candidates' global attribute-value ids; candidate k is pool
        creative k for the creative term. Reads the memories, does not change them.
        """
        decay = self._decay(viewer, now)[:, None]
        if self.exposure.shape[2]:  # pool creatives: the exposure of each candidate is kept
            return sensitivity[:, None] * (self._memory(self.exposure, viewer) * decay.astype(self.exposure.dtype))
        n = self.rows.shape[0]
        mem = self._memory(self.attr, viewer) * decay.astype(self.attr.dtype)  # (N, A)
        exposure = np.take_along_axis(mem, attrs.reshape(n, -1), 1).reshape(attrs.shape).sum(-1)  # (N, K)
        return self.attribute_weight * sensitivity[:, None] * exposure

    def record(self, viewer: np.ndarray, now, attrs: np.ndarray, creative: np.ndarray | None = None,
               gain: np.ndarray | None = None) -> None:
        """One impression per slot at time ``now``: ``attrs`` (N, N_ATTRS) of the creative shown to the
        slot's ``viewer`` (N,); with pool creatives also ``creative`` (N,), its pool index, and
        ``gain`` (N, K), the exposure it adds to each candidate (rows of :meth:`pool_gains`)."""
        rows, single = self.rows, self.attr.shape[1] == 1
        decay = self._decay(viewer, now)[:, None]
        updates = [(self.attr, attrs, 1.0)]
        if self.exposure.shape[2]:
            updates += [(self.creative, creative, 1.0), (self.exposure, None, gain)]
        for memory, index, add in updates:
            mem = self._memory(memory, viewer)
            if single:  # a view: decay in place
                mem *= decay.astype(memory.dtype)
            else:
                mem = mem * decay.astype(memory.dtype)
            if index is None:
                mem += add
            else:
                mem[rows[:, None] if index.ndim > 1 else rows, index] += add
            if not single:
                memory[rows, viewer] = mem
        self.last_seen[rows, viewer] = now


__all__ = ["FATIGUE_MEMORY_LIMIT", "Fatigue"]
