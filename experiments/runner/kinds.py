"""What one step of a run means for each kind of env the runner steps: one creative per request
(CreativeSelection, AdSession, any env with a ``Discrete`` action), a page of L positions
(SlateSelection: its action space has a ``slate_size``) or an auction (AdAuction: its vector env
has ``auctions = True``).

A kind turns the policy's choice into the env's action and the env's answer into the policy's
feedback and the run's per-request numbers (:class:`StepNumbers`), so :func:`experiments.runner.run._simulate`
is one loop for every env. The numbers are, per request:

* ``random_value`` — a uniformly random choice's expected reward on the same request (the margin
  columns' baseline): the candidates' mean; a uniformly random slate's expected clicks (exact,
  ``ClickModel.random_clicks``); NaN for an auction (a random bid has no natural law);
* ``clicks`` and ``true_ctr`` — clicks, and the expected clicks of what was shown (the true CTR of
  the chosen creative; the page's expected clicks; the won slot's true CTR, 0 when lost);
* ``shown`` — (N, m) candidates shown (every position of a page), counted per arm;
* ``arm_expected`` — (N, K) each candidate's expected reward (for the fixed-arm regret of pool
  scenarios), or None where a fixed arm is not defined (pages, auctions);
* ``extra`` — the kind's own per-request numbers, summed like the rest (auctions: spend, wins and
  the four parts of the regret, ``adsim.auction``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from agents.bidding import as_outcome

AUCTION_EXTRA = ("spend", "wins", "regret_allocation", "regret_estimation", "regret_overbid", "regret_underbid")
"""The per-request numbers an auction run adds (summed per step, cumulated per bucket as ``cum_<name>``)."""


class StepNumbers(NamedTuple):
    feedback: Any
    random_value: np.ndarray
    clicks: np.ndarray
    true_ctr: np.ndarray
    shown: np.ndarray
    arm_expected: np.ndarray | None
    extra: dict[str, np.ndarray]


class OneCreative:
    """One creative per request: ``policy.select`` → (N,) actions, ``policy.update(obs, actions, rewards)``."""

    extra: tuple[str, ...] = ()
    reset_kwargs: dict[str, Any] = {}

    def __init__(self, env):
        self.env = env

    def select(self, policy, obs, info):
        return policy.select(obs, info)

    def learn(self, policy, obs, actions, feedback) -> None:
        policy.update(obs, actions, feedback)

    def random_actions(self, rng: np.random.Generator):
        """A batch of uniformly random actions (for timing the env: ``--dry-run``'s plan)."""
        return rng.integers(0, self.env.single_action_space.n, self.env.num_envs)

    def step(self, actions, info: dict, realised: bool):
        rows = np.arange(actions.shape[0])
        click_probs, expected = info["click_probs"], info["expected_reward"]
        out = self.env.step(actions)
        after = out[4]
        numbers = StepNumbers(out[1] if realised else after["reward_expected"], expected.mean(axis=1),
                              after["clicked"], click_probs[rows, actions], actions[:, None], expected, {})
        return out, numbers


class Pages(OneCreative):
    """A page of L positions: the policy is reset with ``slate_size=L``, chooses (N, L) slates ((N,)
    for L = 1) and learns from the clicks per position (or each position's true click probability
    with expected feedback)."""

    def __init__(self, env, slate_size: int):
        super().__init__(env)
        self.L = slate_size
        self.reset_kwargs = {"slate_size": slate_size}

    def random_actions(self, rng: np.random.Generator):
        return np.argsort(rng.random((self.env.num_envs, self.env.n_candidates)), axis=1)[:, :self.L]

    def step(self, actions, info: dict, realised: bool):
        random_value = self.env.click_model.random_clicks(info["attraction"])
        slates = actions.reshape(-1, self.L)
        out = self.env.step(slates)
        after = out[4]
        feedback = after["clicks"].astype(np.float64) if realised else after["slate_click_probs"]
        if self.L == 1:
            feedback = feedback[:, 0]
        return out, StepNumbers(feedback, random_value, out[1], after["reward_expected"], slates, None, {})


class Auctions(OneCreative):
    """An auction per request: ``policy.select_bids`` → ``{"creative", "bid"}``, and the policy learns
    the whole outcome (``policy.update_bids(obs, action, info)``: won, slot, price, clicks, spend …)."""

    extra = AUCTION_EXTRA

    def select(self, policy, obs, info):
        return policy.select_bids(obs, info)

    def learn(self, policy, obs, actions, feedback) -> None:
        policy.update_bids(obs, actions, feedback)

    def random_actions(self, rng: np.random.Generator):
        n = self.env.num_envs
        return {"creative": rng.integers(0, self.env.n_candidates, n), "bid": rng.uniform(0.0, 1.0, n)}

    def step(self, actions, info: dict, realised: bool):
        ctr = info["ctr"]  # (N, K, L) true CTR of creative k at slot l
        out = self.env.step(actions)
        after = out[4]
        creative, slot = np.asarray(actions["creative"]), after["slot"]
        rows = np.arange(creative.shape[0])
        true_ctr = np.where(slot >= 0, ctr[rows, creative, np.maximum(slot, 0)], 0.0)
        extra = {"spend": after["spend"], "wins": after["won"], **{k: after[k] for k in AUCTION_EXTRA[2:]}}
        nan = np.full(creative.shape[0], np.nan)
        feedback = as_outcome(after, creative.shape[0])  # copies: a delayed update reads this step's outcome
        return out, StepNumbers(feedback, nan, after["clicked"], true_ctr, creative[:, None], None, extra)


def step_kind(env) -> OneCreative:
    """The kind of the vector env ``env``."""
    if getattr(env, "auctions", False):
        return Auctions(env)
    L = getattr(env.single_action_space, "slate_size", None)
    return OneCreative(env) if L is None else Pages(env, int(L))


__all__ = ["AUCTION_EXTRA", "Auctions", "OneCreative", "Pages", "StepNumbers", "step_kind"]
