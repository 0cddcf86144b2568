"""GRPO pieces as pure tensor functions: group advantages, the PPO clipped surrogate, KL estimators, aggregation.

They take plain tensors so they can be checked against hand-computed values without a model or a trainer.
Shapes: ``[B, T]`` for per-token values of B responses, ``mask`` marks real response tokens (1) vs padding (0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

AGGREGATIONS = ("token_mean", "seq_mean", "constant")


def group_advantages(rewards: torch.Tensor, *, scale_std: bool, eps: float, unbiased: bool = True) -> torch.Tensor:
    """GRPO advantages for rewards shaped ``[num_groups, G]``: ``(r - mean_group) / (std_group + eps)``.

    ``scale_std=False`` keeps only the mean baseline (Dr. GRPO), which does not up-weight groups that barely
    differ. The reference uses the unbiased std, hence the default.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [num_groups, group_size], got shape {tuple(rewards.shape)}")
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale_std:
        return centred
    if rewards.shape[1] < 2 and unbiased:
        raise ValueError("std scaling needs at least 2 samples per group")
    return centred / (rewards.std(dim=1, keepdim=True, unbiased=unbiased) + eps)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor, clamp: float = 10.0) -> torch.Tensor:
    """Schulman's k3 estimator of KL(policy || ref): ``exp(ref - logp) - (ref - logp) - 1``, clamped as verl does.

    Unbiased and always >= 0, with lower variance than ``logp - ref_logp``.
    """
    log_ratio = ref_logp - logp
    return (torch.exp(log_ratio) - log_ratio - 1).clamp(min=-clamp, max=clamp)


def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float,
    clip_high: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped policy loss per token and a mask of tokens where the clipped branch was taken.

    ``loss = -min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A)``; a larger ``clip_high`` than
    ``clip_low`` is DAPO's clip-higher. ``advantages`` may be ``[B]`` (broadcast to every token) or ``[B, T]``.
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)
    ratio = torch.exp(logp - old_logp)
    unclipped = -ratio * advantages
    clipped = -torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * advantages
    return torch.maximum(unclipped, clipped), clipped > unclipped


def tis_weights(old_logp: torch.Tensor, rollout_logp: torch.Tensor, cap: float) -> torch.Tensor:
    """Truncated importance-sampling weights ``min(pi_trainer / pi_rollout, cap)`` per sampled token.

    The rollout engine (vLLM: other kernels, bf16) samples from a slightly different distribution than the trainer
    computes (``old_logp``); weighting each token's policy-gradient term by this ratio, capped to bound the
    variance, corrects the gap (TRL's ``vllm_importance_sampling_cap``, verl's ``tis_imp_ratio_cap``). No gradient.
    """
    return torch.exp(old_logp - rollout_logp).clamp(max=cap).detach()


def mismatch_sums(trainer_logp: torch.Tensor, rollout_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[sum |trainer - rollout|, sum k3 KL(rollout || trainer), tokens]`` over the sampled tokens in ``mask``.

    Sums and a count, so ranks and batches add up before dividing (``lcpo.algo.metrics.finish_sums``). k3 estimates
    the KL of the sampler from the trainer on the sampler's own tokens: ``r - 1 - log r``, r = pi_trainer/pi_rollout.
    """
    m = mask.to(trainer_logp.dtype)
    delta = (trainer_logp - rollout_logp).abs()
    k3 = kl_k3(rollout_logp, trainer_logp)
    return torch.stack([(delta * m).sum(), (k3 * m).sum(), m.sum()])


def global_token_normaliser(global_tokens: torch.Tensor, world_size: int) -> torch.Tensor:
    """The per-rank ``num_tokens`` that makes data-parallel training minimise the token mean over every rank's tokens.

    DDP and FSDP average gradients over ranks, so a loss normalised by the local token count averages per-rank means
    (a rank with short responses weighs as much as one with long ones). With ``sum_local / (global_tokens /
    world_size)`` on each rank, the average is ``sum_all / global_tokens``, the global token mean (verl's
    ``dp_size`` scaling). ``global_tokens`` is the token count summed over ranks.
    """
    return global_tokens.clamp(min=1).float() / world_size


def aggregate(
    values: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    constant: float | None,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
) -> torch.Tensor:
    """Reduces per-token values to one scalar.

    - ``token_mean``: sum over every real token / number of real tokens (the reference; long answers weigh more).
    - ``seq_mean``: mean over responses of each response's token mean (original GRPO).
    - ``constant``: sum / (responses x ``constant``), Dr. GRPO's length-unbiased normaliser.

    ``num_tokens``/``num_seqs`` let callers that split a mini-batch into micro-batches normalise by the whole
    mini-batch, so gradient accumulation gives the same gradient as one big batch.
    """
    mask = mask.to(values.dtype)
    if mode == "token_mean":
        denom = num_tokens if num_tokens is not None else mask.sum().clamp(min=1.0)
        return (values * mask).sum() / denom
    if mode == "seq_mean":
        per_seq = (values * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
        denom = num_seqs if num_seqs is not None else values.shape[0]
        return per_seq.sum() / denom
    if mode == "constant":
        if constant is None or constant <= 0:
            raise ValueError("algo.loss_constant must be a positive number for loss_agg=constant")
        denom = num_seqs if num_seqs is not None else values.shape[0]
        return (values * mask).sum() / (denom * constant)
    raise ValueError(f"unknown algo.loss_agg {mode!r}; expected one of {AGGREGATIONS}")


@dataclass
class LossOutput:
    """The scalar to back-propagate and detached statistics (means over real tokens of this micro-batch)."""

    loss: torch.Tensor
    policy_loss: torch.Tensor
    kl: torch.Tensor
    entropy: torch.Tensor
    clip_fraction: torch.Tensor
    ratio: torch.Tensor


def grpo_loss(
    logp: torch.Tensor,
    entropy: torch.Tensor,
    mask: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    ref_logp: torch.Tensor | None = None,
    *,
    clip_low: float,
    clip_high: float,
    kl_coef: float,
    entropy_coef: float,
    loss_agg: str,
    loss_constant: float | None,
    num_tokens: float | None = None,
    num_seqs: float | None = None,
    pg_weight: torch.Tensor | None = None,
) -> LossOutput:
    """The full GRPO objective for one micro-batch: clipped surrogate + kl_coef * k3 - entropy_coef * entropy.

    ``logp`` and ``entropy`` are the policy's per-token log-probs of the sampled tokens and entropies of its
    sampling distribution (``lcpo.algo.logprobs``), with gradients; the other ``[B, T]`` inputs are constants.
    ``pg_weight`` scales each token's clipped-surrogate term (truncated importance weights, :func:`tis_weights`;
    0 on tokens the policy gradient leaves out, which still count in the KL term and the token count).
    """
    pg, clipped = clipped_surrogate(logp, old_logp, advantages, clip_low, clip_high)
    if pg_weight is not None:
        pg = pg * pg_weight

    def agg(x: torch.Tensor) -> torch.Tensor:
        return aggregate(x, mask, loss_agg, loss_constant, num_tokens, num_seqs)

    policy_loss = agg(pg)
    loss = policy_loss
    if ref_logp is not None and kl_coef != 0:
        kl_tok = kl_k3(logp, ref_logp)
        loss = loss + kl_coef * agg(kl_tok)
    else:
        kl_tok = torch.zeros_like(logp)
    if entropy_coef != 0:
        loss = loss - entropy_coef * agg(entropy)
    with torch.no_grad():
        m = mask.float()
        n = m.sum().clamp(min=1.0)
        stats = {
            "kl": (kl_tok * m).sum() / n,
            "entropy": (entropy * m).sum() / n,
            "clip_fraction": (clipped.float() * m).sum() / n,
            "ratio": (torch.exp(logp - old_logp) * m).sum() / n,
        }
    return LossOutput(loss=loss, policy_loss=policy_loss.detach(), **stats)
