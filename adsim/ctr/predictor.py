"""A trained CTR model with its feature encoder: batched prediction, save and load.

On disk a model is a directory::

    model.pt      the state dict (``torch.save``; loaded with ``weights_only=True``)
    config.json   {"format": "adsim.ctr/1", "model": ModelConfig, "features": FeatureSpec,
                   "train": TrainConfig or null, "history": [per-epoch losses],
                   "world": fingerprint of the world of its training log (``adsim.world``)}
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from adsim.ctr.data import Impressions
from adsim.ctr.features import Encoded, FeatureEncoder, FeatureSpec
from adsim.ctr.models import CTRModel, ModelConfig
from adsim.validation import check_device

FORMAT = "adsim.ctr/1"
PREDICT_BATCH = 1 << 16


class CTRPredictor:
    """A :class:`CTRModel` plus the :class:`FeatureEncoder` it was trained with.

    Args:
        spec: the feature spec.
        model_config: the architecture.
        model: the module (built fresh from the configs when ``None``).
        meta: training config and history, saved with the model.
        device: torch device of the module: ``"cpu"`` (default), ``"cuda"`` / ``"cuda:N"``, or
            ``"auto"`` (CUDA when available; ``adsim.validation.check_device``). Inputs are moved
            there and predictions come back as NumPy arrays on the CPU.
    """

    def __init__(self, spec: FeatureSpec, model_config: ModelConfig, model: CTRModel | None = None,
                 meta: dict | None = None, device: str = "cpu"):
        device = check_device(device)
        self.spec, self.model_config = spec, model_config
        self.encoder = FeatureEncoder(spec)
        self.model = model if model is not None else CTRModel(model_config, spec)
        self.meta = dict(meta or {})
        self.device = "cpu"
        self.to(device)

    def to(self, device: str) -> CTRPredictor:
        """Move the module to ``device`` (validated as in the constructor); returns ``self``."""
        self.device = check_device(device)
        self.model.to(self.device)
        return self

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    @property
    def name(self) -> str:
        return self.model_config.name

    @torch.no_grad()
    def predict_encoded(self, enc: Encoded) -> np.ndarray:
        """Click probabilities of encoded rows: ``enc.idx`` (..., S) → (...) float32 in [0, 1]."""
        lead = enc.idx.shape[:-1]
        idx = self._tensor(enc.idx.reshape(-1, enc.idx.shape[-1]))
        val = self._tensor(enc.val.reshape(-1, enc.val.shape[-1]))
        was_training = self.model.training
        self.model.eval()
        out = [torch.sigmoid(self.model(idx[i : i + PREDICT_BATCH], val[i : i + PREDICT_BATCH]))
               for i in range(0, idx.shape[0], PREDICT_BATCH)]
        self.model.train(was_training)
        return torch.cat(out).cpu().numpy().reshape(lead)

    def encode_impressions(self, imp: Impressions) -> Encoded:
        """(M, S) slots of the shown creatives of logged impressions."""
        return self.encoder.encode(imp.user, imp.context, imp.campaign, imp.creative, imp.campaign_id)

    def predict_impressions(self, imp: Impressions) -> np.ndarray:
        """(M,) predicted click probabilities of logged impressions."""
        return self.predict_encoded(self.encode_impressions(imp))

    @torch.inference_mode()
    def predict_request(self, request) -> np.ndarray:
        """(N, K) predicted click probabilities of every candidate of an ``adsim.running_ctr.Request``.

        The request part is encoded and embedded once per request, not once per candidate.
        """
        req = self.encoder.encode_request(request.user_features, request.context_features,
                                          request.campaign_features, request.campaign)
        cre = self.encoder.encode_creatives(request.candidates)
        if cre.idx.ndim != 3 or cre.idx.shape[0] != req.idx.shape[0]:
            raise ValueError(f"candidates must be (N, K, slots) with N == {req.idx.shape[0]}, got {cre.idx.shape}")
        was_training = self.model.training
        self.model.eval()
        logits = self.model.forward_split(*(self._tensor(a) for a in (req.idx, req.val, cre.idx, cre.val)))
        self.model.train(was_training)
        return torch.sigmoid(logits).cpu().numpy()

    def predict_obs(self, obs: dict, campaign_id: np.ndarray | None = None) -> np.ndarray:
        """(N, K) predictions from a batched CreativeSelection observation (plus campaign ids if used)."""
        n = obs["user"].shape[0]
        cands = np.asarray(obs["candidates"]).reshape(n, obs["ctr_estimate"].shape[-1], -1)
        return self.predict_encoded(self.encoder.encode(obs["user"], obs["context"], obs["campaign"], cands,
                                                        campaign_id))

    def save(self, path: str | Path) -> Path:
        """Write ``model.pt`` and ``config.json`` into directory ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in self.model.state_dict().items()}, path / "model.pt")
        doc = {"format": FORMAT, "model": self.model_config.to_dict(), "features": self.spec.to_dict(), **self.meta}
        (path / "config.json").write_text(json.dumps(doc, indent=2) + "\n")
        return path


def load(path: str | Path, device: str = "cpu") -> CTRPredictor:
    """Load a model saved by :meth:`CTRPredictor.save` (a directory, or its ``config.json``) onto ``device``."""
    device = check_device(device)
    path = Path(path)
    if path.name == "config.json":
        path = path.parent
    cfg_file = path / "config.json"
    if not cfg_file.is_file() or not (path / "model.pt").is_file():
        raise ValueError(f"ctr model {str(path)!r} must be a directory with config.json and model.pt")
    doc = json.loads(cfg_file.read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{cfg_file}: format {doc.get('format')!r}, expected {FORMAT!r}")
    feats = dict(doc["features"])
    feats["attr_sizes"] = tuple(feats["attr_sizes"])
    mc = dict(doc["model"])
    mc["hidden"] = tuple(mc["hidden"])
    meta = {k: v for k, v in doc.items() if k not in ("format", "model", "features")}
    pred = CTRPredictor(FeatureSpec(**feats), ModelConfig(**mc), meta=meta)
    state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
    pred.model.load_state_dict(state)
    pred.model.eval()
    return pred.to(device)


__all__ = ["CTRPredictor", "load", "FORMAT"]
