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

from adsim.validation import check_choice, check_float, check_int

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
    """All four architectures behind ``forward(idx, val) -> logits`` and its batched-request form.

    Slots come in two groups (see ``adsim.ctr.features``): request slots (user, context, campaign)
    and creative slots. :meth:`forward_split` scores K creatives per request computing the request
    part once (including its share of the MLP's first layer); :meth:`forward` is the K = 1 case, so
    training and serving run the same code. Categorical slots are looked up in one table ``[w | V]``
    (n_features, 1 + D); numeric slots (constant ids, ``FeatureSpec.numeric_slots``) enter through
    small matrix products. A categorical field's embedding is the sum of its slots' ``V[idx]·val``
    (the phrase bag sums four), a numeric field's is ``x_block @ V_block``.

    Args:
        config: the architecture.
        spec: the feature spec the model reads (``adsim.ctr.features.FeatureSpec``).
    """

    def __init__(self, config: ModelConfig, spec):
        super().__init__()
        self.config = config
        fos, self.n_req = spec.field_of_slot, spec.n_request_slots
        num_pos, num_ids = spec.numeric_slots
        if num_pos.size and num_pos.max() >= self.n_req:
            raise ValueError("numeric slots must all be request slots")
        cat_pos = np.setdiff1d(np.arange(self.n_req), num_pos)
        for name, arr in (("cat_pos", cat_pos), ("num_pos", num_pos), ("num_ids", num_ids)):
            self.register_buffer(name, torch.as_tensor(arr, dtype=torch.long), persistent=False)
        self._req_runs, self._cre_runs = _runs(fos[cat_pos]), _runs(fos[self.n_req :])
        num_fields = np.unique(fos[num_pos], return_inverse=True)[1]
        onehot = torch.zeros(num_pos.size, int(num_fields.max()) + 1)
        onehot[torch.arange(num_pos.size), torch.as_tensor(num_fields)] = 1.0
        self.register_buffer("num_field", onehot, persistent=False)  # (S_num, F_num)
        self.n_req_fields = len(np.unique(fos[cat_pos])) + onehot.shape[1]
        self.n_fields = self.n_req_fields + len(np.unique(fos[self.n_req :]))
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
        r = self.n_req
        return self.forward_split(idx[:, :r], val[:, :r], idx[:, None, r:], val[:, None, r:])[:, 0]

    def _lookup(self, idx, val, runs):
        """Categorical slots (B, S) → linear term (B,), embeddings (B, S, D), field embeddings (B, F, D)."""
        e = self.table.index_select(0, idx.reshape(-1)).view(*idx.shape, -1) * val.unsqueeze(-1)
        v = e[..., 1:]
        fields = None
        if self.config.name in ("deepfm", "dcnv2"):
            fields = torch.cat([v[:, i:j] if single else v[:, i:j].sum(1, keepdim=True) for i, j, single in runs], 1)
        return e[..., 0].sum(1), v, fields

    def forward_split(self, req_idx, req_val, cre_idx, cre_val) -> torch.Tensor:
        """Logits (N, K) of K creatives per request: request slots (N, S_req), creative slots (N, K, S_cre)."""
        n, k = cre_idx.shape[:2]
        lin_r, v_r, f_r = self._lookup(req_idx[:, self.cat_pos], req_val[:, self.cat_pos], self._req_runs)
        lin_c, v_c, f_c = self._lookup(cre_idx.reshape(n * k, -1), cre_val.reshape(n * k, -1), self._cre_runs)
        xn, tn = req_val[:, self.num_pos], self.table[self.num_ids]  # (N, S_num), (S_num, 1 + D)
        logit = (self.bias + lin_r + xn @ tn[:, 0])[:, None] + lin_c.view(n, k)
        name = self.config.name
        if name == "lr":
            return logit
        vn = tn[:, 1:]
        if name in ("fm", "deepfm"):
            s = (v_r.sum(1) + xn @ vn)[:, None] + v_c.sum(1).view(n, k, -1)
            sq = (v_r.pow(2).sum(1) + xn.pow(2) @ vn.pow(2))[:, None] + v_c.pow(2).sum(1).view(n, k, -1)
            logit = logit + 0.5 * (s * s - sq).sum(-1)
            if name == "fm":
                return logit
        num_w = (self.num_field.unsqueeze(-1) * vn.unsqueeze(1)).flatten(1)  # (S_num, F_num*D)
        f_r = torch.cat([f_r.flatten(1), xn @ num_w], 1)  # (N, F_req*D)
        f_c = f_c.reshape(n, k, -1)  # (N, K, F_cre*D)
        first, rest = self.mlp[0], self.mlp[1:]
        w_r, w_c = first.weight[:, : f_r.shape[1]], first.weight[:, f_r.shape[1] :]
        deep = rest((f_r @ w_r.T)[:, None] + f_c @ w_c.T + first.bias)  # the first layer, split
        if name == "deepfm":
            return logit + self.head(deep)[..., 0]
        x0 = torch.cat([f_r[:, None].expand(n, k, -1), f_c], -1)
        x = x0
        for layer in self.cross:
            x = x0 * layer(x) + x
        return logit + self.head(torch.cat([x, deep], -1))[..., 0]


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
