"""Stable-Baselines3 bidders (SAC, PPO) on the continuous bid, through the same adapter as the RL agents.

An SB3 bidder is a :class:`agents.bidding.BiddingPolicy` (a creative policy and a bid rule) whose
bid rule is a network: its action a in [−1, 1] sets the bid's *multiplier* on the truthful bid,
``(a + 1) / 2 × max_multiplier`` (scale-free: one network serves cheap and dear requests alike;
an untrained network's a ≈ 0 bids truthfully with the default ``max_multiplier = 2``), and it sees
the auction env's observation (the day's ``budget_left`` and ``day_left`` included, so it can
learn to pace). The creative is its creative policy's, as for every bidder.

Training is :class:`agents.sb3.SB3Policy`'s (``learn(env, scenario_seed)``, the seeding block,
``save`` / ``load``, ``model_path``, ``log_dir``) on ``adsim/AdAuction-v0``'s native vector env,
seen by the model through :class:`BidMultiplierEnv` (action ``Box(−1, 1, (1,))``) and
the one adapter :class:`agents.sb3_adapter.SB3VecEnv`. The reward it trains on is ``reward``:

* ``"believed"`` (default): the surplus the bidder believes it earned, from the observation and the
  auction's outcome only — ``won × pCTR × (value − price)`` per click, ``won × (value × pCTR −
  price)`` per impression (``agents.bidding.believed_surplus``, as the learned shader's); it has
  the conversion coins' noise taken out, which otherwise drowns the bid's effect in short training;
* ``"realised"``: the env's reward, the realised surplus (conversion value if converted − payment).

After :meth:`learn`, ``select_bids`` acts greedily (the policy network's mean action). ``update_bids``
teaches the creative policy the won requests' clicks; the network learns in ``learn`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm

from adsim.validation import check_choice, check_float, check_int
from agents.bidding import BiddingPolicy, as_outcome, believed_surplus, bid_inputs
from agents.sb3 import SB3Policy
from agents.sb3_adapter import select_keys

REWARDS = ("believed", "realised")
"""What an SB3 bidder trains on (module docstring)."""


class BidMultiplierEnv(VectorEnv):
    """An auction vector env as an SB3 bidder trains on it: the action (N, 1) in [−1, 1] sets the bid
    multiplier (:meth:`SB3Bidder.multiplier_of`).

    Each step the bidder's creative policy chooses the creatives from the current observation, the
    bid is ``clip(multiplier × truthful, 0, max_bid)`` (the env's ``max_bid`` and the bidder's), the
    creative policy learns the won requests' clicks, and the reward is the bidder's ``reward`` ×
    its ``reward_scale``.
    Observations, termination, truncation, info and same-step autoreset are the env's.

    Args:
        env: an auction vector env (``adsim/AdAuction-v0``'s native one): Dict actions
            ``{"creative": (N,), "bid": (N,)}``, same-step autoreset.
        bidder: the :class:`SB3Bidder` (its creative policy, pricing and reward).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, env: VectorEnv, bidder: SB3Bidder):
        if env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError(f"env autoreset_mode == {env.metadata.get('autoreset_mode')!r}, must be SAME_STEP")
        self.env, self.bidder = env, bidder
        self.num_envs = env.num_envs
        self.single_observation_space = env.single_observation_space
        self.observation_space = env.observation_space
        self.single_action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        bid_space = env.single_action_space["bid"]
        self.max_bid = min(float(np.max(bid_space.high)), bidder.max_bid)
        self._obs = None
        self.scale: float | None = None
        """The reward's factor (the bidder's ``reward_scale``, or set from the first step)."""

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        return obs, info

    def step(self, actions):
        if self._obs is None:
            raise RuntimeError("step() called before reset()")
        obs, b = self._obs, self.bidder
        creative = np.asarray(b.creative.select(obs, None))
        x = bid_inputs(obs, creative, b.pricing)
        mult = b.multiplier_of(actions)
        bid = np.clip(x.truthful * mult, 0.0, self.max_bid)
        nxt, reward, terminated, truncated, info = self.env.step({"creative": creative, "bid": bid})
        outcome = as_outcome(info, self.num_envs)
        b._teach_creative(obs, creative, outcome)
        if b.reward == "believed":
            reward = believed_surplus(x, outcome, b.pricing)
        if self.scale is None:
            mean = float(np.mean(x.truthful))
            self.scale = b.reward_scale if b.reward_scale is not None else (1.0 / mean if mean > 0 else 1.0)
        self._obs = nxt
        return nxt, self.scale * np.asarray(reward, dtype=np.float64), terminated, truncated, info

    def close(self, **kwargs):
        self.env.close()


@dataclass(eq=False)
class SB3Bidder(SB3Policy, BiddingPolicy):
    """Common part of the SB3 bidders (module docstring); subclasses add their algorithm's hyperparameters.

    Fields: :class:`agents.sb3.SB3Policy`'s (``train_steps``, ``learning_rate``, ``gamma``,
    ``net_arch``, ``device``, ``ignore_keys``, ``model_path``, ``log_dir`` …), and those below.
    """

    creative: Any = "greedy"
    """The creative policy: a registered name, an import path or a Policy (:class:`agents.bidding.BiddingPolicy`)."""
    creative_params: dict[str, Any] | None = None
    """Hyperparameters of a creative policy given by name."""
    pricing: str = "cpc"
    """What a bid buys, ``"cpc"`` or ``"cpm"``, as the env's ``pricing``."""
    max_bid: float = 1e6
    """Bids are clipped to [0, max_bid] (and to the env's action space)."""
    cpa_cap: float | None = None
    """An optional cost-per-acquisition cap (:class:`agents.bidding.BiddingPolicy`)."""
    max_multiplier: float = 2.0
    """The largest bid multiplier (the action is in [0, max_multiplier] × the truthful bid)."""
    reward: str = "believed"
    """What the network trains on: ``"believed"`` or ``"realised"`` surplus (module docstring)."""
    reward_scale: float | None = None
    """The training reward's factor; ``None``: 1 / the mean truthful bid of the first training batch
    (surpluses are then of order 1, whatever the currency and the CTR level)."""
    gamma: float = 0.0
    """Discount: 0 treats each auction alone (no budget); raise it (e.g. 0.99) for an agent that paces."""

    algo: ClassVar[type[BaseAlgorithm]] = SAC
    name: ClassVar[str] = "sb3_bidder"

    def __post_init__(self):
        super().__post_init__()
        check_float("max_multiplier", self.max_multiplier, 0.0, 100.0, open_low=True)
        check_choice("reward", self.reward, REWARDS)
        if self.reward_scale is not None:
            check_float("reward_scale", self.reward_scale, 0.0, 1e12, open_low=True)
        self._init_bidding(self.creative, self.creative_params, self.pricing, self.max_bid, self.cpa_cap)

    # SB3Policy's checks and wrapper, for the (creative, bid) env
    def _check_env(self, env: VectorEnv) -> None:
        space = env.single_action_space
        if not isinstance(space, spaces.Dict) or set(space.spaces) != {"creative", "bid"}:
            raise ValueError(f"{self.name} trains on an auction env (Dict actions 'creative' and 'bid'), got "
                             f"action space {space}")
        if space["creative"].n != self.n_actions:
            raise ValueError(f"env has {space['creative'].n} creatives, policy was reset with {self.n_actions}")

    def _training_env(self, env: VectorEnv) -> VectorEnv:
        return BidMultiplierEnv(env, self)

    def _check_model_actions(self) -> None:
        space = self.model.action_space
        if not isinstance(space, spaces.Box) or space.shape != (1,):
            raise ValueError(f"saved model's action space is {space}, an SB3 bidder's is Box(-1, 1, (1,))")

    def learn(self, env: VectorEnv | gym.Env, scenario_seed: int | None = None, callback=None) -> int:
        if isinstance(env, gym.Env):
            raise TypeError(f"{self.name} trains on the auction's vector env (gymnasium.make_vec(..., "
                            f"vectorization_mode='vector_entry_point')), got a single env")
        return super().learn(env, scenario_seed, callback)

    # the one-slot view and the bids: a bidding policy's
    probabilities = BiddingPolicy.probabilities
    select = BiddingPolicy.select
    update = BiddingPolicy.update

    def multiplier_of(self, action) -> np.ndarray:
        """(N,) the bid multipliers of the network's actions (N, 1) in [−1, 1]: ``(a + 1) / 2 × max_multiplier``
        (0 is the truthful bid with the default ``max_multiplier = 2``, where training starts)."""
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        return (a + 1.0) / 2.0 * self.max_multiplier

    def bids(self, obs, creative):
        """(N,) the network's multiplier (its mean action) × the truthful bid, clipped."""
        x = bid_inputs(obs, creative, self.pricing)
        self._threads()
        action, _ = self._require_model().predict(select_keys(obs, self.obs_keys), deterministic=True)
        mult = self.multiplier_of(action)
        return np.clip(x.truthful * mult, 0.0, self.max_bid)


@dataclass(eq=False)
class SACBidder(SB3Bidder):
    """Soft actor-critic (SB3) on the bid multiplier."""

    learning_rate: float = 1e-3
    buffer_size: int = 100_000
    learning_starts: int = 256
    batch_size: int = 256
    train_freq: int = 1
    """Vector steps between gradient updates."""
    gradient_steps: int = 1
    """Gradient steps per update; with N sub-envs each vector step adds N transitions."""
    ent_coef: str | float = "auto"

    algo: ClassVar[type[BaseAlgorithm]] = SAC
    name: ClassVar[str] = "sac_bidder"

    def __post_init__(self):
        super().__post_init__()
        check_int("buffer_size", self.buffer_size, 1)
        check_int("learning_starts", self.learning_starts, 0)
        check_int("batch_size", self.batch_size, 1)
        check_int("train_freq", self.train_freq, 1)
        check_int("gradient_steps", self.gradient_steps, 1)
        if not (self.ent_coef == "auto" or isinstance(self.ent_coef, (int, float)) and not isinstance(self.ent_coef, bool)):
            raise ValueError(f"ent_coef == {self.ent_coef!r}, must be 'auto' or a number >= 0")
        if not isinstance(self.ent_coef, str):
            check_float("ent_coef", self.ent_coef, 0.0, 10.0)

    def algo_kwargs(self, num_envs: int) -> dict[str, Any]:
        return {"buffer_size": self.buffer_size, "learning_starts": self.learning_starts, "batch_size": self.batch_size,
                "train_freq": self.train_freq, "gradient_steps": self.gradient_steps, "ent_coef": self.ent_coef}


@dataclass(eq=False)
class PPOBidder(SB3Bidder):
    """Proximal Policy Optimisation (SB3) on the bid multiplier (a Gaussian policy, clipped to the Box)."""

    n_steps: int = 64
    """Rollout length per sub-env between updates."""
    batch_size: int = 256
    n_epochs: int = 4
    ent_coef: float = 0.0
    log_std_init: float = -1.5
    """The Gaussian policy's initial log standard deviation (−1.5: σ ≈ 0.22 of the action range [−1, 1];
    SB3's 0 puts half the early bids at or above twice the truthful bid, and PPO then learns to bid 0)."""

    algo: ClassVar[type[BaseAlgorithm]] = PPO
    name: ClassVar[str] = "ppo_bidder"

    def __post_init__(self):
        super().__post_init__()
        check_int("n_steps", self.n_steps, 2)
        check_int("batch_size", self.batch_size, 2)
        check_int("n_epochs", self.n_epochs, 1)
        check_float("ent_coef", self.ent_coef, 0.0, 10.0)
        check_float("log_std_init", self.log_std_init, -10.0, 2.0)

    def policy_kwargs(self) -> dict[str, Any]:
        return {**super().policy_kwargs(), "log_std_init": self.log_std_init}

    def algo_kwargs(self, num_envs: int) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "batch_size": min(self.batch_size, self.n_steps * num_envs),
                "n_epochs": self.n_epochs, "ent_coef": self.ent_coef}


__all__ = ["BidMultiplierEnv", "PPOBidder", "REWARDS", "SACBidder", "SB3Bidder"]
