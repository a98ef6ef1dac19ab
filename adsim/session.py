"""The batched core behind AdSession: N users' browsing sessions of several ad impressions.

Each slot ("sub-environment") runs one session at a time on the same hidden world as
CreativeSelection (``adsim.world``, ``adsim.response``) and shows one of its campaign's K pool
creatives per impression. Unlike CreativeSelection, the past matters:

* **fatigue** — every impression leaves a memory of the creative and of its four visual attribute
  values, decaying with ``memory_halflife`` impressions; a candidate's click logit drops by
  ``fatigue_sensitivity_u × (fatigue_creative × memory(creative) + fatigue_attribute ×
  Σ memory(attribute values))``;
* **interest drift** — a click shifts the session's interests towards what was clicked:
  ``θ ← normalise(θ · exp(drift_rate · β · appeal(creative)))``;
* **leaving** — after an impression that is not clicked, the user leaves (``terminated``) with
  probability ``1 − (1 − leave_base) · exp(−leave_gain · annoyance²)``, where annoyance is the fatigue
  penalty of the creative just shown (so repeating a tiring creative ends sessions quickly).

Common random numbers are exact: episode ``e`` of a slot with key ``k`` draws its user, context,
campaign and every impression's ad slot, click uniform and leave uniform from ``(k, e, step)``
alone (``adsim.rng``), whatever the actions, the number of slots or when other slots reset.
Slots reset independently (sessions end at different times).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from adsim import rng as crng
from adsim.config import WorldConfig
from adsim.fatigue import Fatigue
from adsim.pools import campaign_pools
from adsim.requests import SessionStreams, ad_slots, arrivals, campaigns, scenario_intercept
from adsim.response import click_logits, click_prob, interests_in_context, item_interest, truth_info
from adsim.running_ctr import Request, RunningCTR
from adsim.validation import check_choice, check_float, check_int, suggest
from adsim.world import CONTEXT_DIM, POSITION_FACTOR, cached_world, context_features

SESSION_TARGET_CTR = 0.1
N_POSITIONS = len(POSITION_FACTOR)
N_SESSION_SCALARS = 3  # impressions shown, clicks, impressions since the last click


@dataclass(frozen=True)
class SessionConfig:
    """One AdSession scenario: a world, a campaign pool and the session dynamics."""

    world: WorldConfig = field(default_factory=lambda: WorldConfig(target_ctr=SESSION_TARGET_CTR))
    """The hidden world (as CreativeSelection's; by default calibrated to a 10 % mean CTR: browsing
    users in a session are engaged)."""
    n_candidates: int = 8
    """K, creatives of the campaign's pool offered at every impression (``Discrete(K)``)."""
    campaign: int | None = None
    """Fix every session to this campaign; ``None`` draws one per session from the stream."""
    horizon: int = 20
    """Impressions per session before truncation."""
    language: str = "en"
    """Language headlines are rendered in; the hidden model is the same."""
    fatigue_creative: float = 0.6
    """Logit penalty per remembered impression of the same creative (× the user's sensitivity)."""
    fatigue_attribute: float = 0.05
    """Logit penalty per remembered impression of each of a creative's attribute values."""
    memory_halflife: float = 3.0
    """Half-life, in impressions, of remembered exposure."""
    drift_rate: float = 0.5
    """How far one click moves the session's interests towards the clicked creative's appeal."""
    leave_base: float = 0.03
    """Probability of leaving after an unclicked impression with no annoyance."""
    leave_gain: float = 0.3
    """Growth of the leave probability with annoyance: ``p = 1 − (1 − leave_base)·exp(−leave_gain·annoyance²)``."""
    estimate_prior_strength: float = 20.0
    """Pseudo-impressions behind the running CTR estimate's prior (see ``adsim.running_ctr``)."""

    def __post_init__(self):
        if not isinstance(self.world, WorldConfig):
            raise TypeError(f"world must be a WorldConfig, got {type(self.world).__name__}")
        check_int("n_candidates", self.n_candidates, 2, 256)
        if self.campaign is not None:
            check_int("campaign", self.campaign, 0, self.world.n_campaigns - 1)
        check_int("horizon", self.horizon, 1, 100_000)
        from adsim.creative.lexicon import LANGUAGES

        check_choice("language", self.language, LANGUAGES)
        check_float("fatigue_creative", self.fatigue_creative, 0.0, 20.0)
        check_float("fatigue_attribute", self.fatigue_attribute, 0.0, 20.0)
        check_float("memory_halflife", self.memory_halflife, 0.0, 1e6, open_low=True)
        check_float("drift_rate", self.drift_rate, 0.0, 10.0)
        check_float("leave_base", self.leave_base, 0.0, 1.0)
        check_float("leave_gain", self.leave_gain, 0.0, 100.0)
        check_float("estimate_prior_strength", self.estimate_prior_strength, 0.0, 1e9, open_low=True)

    @property
    def decay(self) -> float:
        """Per-impression retention of exposure memory, ``0.5 ** (1 / halflife)``."""
        return 0.5 ** (1.0 / self.memory_halflife)

    def replace(self, **changes: Any) -> SessionConfig:
        """A copy with some fields changed; keys of ``WorldConfig`` go to ``world``."""
        world_keys = {f.name for f in dataclasses.fields(WorldConfig)}
        own_keys = {f.name for f in dataclasses.fields(SessionConfig)}
        world_changes = {k: changes.pop(k) for k in list(changes) if k in world_keys}
        unknown = [k for k in changes if k not in own_keys]
        if unknown:
            allowed = sorted((own_keys | world_keys) - {"world"})
            raise ValueError(f"unknown config key {unknown[0]!r};{suggest(unknown[0], allowed)}")
        world = dataclasses.replace(self.world, **world_changes) if world_changes else self.world
        return dataclasses.replace(self, world=world, **changes)


SESSION_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "fatigue": {"fatigue_creative": 1.0, "fatigue_attribute": 0.1, "leave_gain": 0.5},
    "annoyance": {"fatigue_creative": 0.3, "fatigue_attribute": 0.0, "leave_gain": 3.0},
    "myopic": {"fatigue_creative": 0.0, "fatigue_attribute": 0.0, "drift_rate": 0.0, "leave_gain": 0.0},
    "tiny": {"n_users": 200, "n_products": 40, "n_campaigns": 2, "n_candidates": 4, "horizon": 10,
             "campaign": 0, "target_ctr": 0.25, "fatigue_creative": 1.0, "leave_gain": 0.5},
}
"""Named session scenarios. ``fatigue``: strong fatigue and annoyance, so repeating the best
creative is costly; ``annoyance``: repetition barely lowers the click probability but makes users
leave (the myopic optimum loses them; planning keeps them); ``myopic``: no fatigue, drift or
annoyance (a contextual bandit in sessions);
``tiny``: a small world for fast tests."""


def make_session_config(preset: str = "default", **overrides: Any) -> SessionConfig:
    """Build a :class:`SessionConfig` from a preset name plus field overrides (session or world keys)."""
    check_choice("preset", preset, tuple(SESSION_PRESETS))
    return SessionConfig().replace(**{**SESSION_PRESETS[preset], **overrides})


class SessionOutcome(NamedTuple):
    """What one impression did, per slot (all (N,))."""

    reward: np.ndarray  # float64 clicks
    clicked: np.ndarray  # bool
    terminated: np.ndarray  # bool: the user left
    truncated: np.ndarray  # bool: horizon reached (and the user did not leave)
    regret: np.ndarray  # myopic pseudo-regret: max_k p_k − p_action
    expected_reward: np.ndarray  # click probability of the action taken
    leave_prob: np.ndarray  # probability of leaving had the impression not been clicked


class SessionCore:
    """N session slots on one world. See the module docstring.

    Public per-slot state (all with leading axis N): ``user``, ``campaign``, ``t`` (impressions
    shown), ``clicks``, ``since_click``, ``click_probs`` (N, K) of the current impression.
    """

    OUTCOME_INFO = ("regret", "clicked", "leave_prob", "reward_expected")

    def __init__(self, config: SessionConfig, num_envs: int = 1):
        if not isinstance(config, SessionConfig):
            raise TypeError(f"config must be a SessionConfig, got {type(config).__name__}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs == {num_envs!r}, must be an int >= 1")
        self.config, self.num_envs = config, int(num_envs)
        self.world = w = cached_world(config.world)
        K, N, H = config.n_candidates, self.num_envs, config.horizon
        self.pool = pool = campaign_pools(config.world, K)  # the pools CreativeSelection's pool mode shows
        self.pools = pool.creatives
        self.beta0 = scenario_intercept(config.world, K, "pool")  # β0 of CreativeSelection's pool mode
        self.n_attr_values = w.lexicon.n_attr_values
        self.fatigue = Fatigue(N, 1, self.n_attr_values, config.fatigue_attribute, config.memory_halflife,
                               n_creatives=K, creative_weight=config.fatigue_creative, dtype=np.float64)
        self.exposure_gain = self.fatigue.pool_gains(pool.attrs)  # (C, K, K)
        self.estimator = RunningCTR("pool", config.world.n_campaigns, K, w.n_parts, config.estimate_prior_strength)
        self.rows = np.arange(N)
        self.keys: np.ndarray | None = None
        # per-slot state, allocated once
        z = np.zeros
        self.episode = z(N, np.int64)
        self.t, self.clicks, self.since_click = z(N, np.int64), z(N, np.int64), z(N, np.int64)
        self.user, self.device, self.campaign = z(N, np.int64), z(N, np.int64), z(N, np.int64)
        self.product = z(N, np.int64)
        self.viewer = z(N, np.int64)  # one fatigue viewer per slot: the session's user
        self.theta = z((N, w.d))
        self.base_logits = z((N, K))
        self.position = z((N, H), np.int64)
        self.u_click, self.u_leave = z((N, H)), z((N, H))
        self.context = z((N, CONTEXT_DIM), np.float32)  # session context; the ad-slot one-hot is added per impression
        self.annoyance = z(N)
        self.last_action = np.full(N, -1, np.int64)

    # ----------------------------------------------------------------- episode control
    def seed(self, seed) -> None:
        """Seed every slot's stream (``adsim.rng.stream_keys``: an int gives slot i the i-th child
        stream of ``SeedSequence(seed)``, a list gives slot i the stream of ``seed[i]``); forget the
        CTR estimate and episode counts."""
        self.set_keys(crng.stream_keys(seed, self.num_envs))

    def set_keys(self, keys: np.ndarray) -> None:
        """Seed the slots with explicit stream keys (N,) uint64 (see :meth:`seed`)."""
        self.keys = np.asarray(keys, dtype=np.uint64)
        self.episode[:] = -1
        self.estimator.reset()

    def restart(self, rows: np.ndarray) -> None:
        """Begin the next session of the given slots (an int index array): draw user, context, slots."""
        if self.keys is None:
            raise RuntimeError("call seed() (env.reset) before starting a session")
        if rows.size == 0:
            return
        w, cfg, H, S = self.world, self.config, self.config.horizon, SessionStreams
        self.episode[rows] += 1
        keys, ep = self.keys[rows], self.episode[rows]
        u = crng.uniforms(keys, ep, np.zeros(rows.size, np.int64), S.N_SESSION, offset=S.USER)
        a = arrivals(w, u[:, : S.DEVICE + 1 - S.USER])
        if cfg.campaign is None:
            campaign = campaigns(w.config.n_campaigns, u[:, S.CAMPAIGN - S.USER])
        else:
            campaign = np.full(rows.size, cfg.campaign, np.int64)
        imp = crng.uniforms(keys, ep, np.broadcast_to(np.arange(H), (rows.size, H)), S.N_IMPRESSION)  # (n, H, 3)
        self.position[rows] = ad_slots(w, imp[..., S.SLOT])
        self.u_click[rows], self.u_leave[rows] = imp[..., S.CLICK], imp[..., S.LEAVE]
        ctx = context_features(a.hour, a.weekend, a.location, a.weather, a.device, np.zeros_like(a.hour))
        ctx[:, -N_POSITIONS:] = 0.0
        self.context[rows] = ctx
        self.user[rows], self.device[rows], self.campaign[rows] = a.user, a.device, campaign
        self.product[rows] = w.campaign_product[campaign]
        self.theta[rows] = interests_in_context(w, a.user, a.hour, a.weekend, a.location, a.weather)
        self._refresh_logits(rows)
        self.t[rows] = self.clicks[rows] = self.since_click[rows] = 0
        self.fatigue.clear(rows)
        self.annoyance[rows] = 0.0
        self.last_action[rows] = -1

    start_sessions = restart

    def reset_all(self) -> None:
        """Begin the next session in every slot and serve its first impression."""
        self.restart(self.rows)
        self.serve()

    def _refresh_logits(self, rows: np.ndarray) -> None:
        """Recompute fatigue-free click logits (without β0) of the given slots from their θ."""
        c, theta, pool = self.campaign[rows], self.theta[rows], self.pool
        affinity = np.einsum("nd,nkd->nk", theta, pool.phi[c])
        item = item_interest(self.world, theta, self.product[rows])
        self.base_logits[rows] = click_logits(self.world, theta, self.user[rows], self.device[rows], item,
                                              affinity, pool.discount[c], pool.static[c])

    # ----------------------------------------------------------------- one impression
    def serve(self) -> None:
        """Make every slot's impression ``t`` current: fatigue, true click probabilities, request."""
        # memories are as of the last impression (time t - 1): what was just shown counts fully
        self.penalty = self.fatigue.penalty(self.viewer, np.maximum(self.t - 1, 0).astype(np.float64),
                                            self.pool.attrs[self.campaign], self.world.user_fatigue_sens[self.user])
        pos = self._position()
        self.click_probs = click_prob(self.base_logits - self.penalty, self.beta0, pos, self.world.context.position_factor)
        self._make_request(pos)

    def _position(self, rows: np.ndarray | None = None) -> np.ndarray:
        rows = self.rows if rows is None else rows
        return self.position[rows, np.minimum(self.t[rows], self.config.horizon - 1)]

    def _request(self, rows: np.ndarray, pos: np.ndarray) -> Request:
        ctx = self.context[rows]  # a copy (fancy index)
        ctx[np.arange(rows.size), CONTEXT_DIM - N_POSITIONS + pos] = 1.0
        c, u = self.campaign[rows], self.user[rows]
        return Request(c, self.world.user_features[u], ctx, self.world.campaign_features[c], self.pools[c])

    def _make_request(self, pos: np.ndarray) -> None:
        self.request = self._request(self.rows, pos)
        self.ctr_estimate = self.estimator.estimate(self.request)

    def final(self, rows: np.ndarray, outcome: SessionOutcome) -> tuple[dict, dict]:
        """Observations of the slots ``rows`` whose session the last step ended, and the step's outcome info."""
        return self.final_observation(rows), {k: v for k, v in self.info(outcome).items() if k in self.OUTCOME_INFO}

    def info(self, outcome: SessionOutcome | None = None) -> dict[str, np.ndarray]:
        """Ground truth of the current impressions (``optimal_action`` is the myopic optimum) and the
        outcome of the step that led to them."""
        return truth_info(self.click_probs, self.click_probs.copy(), outcome, ("leave_prob",))

    def render(self, row: int = 0) -> str:
        """ANSI text of slot ``row``'s current impression."""
        from adsim.envs.spaces import render_candidates

        c = int(self.campaign[row])
        header = f"t={int(self.t[row])} clicks={int(self.clicks[row])} campaign={c} user={int(self.user[row])}"
        return render_candidates(self.config.language, header, self.pools[c], self.click_probs[row], "fatigue",
                                 self.penalty[row])

    def final_observation(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The observation of slots ``rows`` after the last step, before they restart (leading axis
        ``len(rows)``; no click probabilities are computed)."""
        req = self._request(rows, self._position(rows))
        return self._obs(req, self.estimator.estimate(req), self.session_features(rows))

    def step(self, actions: np.ndarray) -> SessionOutcome:
        """Show ``actions`` (N,) ints in [0, K); draw clicks and departures; update the sessions.

        Does not start new sessions: the caller resets finished slots with :meth:`start_sessions`
        and then calls :meth:`serve`.
        """
        cfg, rows = self.config, self.rows
        if np.any(self.t >= cfg.horizon):
            raise RuntimeError("a session is over (truncated): start a new one before stepping it")
        t = self.t
        p = self.click_probs[rows, actions]
        best = self.click_probs.max(axis=1)
        clicked = self.u_click[rows, t] < p
        self.annoyance = self.penalty[rows, actions]
        leave_prob = 1.0 - (1.0 - cfg.leave_base) * np.exp(-cfg.leave_gain * self.annoyance**2)
        left = ~clicked & (self.u_leave[rows, t] < leave_prob)
        self.estimator.observe(self.request, actions, clicked)
        c = self.campaign
        self.fatigue.record(self.viewer, t.astype(np.float64), self.pool.attrs[c, actions], actions,
                            self.exposure_gain[c, actions])
        self._drift(np.flatnonzero(clicked), actions)
        self.t += 1
        self.clicks += clicked
        self.since_click = np.where(clicked, 0, self.since_click + 1)
        self.last_action[:] = actions
        truncated = (self.t >= cfg.horizon) & ~left
        return SessionOutcome(clicked.astype(np.float64), clicked, left, truncated, best - p, p, leave_prob)

    def _drift(self, rows: np.ndarray, actions: np.ndarray) -> None:
        """Shift the interests of slots whose user clicked towards the clicked creative."""
        if rows.size == 0 or self.config.drift_rate == 0.0:
            return
        beta = self.world.config.interest_strength
        appeal = self.pool.phi[self.campaign[rows], actions[rows]]  # (n, d)
        theta = self.theta[rows] * np.exp(self.config.drift_rate * beta * appeal)
        self.theta[rows] = theta / theta.sum(axis=1, keepdims=True)
        self._refresh_logits(rows)

    # ----------------------------------------------------------------- observation
    def session_features(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(N, 3 + 2K + n_attr_values) float32 in [0, 1]: what the platform knows of the session.

        ``[t/H, clicks/H, since_click/H, one-hot of the last action (K), creative exposure (K),
        attribute-value exposure (n_attr_values)]``; exposures are the decayed counts divided by
        their supremum ``1 / (1 − decay)``.
        """
        H, K = self.config.horizon, self.config.n_candidates
        rows = self.rows if rows is None else rows
        scalars = np.stack([self.t[rows], self.clicks[rows], self.since_click[rows]], axis=1) / H
        last = np.zeros((rows.size, K))
        action = self.last_action[rows]
        shown = action >= 0
        last[np.flatnonzero(shown), action[shown]] = 1.0
        norm = 1.0 - self.config.decay
        f = self.fatigue
        return np.concatenate([scalars, last, f.creative[rows, 0] * norm, f.attr[rows, 0] * norm],
                              axis=1).astype(np.float32)

    def observation(self) -> dict[str, np.ndarray]:
        """The current impression of every slot, batched (fresh arrays after every :meth:`serve`)."""
        return self._obs(self.request, self.ctr_estimate, self.session_features())

    @staticmethod
    def _obs(r: Request, ctr_estimate: np.ndarray, session: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "user": r.user_features,
            "context": r.context_features,
            "campaign": r.campaign_features,
            "candidates": r.candidates.reshape(r.candidates.shape[0], -1),
            "ctr_estimate": ctr_estimate,
            "session": session,
        }


__all__ = ["SessionConfig", "SESSION_PRESETS", "make_session_config", "SessionCore", "SessionOutcome",
           "N_SESSION_SCALARS"]
