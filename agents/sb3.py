"""Stable-Baselines3 agents (PPO, A2C, DQN) behind the ``agents.base.Policy`` interface.

An RL policy is trained before it acts: ``learn(env, seed)`` trains it for ``train_steps``
environment steps on a Gymnasium vector env (through :class:`agents.sb3_adapter.SB3VecEnv`), after which
``probabilities`` / ``select`` act like any bandit's. ``update`` is a no-op: an SB3 agent learns in
``learn`` only. Models are saved and loaded with SB3's own zip format (:meth:`save`, :meth:`load`).

Seeding sits in one block (:meth:`SB3Policy._seed_everything`): SB3 draws from Python's ``random``,
NumPy's global generator (DQN's ε-greedy) and torch, so all three are seeded from the policy seed
before the model is built. The environment's scenario seed is separate (``SB3VecEnv(seed=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import set_random_seed

from adsim.validation import check_device, check_float, check_int
from agents.base import Policy
from agents.sb3_adapter import SB3VecEnv, select_keys


@dataclass(eq=False)
class SB3Policy(Policy):
    """Common part of the SB3 policies; subclasses add their algorithm's hyperparameters."""

    train_steps: int = 20_000
    """Environment steps (impressions, summed over sub-envs) of training in :meth:`learn`."""
    learning_rate: float = 3e-4
    gamma: float = 0.95
    """Discount: sessions are short, long-term means the rest of the session."""
    net_arch: tuple[int, ...] = (64, 64)
    deterministic: bool = True
    """Act greedily (probability 1 on the chosen action); PPO/A2C otherwise sample their distribution."""
    device: str = "cpu"
    """torch device of the networks: ``"cpu"``, ``"cuda"`` (``"cuda:N"``) or ``"auto"`` (CUDA when
    torch sees a GPU); checked when the policy is built (``adsim.validation.check_device``)."""
    ignore_keys: tuple[str, ...] = ()
    """Observation keys the agent does not see. E.g. with a fixed campaign the pool's
    ``candidates`` never change, and ignoring them shrinks the network's input ~10×."""
    torch_threads: int | None = 1
    """torch CPU threads while training and acting (``torch.set_num_threads``); one is fastest for
    these small networks (and right for one worker per core); ``None`` leaves torch's default."""
    info_keys: tuple[str, ...] | None = ()
    """Per-step info keys copied into SB3's per-env ``infos`` (what callbacks see in
    ``self.locals["infos"]``); ``None``: all of them. SB3 reads only ``terminal_observation`` and
    ``TimeLimit.truncated`` (always there), so by default nothing else is copied."""
    verbose: int = 0
    """SB3's verbosity (0 silent, 1 progress tables on stdout)."""
    model_path: str | None = None
    """A model saved by :meth:`save` (e.g. ``OUT/artifacts/<scenario>__<label>__seed<s>/model.zip`` of an
    earlier run): :meth:`learn` loads it instead of training, so a trained agent is evaluated as is."""
    log_dir: str | None = None
    """Where SB3 writes its training log (``progress.csv``, plus TensorBoard event files when the
    ``tensorboard`` package is installed); the runner sets it to the run's folder under ``OUT/artifacts``."""

    algo: ClassVar[type[BaseAlgorithm]] = PPO
    name: ClassVar[str] = "sb3"
    stackable: ClassVar[bool] = False  # one network per scenario seed, trained by learn()

    def __post_init__(self):
        check_int("train_steps", self.train_steps, 0)
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, open_low=True)
        check_float("gamma", self.gamma, 0.0, 1.0)
        if not self.net_arch or not all(isinstance(h, int) and h > 0 for h in self.net_arch):
            raise ValueError(f"net_arch == {self.net_arch!r}, must be a non-empty sequence of positive ints")
        self.net_arch = tuple(self.net_arch)
        if isinstance(self.ignore_keys, str) or not all(isinstance(k, str) for k in self.ignore_keys):
            raise TypeError(f"ignore_keys == {self.ignore_keys!r}, must be a sequence of observation keys")
        self.ignore_keys = tuple(self.ignore_keys)
        self.torch_device = check_device(self.device)
        """The resolved device (``"auto"`` becomes ``"cuda"`` or ``"cpu"``)."""
        if self.info_keys is not None:
            if isinstance(self.info_keys, str) or not all(isinstance(k, str) for k in self.info_keys):
                raise TypeError(f"info_keys == {self.info_keys!r}, must be None or a sequence of info keys")
            self.info_keys = tuple(self.info_keys)
        if self.torch_threads is not None:
            check_int("torch_threads", self.torch_threads, 1, 1024)
        check_int("verbose", self.verbose, 0, 2)
        if self.model_path is not None and not Path(self.model_path).is_file():
            raise ValueError(f"model_path == {self.model_path!r}: no such file (a model.zip written by save())")
        if self.log_dir is not None and not isinstance(self.log_dir, str):
            raise TypeError(f"log_dir must be a str or None, got {type(self.log_dir).__name__} {self.log_dir!r}")
        self.obs_keys: tuple[str, ...] | None = None  # the keys the model sees, set by learn() / load()
        self.model: BaseAlgorithm | None = None

    # ----------------------------------------------------------------- training
    def algo_kwargs(self, num_envs: int) -> dict[str, Any]:
        """Algorithm-specific constructor arguments."""
        return {}

    def policy_kwargs(self) -> dict[str, Any]:
        """SB3's ``policy_kwargs`` of the model (the network's layers)."""
        return {"net_arch": list(self.net_arch)}

    def reset(self, n_actions: int, seed: int | np.random.SeedSequence | None = None, group_seeds=None) -> None:
        super().reset(n_actions, seed, group_seeds)  # group_seeds raise: one network per scenario seed
        self.seed = seed if isinstance(seed, (int, np.integer)) else int(self.rng.integers(0, 2**31 - 1))
        self.model = None

    def _seed_everything(self) -> None:
        set_random_seed(int(self.seed))  # random, numpy's global generator, torch

    def _threads(self) -> None:
        if self.torch_threads is not None and torch.get_num_threads() != self.torch_threads:
            torch.set_num_threads(self.torch_threads)

    def _logger(self):
        """SB3's logger writing under ``log_dir`` (CSV, and TensorBoard when installed), or None."""
        if self.log_dir is None:
            return None
        import importlib.util

        from stable_baselines3.common.logger import configure

        formats = ["csv"] + (["tensorboard"] if importlib.util.find_spec("tensorboard") else [])
        if self.verbose:
            formats.append("stdout")
        return configure(self.log_dir, formats)

    def learn(self, env: VectorEnv | gym.Env, scenario_seed: int | None = None,
              callback: BaseCallback | None = None) -> int:
        """Train a fresh model for ``train_steps`` steps on ``env``; returns the steps taken.

        Args:
            env: a same-step-autoreset Gymnasium vector env (e.g. ``adsim/AdSession-v0``'s native
                one), or a single ``gym.Env`` (run as a one-env ``SyncVectorEnv``).
            scenario_seed: seeds the env's first reset (sub-env i gets the i-th child stream of
                ``SeedSequence(scenario_seed)``); ``None`` continues the env's stream.
            callback: an SB3 callback (e.g. to record the learning curve).
        """
        if not hasattr(self, "seed"):
            raise RuntimeError("call reset(n_actions, seed) before learn()")
        if isinstance(env, gym.Env):
            single = env
            env = SyncVectorEnv([lambda: single], autoreset_mode=AutoresetMode.SAME_STEP)
        self._check_env(env)
        self._threads()
        if self.model_path is not None:  # a trained agent: load it, train nothing
            self.load(self.model_path)
            if set(self.obs_keys) - set(getattr(env.single_observation_space, "spaces", {})):
                raise ValueError(f"model_path {self.model_path!r} was trained on observation keys {self.obs_keys}, "
                                 f"which this env does not have")
            return 0
        self._seed_everything()
        self.obs_keys = None
        if self.ignore_keys:
            all_keys = list(getattr(env.single_observation_space, "spaces", {}))
            unknown = [k for k in self.ignore_keys if k not in all_keys]
            if unknown:
                raise ValueError(f"ignore_keys: unknown observation key {unknown[0]!r}; allowed: {all_keys}")
            self.obs_keys = tuple(k for k in all_keys if k not in self.ignore_keys)
        venv = SB3VecEnv(self._training_env(env), seed=scenario_seed, keys=self.obs_keys, info_keys=self.info_keys)
        self.model = self.algo("MultiInputPolicy", venv, learning_rate=self.learning_rate, gamma=self.gamma,
                               policy_kwargs=self.policy_kwargs(), device=self.torch_device,
                               verbose=self.verbose, **self.algo_kwargs(env.num_envs))
        logger = self._logger()
        if logger is not None:
            self.model.set_logger(logger)
        self.model.action_space.seed(int(self.seed))
        if self.train_steps > 0:
            self.model.learn(total_timesteps=self.train_steps, callback=callback)
        return int(self.model.num_timesteps)

    def _check_env(self, env: VectorEnv) -> None:
        """Raise unless the agent can train on ``env`` (a discrete action space of ``n_actions``)."""
        n = getattr(env.single_action_space, "n", None)
        if n != self.n_actions:
            raise ValueError(f"env has {n} actions, policy was reset with {self.n_actions}")

    def _training_env(self, env: VectorEnv) -> VectorEnv:
        """The vector env the model trains on (the env itself; ``agents.sb3_bidding`` wraps it)."""
        return env

    def _check_model_actions(self) -> None:
        """Raise unless a loaded model's action space fits the policy (``n_actions`` discrete actions)."""
        n = int(self.model.action_space.n)
        if getattr(self, "n_actions", n) != n:
            raise ValueError(f"saved model has {n} actions, policy was reset with {self.n_actions}")
        self.n_actions = n

    # ----------------------------------------------------------------- acting
    def _require_model(self) -> BaseAlgorithm:
        if self.model is None:
            raise RuntimeError(f"{self.name}: no model; call learn() or load() first")
        return self.model

    def probabilities(self, obs, info=None) -> np.ndarray:
        model = self._require_model()
        self._threads()
        obs = select_keys(obs, self.obs_keys)
        if not self.deterministic and hasattr(model.policy, "get_distribution"):
            with torch.no_grad():
                tensor, _ = model.policy.obs_to_tensor(obs)
                return model.policy.get_distribution(tensor).distribution.probs.cpu().numpy().astype(np.float64)
        actions, _ = model.predict(obs, deterministic=True)
        p = np.zeros((actions.shape[0], self.n_actions))
        p[np.arange(actions.shape[0]), actions] = 1.0
        return p

    def select(self, obs, info=None) -> np.ndarray:
        if self.deterministic:
            self._threads()
            obs = select_keys(obs, self.obs_keys)
            return np.asarray(self._require_model().predict(obs, deterministic=True)[0], dtype=np.int64)
        return super().select(obs, info)

    # ----------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Save the model in SB3's zip format; returns the path written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._require_model().save(path)
        return path if path.suffix == ".zip" else path.with_suffix(".zip")

    def load(self, path: str | Path) -> None:
        """Load a model saved by :meth:`save` (reset(n_actions, seed) first).

        Only from a path you pass, and only a file you trust: SB3's zip format holds pickled
        objects (spaces, schedules), and unpickling a planted file runs its code. adsim never
        loads an SB3 checkpoint implicitly.
        """
        self.model = self.algo.load(Path(path), device=self.torch_device)
        self.obs_keys = tuple(self.model.observation_space.spaces)
        self._check_model_actions()


@dataclass(eq=False)
class PPOPolicy(SB3Policy):
    """Proximal Policy Optimisation (SB3) on the vector env."""

    n_steps: int = 64
    """Rollout length per sub-env between updates."""
    batch_size: int = 256
    n_epochs: int = 4
    ent_coef: float = 0.01

    algo: ClassVar[type[BaseAlgorithm]] = PPO
    name: ClassVar[str] = "ppo"

    def __post_init__(self):
        super().__post_init__()
        check_int("n_steps", self.n_steps, 2)
        check_int("batch_size", self.batch_size, 2)
        check_int("n_epochs", self.n_epochs, 1)
        check_float("ent_coef", self.ent_coef, 0.0, 10.0)

    def algo_kwargs(self, num_envs: int) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "batch_size": min(self.batch_size, self.n_steps * num_envs),
                "n_epochs": self.n_epochs, "ent_coef": self.ent_coef}


@dataclass(eq=False)
class A2CPolicy(SB3Policy):
    """Advantage actor-critic (SB3) on the vector env."""

    learning_rate: float = 1e-3
    n_steps: int = 8
    ent_coef: float = 0.01

    algo: ClassVar[type[BaseAlgorithm]] = A2C
    name: ClassVar[str] = "a2c"

    def __post_init__(self):
        super().__post_init__()
        check_int("n_steps", self.n_steps, 1)
        check_float("ent_coef", self.ent_coef, 0.0, 10.0)

    def algo_kwargs(self, num_envs: int) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "ent_coef": self.ent_coef}


@dataclass(eq=False)
class DQNPolicy(SB3Policy):
    """Deep Q-network (SB3); trains on the single or the vector env (one transition per sub-env)."""

    learning_rate: float = 5e-4
    buffer_size: int = 50_000
    learning_starts: int = 1_000
    batch_size: int = 64
    train_freq: int = 4
    """Vector steps between gradient updates."""
    gradient_steps: int = 1
    """Gradient steps per update (SB3's ``gradient_steps``); with N sub-envs each vector step adds N
    transitions, so the replay ratio is ``gradient_steps · batch_size / (train_freq · N)``."""
    target_update_interval: int = 1_000
    exploration_fraction: float = 0.3
    exploration_final_eps: float = 0.05

    algo: ClassVar[type[BaseAlgorithm]] = DQN
    name: ClassVar[str] = "dqn"

    def __post_init__(self):
        super().__post_init__()
        check_int("buffer_size", self.buffer_size, 1)
        check_int("learning_starts", self.learning_starts, 0)
        check_int("batch_size", self.batch_size, 1)
        check_int("train_freq", self.train_freq, 1)
        check_int("gradient_steps", self.gradient_steps, 1)
        check_int("target_update_interval", self.target_update_interval, 1)
        check_float("exploration_fraction", self.exploration_fraction, 0.0, 1.0)
        check_float("exploration_final_eps", self.exploration_final_eps, 0.0, 1.0)

    def algo_kwargs(self, num_envs: int) -> dict[str, Any]:
        return {"buffer_size": self.buffer_size, "learning_starts": self.learning_starts,
                "batch_size": self.batch_size, "train_freq": self.train_freq,
                "gradient_steps": self.gradient_steps,
                "target_update_interval": self.target_update_interval,
                "exploration_fraction": self.exploration_fraction,
                "exploration_final_eps": self.exploration_final_eps}


__all__ = ["SB3Policy", "PPOPolicy", "A2CPolicy", "DQNPolicy"]
