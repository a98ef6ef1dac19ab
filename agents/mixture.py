"""ε-mixture of any policy with the uniform one, so a deterministic policy's logs become usable.

Off-policy estimators weight each logged round by ``π_target(a|x) / π_logging(a|x)``; a
deterministic logging policy gives propensity 0 to every action it did not take, so no other policy
can be evaluated from its log. ``EpsilonMixture(policy, ε)`` shows the wrapped policy's choice with
probability ``1 − ε`` and a uniformly random candidate with probability ``ε``::

    p_mix = (1 − ε) · p + ε / K         every action has propensity >= ε / K

A slate policy (one with ``slate_probabilities``, e.g. ``agents.plackett_luce.PlackettLuceSlates``)
is mixed by :class:`SlateEpsilonMixture` over its S ordered slates instead: ``(1 − ε) · p + ε / S``;
``agents.registry`` / the study config's ``uniform_mix`` key pick the right one (:func:`mix`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import Obs, Policy


def _check_epsilon(epsilon) -> float:
    """A mixture's weight of the uniform policy: a number in [0, 1] (TypeError / ValueError otherwise)."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating)):
        raise TypeError(f"epsilon must be a number, got {type(epsilon).__name__} {epsilon!r}")
    if not 0.0 <= float(epsilon) <= 1.0:
        raise ValueError(f"epsilon == {epsilon}, must be in [0, 1]")
    return float(epsilon)


class EpsilonMixture(Policy):
    """``(1 − ε) · policy + ε · uniform``; learning is delegated to the wrapped policy.

    Args:
        policy: any :class:`~agents.base.Policy` (deterministic or not).
        epsilon: weight of the uniform policy, in [0, 1].
    """

    def __init__(self, policy: Policy, epsilon: float = 0.1):
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be an agents.base.Policy, got {type(policy).__name__} {policy!r}")
        self.policy, self.epsilon = policy, _check_epsilon(epsilon)
        self.name = f"{policy.name}@{self.epsilon:g}"

    @property
    def stackable(self) -> bool:
        return self.policy.stackable

    @property
    def reference(self) -> bool:
        return self.policy.reference

    def reset(self, n_actions: int, seed: int | np.random.SeedSequence | None = None, group_seeds=None) -> None:
        """Reset this wrapper and the wrapped policy on independent child streams of ``seed`` (of each
        group's seed when stacked)."""
        if group_seeds is None:
            root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
            own, inner = root.spawn(2)
            super().reset(n_actions, own)
            self.policy.reset(n_actions, inner)
            return
        super().reset(n_actions, seed, group_seeds)  # validates
        pairs = [(s if isinstance(s, np.random.SeedSequence) else np.random.SeedSequence(s)).spawn(2)
                 for s in group_seeds]
        super().reset(n_actions, group_seeds=[own for own, _ in pairs])
        self.policy.reset(n_actions, group_seeds=[inner for _, inner in pairs])

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N, K) mixture probabilities ``(1 − ε) p + ε / K``."""
        p = np.asarray(self.policy.probabilities(obs, info), dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != self.n_actions:
            raise ValueError(f"wrapped policy {self.policy.name!r} returned probabilities of shape {p.shape}, "
                             f"expected (N, {self.n_actions})")
        return (1.0 - self.epsilon) * p + self.epsilon / self.n_actions

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        self.policy.update(obs, actions, rewards)


class SlateEpsilonMixture(Policy):
    """``(1 − ε) · policy + ε · uniform`` over ordered slates, for a slate policy with exact
    ``slate_probabilities(obs, info)`` (N, S) (``adsim.ope.slate.all_slates`` order); does not learn
    (the slate OPE logs it is made for are logged by fixed policies). ``ε = 1`` is the uniform slate
    logger, the pseudo-inverse estimator's ``"uniform"`` form (:attr:`pi_logging`).

    Args:
        policy: a slate policy (``reset(n_actions, slate_size=…, seed=…)``, ``slate_probabilities``).
        epsilon: weight of the uniform slate policy, in [0, 1].
    """

    def __init__(self, policy: Policy, epsilon: float = 0.1):
        if not hasattr(policy, "slate_probabilities"):
            raise TypeError(f"policy {getattr(policy, 'name', policy)!r} has no slate_probabilities; "
                            "use EpsilonMixture for a one-slot policy")
        self.policy, self.epsilon = policy, _check_epsilon(epsilon)
        self.name = f"{policy.name}@{self.epsilon:g}"
        self.exact_slate_probabilities = getattr(policy, "exact_slate_probabilities", True)

    @property
    def reference(self) -> bool:
        return self.policy.reference

    @property
    def pi_logging(self) -> str | None:
        return "uniform" if self.epsilon == 1.0 else getattr(self.policy, "pi_logging", None)

    def reset(self, n_actions: int, seed: int | np.random.SeedSequence | None = None, group_seeds=None,
              slate_size: int = 1) -> None:
        if group_seeds is not None:
            raise TypeError(f"policy {self.name!r} cannot stack scenario seeds (group_seeds)")
        super().reset(n_actions, seed)
        self.policy.reset(n_actions, slate_size=slate_size, seed=seed)
        self.slate_size = int(slate_size)

    def slate_probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N, S) mixture probabilities ``(1 − ε) p + ε / S``."""
        p = np.asarray(self.policy.slate_probabilities(obs, info), dtype=np.float64)
        return (1.0 - self.epsilon) * p + self.epsilon / p.shape[1]

    def probabilities(self, obs: Obs, info: dict[str, Any] | None = None) -> np.ndarray:
        """(N, K) probability of each candidate at the first position."""
        from adsim.ope.slate import all_slates

        p = self.slate_probabilities(obs, info)
        first = all_slates(self.n_actions, self.slate_size)[:, 0]
        return np.stack([p[:, first == k].sum(axis=1) for k in range(self.n_actions)], axis=1)

    def update(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Does not learn."""


def mix(policy: Policy, epsilon: float) -> Policy:
    """``policy`` mixed with the uniform policy of its kind: :class:`SlateEpsilonMixture` for a fixed
    slate policy (``slate_probabilities`` and ``fixed``: e.g. Plackett–Luce), :class:`EpsilonMixture`
    otherwise (the learning slate policies of ``agents.slate`` keep theirs)."""
    if hasattr(policy, "slate_probabilities") and getattr(policy, "fixed", False):
        return SlateEpsilonMixture(policy, epsilon)
    return EpsilonMixture(policy, epsilon)
