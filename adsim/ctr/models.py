"""CTR models over encoded slots: logistic regression, FM, DeepFM and DCN-v2 (PyTorch).

Every model maps ``idx`` (B, S) int64 feature ids and ``val`` (B, S) float32 values (see
``adsim.ctr.features``) to click logits (B,). Slots are pooled into fields (sum of value-weighted
embeddings) for the deep parts.

* ``lr``: ``b + Σ_s w[idx_s] val_s``.
* ``fm``: LR + ``½ Σ_d [(Σ_s v_{s,d})² − Σ_s v_{s,d}²]`` with ``v_s = V[idx_s] val_s`` (Rendle 2010).
* ``deepfm``: FM + an MLP over the concatenated field embeddings, sharing ``V`` (Guo et al. 2017).
* ``dcnv2``: LR + a cross network ``x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l`` (low-rank ``W_l = U_l V_lᵀ``)
  in parallel with an MLP over the field embeddings, joined by a linear layer (Wang et al. 2021).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from adsim.config import check_choice, check_float, check_int

MODELS = ("lr", "fm", "deepfm", "dcnv2")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a CTR model (saved as JSON next to its weights)."""

    name: str = "deepfm"
    """One of ``lr``, ``fm``, ``deepfm``, ``dcnv2``."""
    embed_dim: int = 8
    """Embedding size per feature (FM, DeepFM, DCN-v2)."""
    hidden: tuple[int, ...] = (64, 32)
    """MLP widths of the deep part."""
    n_cross: int = 2
    """Cross layers of DCN-v2."""
    cross_rank: int = 16
    """Rank of each DCN-v2 cross matrix ``W = U Vᵀ`` (0 = full rank)."""
    dropout: float = 0.2
    """Dropout in the MLP (DeepFM, DCN-v2)."""

    def __post_init__(self):
        check_choice("model", self.name, MODELS)
        check_int("embed_dim", self.embed_dim, 1, 256)
        object.__setattr__(self, "hidden", tuple(self.hidden))
        for h in self.hidden:
            check_int("hidden width", h, 1, 4096)
        check_int("n_cross", self.n_cross, 0, 8)
        check_int("cross_rank", self.cross_rank, 0, 1024)
        check_float("dropout", self.dropout, 0.0, 0.9)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def _mlp(d_in: int, hidden: tuple[int, ...], dropout: float) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(d_in, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d_in = h
    return nn.Sequential(*layers), d_in


class CTRModel(nn.Module):
    """All four architectures behind one ``forward(idx, val) -> logits``.

    Categorical slots are looked up in one table ``[w | V]`` (n_features, 1 + D); numeric slots
    (constant ids, see ``FeatureSpec.numeric_slots``) enter through small matrix products, so a
    mini-batch costs one gather of the categorical slots. Field embeddings: a categorical field is
    the sum of its slots' ``V[idx]·val`` (the phrase bag sums four), a numeric field is
    ``x_block @ V_block``.

    Args:
        config: the architecture.
        spec: the feature spec the model reads (``adsim.ctr.features.FeatureSpec``).
    """

    def __init__(self, config: ModelConfig, spec):
        super().__init__()
        self.config = config
        fos = spec.field_of_slot
        num_pos, num_ids = spec.numeric_slots
        cat_pos = np.setdiff1d(np.arange(fos.size), num_pos)
        for name, arr in (("cat_pos", cat_pos), ("num_pos", num_pos), ("num_ids", num_ids)):
            self.register_buffer(name, torch.as_tensor(arr, dtype=torch.long), persistent=False)
        self._cat_runs = _runs(fos[cat_pos])  # (start, end) of each categorical field among cat slots
        num_fields = np.unique(fos[num_pos], return_inverse=True)[1]
        onehot = torch.zeros(num_pos.size, int(num_fields.max()) + 1)
        onehot[torch.arange(num_pos.size), torch.as_tensor(num_fields)] = 1.0
        self.register_buffer("num_field", onehot, persistent=False)  # (S_num, F_num)
        self.n_fields = len(np.unique(fos[cat_pos])) + onehot.shape[1]
        d = 0 if config.name == "lr" else config.embed_dim
        self.bias = nn.Parameter(torch.zeros(1))
        self.table = nn.Parameter(torch.zeros(spec.n_features, 1 + d))  # column 0: linear weight w
        if d:
            nn.init.normal_(self.table[:, 1:], std=0.01)
        if config.name in ("deepfm", "dcnv2"):
            self.mlp, width = _mlp(self.n_fields * d, config.hidden, config.dropout)
            if config.name == "deepfm":
                self.head = nn.Linear(width, 1)
            else:
                x0 = self.n_fields * d
                self.cross = nn.ModuleList(_cross(x0, config.cross_rank) for _ in range(config.n_cross))
                self.head = nn.Linear(width + x0, 1)

    def linear_weights(self) -> torch.Tensor:
        """(n_features,) weights of the linear term (penalised by ``TrainConfig.l2``)."""
        return self.table[:, 0]

    def forward(self, idx: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
        """Logits (B,) of slots ``idx`` (B, S) int64 with values ``val`` (B, S) float32."""
        b = idx.shape[0]
        ic, vc = idx[:, self.cat_pos], val[:, self.cat_pos]
        ec = self.table.index_select(0, ic.reshape(-1)).view(b, ic.shape[1], -1) * vc.unsqueeze(-1)
        xn = val[:, self.num_pos]  # (B, S_num)
        tn = self.table[self.num_ids]  # (S_num, 1 + D)
        logit = self.bias + ec[..., 0].sum(1) + xn @ tn[:, 0]
        name = self.config.name
        if name == "lr":
            return logit
        vc_, vn = ec[..., 1:], tn[:, 1:]  # (B, S_cat, D), (S_num, D)
        if name in ("fm", "deepfm"):
            s = vc_.sum(1) + xn @ vn
            sq = vc_.pow(2).sum(1) + xn.pow(2) @ vn.pow(2)
            logit = logit + 0.5 * (s * s - sq).sum(1)
            if name == "fm":
                return logit
        cat_fields = [vc_[:, i:j] if single else vc_[:, i:j].sum(1, keepdim=True)
                      for i, j, single in self._cat_runs]
        num_w = (self.num_field.unsqueeze(-1) * vn.unsqueeze(1)).flatten(1)  # (S_num, F_num*D)
        fields = torch.cat([torch.cat(cat_fields, 1).flatten(1), xn @ num_w], 1)  # (B, F*D)
        deep = self.mlp(fields)
        if name == "deepfm":
            return logit + self.head(deep)[:, 0]
        x = fields
        for layer in self.cross:
            x = fields * layer(x) + x
        return logit + self.head(torch.cat([x, deep], 1))[:, 0]


def _cross(width: int, rank: int) -> nn.Module:
    """``x ↦ W x + b`` of a cross layer, low-rank ``W = U Vᵀ`` when ``0 < rank < width``."""
    if rank == 0 or rank >= width:
        return nn.Linear(width, width)
    return nn.Sequential(nn.Linear(width, rank, bias=False), nn.Linear(rank, width))


def _runs(fields: np.ndarray) -> list[tuple[int, int, bool]]:
    """Group consecutive slots: runs of single-slot fields (kept as they are) and multi-slot fields (summed).

    Returns (start, end, single) with ``single`` True for a run of distinct single-slot fields.
    """
    bounds = np.flatnonzero(np.diff(fields)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, fields.size]
    runs: list[tuple[int, int, bool]] = []
    for i, j in zip(starts.tolist(), ends.tolist()):
        single = j - i == 1
        if single and runs and runs[-1][2]:
            runs[-1] = (runs[-1][0], j, True)
        else:
            runs.append((i, j, single))
    return runs


__all__ = ["MODELS", "ModelConfig", "CTRModel"]
