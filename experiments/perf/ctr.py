"""CTR-model throughput: training (impressions/s, one epoch of Adam) and batched inference
(candidate scores/s through ``LearnedCTR.estimate`` on the vector env's requests, encoding included).

Accuracy targets (DeepFM / DCN-v2 against LR and the oracle at 200,000 impressions) are measured by
``adsim train-ctr --compare``; see the README's CTR section.
"""

from __future__ import annotations

import time

import torch

from adsim import make_config
from adsim.selection import SelectionCore
from adsim.ctr import CTRPredictor, FeatureSpec, ModelConfig, TrainConfig, fit, log_impressions
from adsim.ctr.learned import LearnedCTR
from experiments.perf import median_rate

SUITE = "ctr"
PRESET = "personalized"


def _training(name: str, imp, quick: bool) -> dict:
    spec = FeatureSpec.from_config(make_config(PRESET))
    mc = ModelConfig(name=name)
    enc = CTRPredictor(spec, mc).encode_impressions(imp)
    cfg = TrainConfig(max_epochs=1 if quick else 3, val_fraction=0.0, seed=0)
    t = time.perf_counter()
    _, hist = fit(spec, mc, enc, imp.click, cfg)
    rates = sorted(h["rows_per_s"] for h in hist)
    return {"impressions_per_s_median": rates[len(rates) // 2], "epochs": len(hist),
            "rows": len(imp), "batch_size": cfg.batch_size, "seconds": time.perf_counter() - t}


def _inference(name: str, n: int, quick: bool) -> dict:
    config = make_config(PRESET)
    est = LearnedCTR(CTRPredictor(FeatureSpec.from_config(config), ModelConfig(name=name)))
    core = SelectionCore(config, n, estimator=est)
    core.seed(range(n))
    core.start_episode()
    request = core.request

    def chunk() -> int:
        est.estimate(request)
        return request.candidates.shape[0] * request.candidates.shape[1]

    chunk()
    return median_rate(chunk, repeats=3 if quick else 5, min_time=0.1 if quick else 0.5)


def run(quick: bool = False) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        imp = log_impressions(make_config(PRESET), 20_000 if quick else 100_000, seed=0)
        out = {"config": {"preset": PRESET, "K": 8, "torch_threads": 1,
                          "note": "2-core machine shared with other jobs: figures are noisy"}}
        for name in ("lr", "deepfm", "dcnv2"):
            out[f"train_{name}"] = _training(name, imp, quick)
        for name in ("lr", "deepfm", "dcnv2"):
            out[f"infer_{name}_N1024_scores_per_s"] = _inference(name, 1024, quick)
        return out
    finally:
        torch.set_num_threads(threads)
