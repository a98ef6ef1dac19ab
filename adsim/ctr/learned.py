"""``LearnedCTR``: a trained CTR model behind the env's ``CTREstimator`` interface, with online refresh.

Plug it into the batched core or the envs; the observation space does not change::

    est = LearnedCTR("runs/deepfm")                             # or a CTRPredictor
    core = SelectionCore(config, 1024, estimator=est)
    env = gymnasium.make("adsim/CreativeSelection-v0", preset="personalized", ctr_model="runs/deepfm")
    env = gymnasium.make("adsim/CreativeSelection-v0", preset="personalized", ctr_model="deepfm:50000")  # trained now

With ``refresh_every=M`` it logs every shown creative and its click passed to :meth:`observe`, and
every M impressions fine-tunes the model (or retrains it from scratch, ``fine_tune=False``) on what
it has logged, so a policy greedy on ``obs["ctr_estimate"]`` becomes a learning policy. ``reset()``
(called by ``env.reset(seed=…)``) restores the weights it started from and forgets the log.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import numpy as np

from adsim.config import EnvConfig
from adsim.ctr.features import Encoded, FeatureSpec
from adsim.ctr.predictor import CTRPredictor, load
from adsim.ctr.train import TrainConfig, fit
from adsim.validation import check_device, check_int, check_seed

SETUP_STREAM_SEED = 10**9
"""Request streams of impressions logged to train a model at set-up (far from the seeds runs use)."""
REFRESH_TRAIN = TrainConfig(max_epochs=3, patience=1, val_fraction=0.1, lr=1e-3)
"""Default optimisation settings of an online refresh."""


@functools.lru_cache(maxsize=16)
def _trained_predictor(config: EnvConfig, model: str, impressions: int, seed: int, train: TrainConfig,
                       held_out_users: float = 0.0, split_seed: int = 0) -> CTRPredictor:
    """``model`` trained on ``impressions`` uniform-random impressions of ``config`` (stream ``seed``),
    less those of the held-out share ``held_out_users`` of users (``adsim.users``, split ``split_seed``)."""
    from adsim.ctr.data import log_impressions
    from adsim.ctr.train import train_on_impressions
    from adsim.users import held_out_users as held_out

    imp = log_impressions(config, impressions, seed=seed)
    if held_out_users > 0:
        imp = imp.take(np.flatnonzero(~held_out(imp.user, held_out_users, split_seed)))
    pred, _ = train_on_impressions(imp, model, train, spec=FeatureSpec.from_config(config))
    if held_out_users > 0:
        pred.meta["held_out_users"] = {"fraction": held_out_users, "seed": split_seed}
    return pred


def parse_ctr_arg(ctr_model: str | Path) -> tuple[str, int] | None:
    """``(NAME, IMPRESSIONS)`` of a ``ctr_model="NAME:IMPRESSIONS"`` argument (a model to train at
    set-up), or None for the path of a saved model; ``ValueError`` if IMPRESSIONS is not a number."""
    text = str(ctr_model)
    name, sep, budget = text.partition(":")
    if not sep or Path(text).exists():
        return None
    if not budget.isdigit():
        raise ValueError(f"ctr_model == {text!r}: expected a path or 'NAME:IMPRESSIONS', e.g. 'deepfm:50000'")
    return name, int(budget)


class LearnedCTR:
    """A :class:`CTRPredictor` as the env's CTR estimate (``adsim.running_ctr.CTREstimator``).

    Args:
        model: a predictor, or the path of a saved one.
        refresh_every: fine-tune every this many observed impressions (``None``: never).
        refresh_config: optimisation settings of a refresh (seed is offset by the refresh count).
        fine_tune: continue from the current weights (True) or retrain from scratch (False).
        max_log: keep at most this many most recent impressions for refreshing.
        allow_other_world: use a model trained in another world (a transfer experiment); without it,
            :meth:`check_config` raises when the model's recorded world fingerprint is not the env's.
        device: torch device to predict and refresh on (``"cpu"``, ``"cuda"``, ``"auto"``; a given
            predictor is moved there); ``None`` keeps the predictor's (a loaded one: the CPU).
    """

    def __init__(self, model: CTRPredictor | str | Path, *, refresh_every: int | None = None,
                 refresh_config: TrainConfig = REFRESH_TRAIN, fine_tune: bool = True, max_log: int = 1_000_000,
                 allow_other_world: bool = False, device: str | None = None):
        self.source = f"ctr model {str(model)!r}" if isinstance(model, (str, Path)) else "ctr model"
        device = None if device is None else check_device(device)
        if isinstance(model, (str, Path)):
            model = load(model, device or "cpu")
        if not isinstance(model, CTRPredictor):
            raise TypeError(f"model must be a CTRPredictor or a path, got {type(model).__name__}")
        if device is not None:
            model.to(device)
        if refresh_every is not None:
            check_int("refresh_every", refresh_every, 100)
        if not isinstance(refresh_config, TrainConfig):
            raise TypeError(f"refresh_config must be a TrainConfig, got {type(refresh_config).__name__}")
        check_int("max_log", max_log, 100)
        self.initial, self.refresh_every, self.refresh_config = model, refresh_every, refresh_config
        self.fine_tune, self.max_log = bool(fine_tune), max_log
        if not isinstance(allow_other_world, bool):
            raise TypeError(f"allow_other_world must be a bool, got {type(allow_other_world).__name__}")
        self.allow_other_world = allow_other_world
        self.reset()

    @classmethod
    def trained(cls, config: EnvConfig, model: str = "deepfm", impressions: int = 100_000, *,
                seed: int = SETUP_STREAM_SEED, train: TrainConfig = TrainConfig(), held_out_users: float = 0.0,
                split_seed: int = 0, **kwargs) -> LearnedCTR:
        """Log ``impressions`` uniform-random impressions of ``config`` (the vector env reset with ``seed``), train, wrap.

        ``held_out_users`` (in [0, 0.9]) drops the impressions of that share of the users
        (``adsim.users.held_out_users`` with ``split_seed``) before training: they never reach the model."""
        from adsim.users import check_held_out_fraction

        held_out_users = check_held_out_fraction(held_out_users, "held_out_users")
        split_seed = check_seed(split_seed, "split_seed", many=False, seed_sequence=False)
        if kwargs.get("device") is not None:  # train where it will predict
            train = dataclasses.replace(train, device=kwargs["device"])
        # a fresh copy of the model trained (once per process) on exactly these inputs: training is
        # seeded and deterministic, so several runs of one world share it instead of retraining
        pred = _trained_predictor(config, model, impressions, seed, train, held_out_users, split_seed)
        return cls(copy.deepcopy(pred), **kwargs)

    @classmethod
    def from_arg(cls, config: EnvConfig, ctr_model: str | Path, *, held_out_users: float = 0.0, split_seed: int = 0,
                 **kwargs) -> LearnedCTR:
        """The env's ``ctr_model=`` argument: a saved model's path, or ``"NAME:IMPRESSIONS"`` (e.g.
        ``"deepfm:50000"``) to train that model at set-up on that many logged impressions (less
        those of the held-out users, see :meth:`trained`). A saved model's training users are not
        known, so ``held_out_users > 0`` with a path is a ``ValueError``."""
        parsed = parse_ctr_arg(ctr_model)
        if parsed is not None:
            return cls.trained(config, *parsed, held_out_users=held_out_users, split_seed=split_seed, **kwargs)
        if held_out_users:
            raise ValueError(f"ctr_model == {str(ctr_model)!r} is a saved model, whose training users are not known: "
                             f"held_out_users == {held_out_users} needs a model trained here ('NAME:IMPRESSIONS', "
                             f"e.g. 'deepfm:100000'), or 0 (no user split)")
        return cls(Path(ctr_model), **kwargs)

    @property
    def spec(self) -> FeatureSpec:
        return self.model.spec

    def check_config(self, config: EnvConfig) -> None:
        """Raise ``ValueError`` if the model cannot read observations of ``config``, or was trained in
        another world (unless ``allow_other_world``). An untrained model has no world to check."""
        want = FeatureSpec.from_config(config, self.spec.use_campaign_id)
        if want != self.spec:
            diff = {f.name: (getattr(self.spec, f.name), getattr(want, f.name))
                    for f in dataclasses.fields(FeatureSpec) if getattr(self.spec, f.name) != getattr(want, f.name)}
            raise ValueError(f"ctr model does not fit this env config: (model, env) differ in {diff}")
        from adsim.world import check_world

        trained = "history" in self.initial.meta or "world" in self.initial.meta
        if trained:
            check_world(self.initial.meta.get("world"), config.world, self.source,
                        allow_other_world=self.allow_other_world)

    def reset(self) -> None:
        """Restore the initial weights and forget the log."""
        self.model = copy.deepcopy(self.initial)
        self._idx: list[np.ndarray] = []
        self._val: list[np.ndarray] = []
        self._clicks: list[np.ndarray] = []
        self.n_observed = self._since_refresh = self.refreshes = 0

    def estimate(self, request) -> np.ndarray:
        """(N, K) float32 predicted click probabilities of every candidate."""
        return self.model.predict_request(request)

    def observe(self, request, actions: np.ndarray, clicks: np.ndarray) -> None:
        """Log the shown creatives and clicks; refresh the model every ``refresh_every`` impressions."""
        self.n_observed += int(actions.shape[0])
        if self.refresh_every is None:
            return
        rows = np.arange(actions.shape[0])
        enc = self.model.encoder.encode(request.user_features, request.context_features,
                                        request.campaign_features, request.candidates[rows, actions],
                                        request.campaign)
        self._idx.append(enc.idx)
        self._val.append(enc.val)
        self._clicks.append(np.asarray(clicks, dtype=np.int8))
        self._since_refresh += int(actions.shape[0])
        if self._since_refresh >= self.refresh_every:
            self.refresh()

    def refresh(self) -> list[dict]:
        """Fine-tune (or retrain) on the logged impressions now; returns the training history."""
        idx, val, y = (np.concatenate(a)[-self.max_log :] for a in (self._idx, self._val, self._clicks))
        self._idx, self._val, self._clicks = [idx], [val], [y]
        cfg = dataclasses.replace(self.refresh_config, seed=self.refresh_config.seed + self.refreshes,
                                  device=self.model.device)  # refresh where the model lives
        init = self.model if self.fine_tune else None
        self.model, history = fit(self.model.spec, self.model.model_config, Encoded(idx, val), y, cfg, init=init)
        self._since_refresh = 0
        self.refreshes += 1
        return history


__all__ = ["LearnedCTR", "REFRESH_TRAIN", "parse_ctr_arg"]
