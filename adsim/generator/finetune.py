"""CTR-driven fine-tuning: REINFORCE with a per-request baseline and a KL penalty.

For a batch of requests the policy (the generator) samples K creatives each; the reward of a
creative is ``log`` of a *learned* CTR model's estimate (any ``CTREstimator``; never the hidden
truth) minus ``kl_coef`` times the sequence's log-ratio to the frozen pre-trained model (a
sampled KL estimate that keeps the text close to what the teacher taught) minus ``guard_coef``
per public well-formedness flag (the learned model never saw off-product text in the logs, so it
cannot know that readers punish it; without the guard the policy drifts there — reward hacking
that only the true CTR reveals). The baseline is the
mean reward of the request's K samples (leave-one-in, as in RLOO/GRPO); advantages are scaled by
their batch standard deviation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from adsim.creative.sampler import creative_quality
from adsim.running_ctr import CTREstimator
from adsim.generator.conditioning import drop_groups, request_observation, request_values, sample_requests, to_tokens
from adsim.generator.decode import DONE, DecodeSpec, decode, grammar_masks, next_state, tokens_to_creatives
from adsim.generator.model import MAX_DECODE, CreativeTransformer
from adsim.generator.tokenizer import BOS
from adsim.validation import check_float, check_int, check_seed
from adsim.world import World


@dataclass(frozen=True)
class FinetuneConfig:
    """Policy-gradient hyperparameters."""

    steps: int = 150
    """Gradient steps."""
    requests_per_step: int = 64
    """Requests sampled per step."""
    k: int = 8
    """Creatives sampled per request (the baseline is their mean reward)."""
    lr: float = 3e-4
    """Adam learning rate."""
    kl_coef: float = 0.1
    """Weight of the KL penalty to the pre-trained model (per sequence, in nats)."""
    guard_coef: float = 1.0
    """Reward penalty per *public* well-formedness flag of a creative (off-product, no product,
    repeated role — ``creative_quality``, which any policy may compute). 0 disables the guard."""
    drop_prob: float = 0.3
    """Share of requests per optional field group conditioned as unknown (as in pre-training), so
    the paths the env uses (no context, no user in pool mode) are fine-tuned and KL-held too."""
    synthetic_campaigns: bool = True
    """Requests advertise any catalog item with any goal (campaign id −1 in the ``Request``), as in
    pre-training; False keeps to the world's campaigns (for estimators keyed by campaign id)."""
    seed: int = 0
    """Seed of the requests and the sampling uniforms."""

    def __post_init__(self):
        check_int("steps", self.steps, 1)
        check_int("requests_per_step", self.requests_per_step, 1)
        check_int("k", self.k, 2)
        check_float("lr", self.lr, 0.0, 1.0, open_low=True)
        check_float("kl_coef", self.kl_coef, 0.0, 100.0)
        check_float("guard_coef", self.guard_coef, 0.0, 100.0)
        check_float("drop_prob", self.drop_prob, 0.0, 1.0)
        object.__setattr__(self, "seed", check_seed(self.seed))  # a NumPy integer is stored as int


def sequence_logp(model: CreativeTransformer, cond: torch.Tensor, tokens: torch.Tensor,
                  masks: torch.Tensor) -> torch.Tensor:
    """(B,) log-probability of decoder outputs (B, MAX_DECODE) under the grammar-masked model."""
    B, dev = tokens.shape[0], tokens.device
    dec_in = torch.cat([torch.full((B, 1), BOS, device=dev), tokens[:, :-1]], 1)
    states = [torch.zeros(B, dtype=torch.long, device=dev)]
    for t in range(MAX_DECODE - 1):
        states.append(next_state(states[-1], tokens[:, t]))
    state = torch.stack(states, 1)  # (B, T) grammar state before each output
    logits = model(cond, dec_in) + masks[state]
    logp = torch.log_softmax(logits, -1).gather(-1, tokens[..., None])[..., 0]
    return torch.where(state == DONE, 0.0, logp).sum(1)


def _rollout(policy: CreativeTransformer, world: World, estimator: CTREstimator, config: FinetuneConfig,
             rng: np.random.Generator, masks: torch.Tensor, users: np.ndarray | None = None):
    """Sample K creatives for each of a batch of random requests; score them.

    Returns conditioning (B·K, N_FIELDS), tokens (B·K, MAX_DECODE), the learned model's estimates
    (B, K) and the number of public well-formedness flags of each creative (B, K).
    """
    B, K = config.requests_per_step, config.k
    req = sample_requests(world, B, rng, synthetic_campaigns=config.synthetic_campaigns, users=users)
    values, _ = drop_groups(request_values(world, req), rng, config.drop_prob)  # as in pre-training
    dev = policy.device
    cond = torch.as_tensor(to_tokens(values, policy.vocab)).repeat_interleave(K, 0).to(dev)
    u = torch.as_tensor(rng.random((B * K, MAX_DECODE)), dtype=torch.float32).to(dev)  # drawn on the CPU
    policy.eval()
    tokens = decode(policy, cond, u, DecodeSpec(method="sample"), masks=masks).clone()  # out of inference mode
    creatives = tokens_to_creatives(tokens.cpu().numpy(), policy.vocab).reshape(B, K, -1)
    est = estimator.estimate(request_observation(world, req)._replace(candidates=creatives))
    flags = creative_quality(creatives, req["category"])[..., :3].sum(-1)
    return cond, tokens, est, flags


def finetune(model: CreativeTransformer, world: World, estimator: CTREstimator, config: FinetuneConfig,
             progress: bool = True, monitor: Callable[[CreativeTransformer], float] | None = None,
             monitor_every: int = 25, users: np.ndarray | None = None) -> tuple[CreativeTransformer, dict[str, list]]:
    """Fine-tune a copy of ``model``; returns it (eval mode) and per-step curves.

    ``world`` supplies only the public request distribution and observable tables; ``users`` (ids,
    e.g. :func:`adsim.users.seen_user_ids`) restricts the requests' users to those (None: every
    user), so held-out users never reach the gradient. ``monitor`` (optional, for reporting only —
    e.g. true CTR on held-out requests) is called on the policy every ``monitor_every`` steps; its
    value never reaches the gradient.
    """
    from adsim.generator.conditioning import check_users

    users = check_users(users, world.config.n_users)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 19]))
    ref = copy.deepcopy(model).eval()
    policy = copy.deepcopy(model)
    opt = torch.optim.Adam(policy.parameters(), lr=config.lr)
    masks = grammar_masks(policy.vocab, policy.device)  # the copies live where the model does
    curve: dict[str, list] = {"est_ctr": [], "kl": [], "loss": [], "flagged": [], "monitor": []}
    for step in tqdm(range(config.steps), desc="fine-tune generator", disable=not progress):
        if monitor is not None and step % monitor_every == 0:
            curve["monitor"].append((step, monitor(policy.eval())))
        cond, tokens, est, flags = _rollout(policy, world, estimator, config, rng, masks, users)
        policy.train()
        logp = sequence_logp(policy, cond, tokens, masks)
        with torch.no_grad():
            kl = logp - sequence_logp(ref, cond, tokens, masks)
        reward = torch.as_tensor((np.log(np.maximum(est, 1e-6)) - config.guard_coef * flags).reshape(-1),
                                 dtype=torch.float32).to(policy.device)
        total = (reward - config.kl_coef * kl).view(-1, config.k)
        adv = total - total.mean(1, keepdim=True)  # baseline: the request's mean reward
        adv = (adv / (adv.std() + 1e-6)).view(-1)
        loss = -(adv * logp).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        for key, value in (("est_ctr", est.mean()), ("flagged", (flags > 0).mean()), ("kl", kl.mean()),
                           ("loss", loss.detach())):
            curve[key].append(float(value))
    if monitor is not None:
        curve["monitor"].append((config.steps, monitor(policy.eval())))
    return policy.eval(), curve
