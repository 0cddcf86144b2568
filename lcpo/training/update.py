"""The GRPO update on one rollout batch: PPO epochs x mini-batches of optimiser steps, each accumulated over
micro-batches, against the log-probs of the policy that sampled the batch.

Plain PyTorch (the optimiser and an :class:`UpdateHooks` object, which says how to take a backward and an optimiser
step and how to sum over ranks, are passed in), so the LightningModule and the memory benchmark run the same code.
Three things keep it cheap at scale:

- log-probs and entropies are computed at response positions only, from hidden states sliced before the LM head,
  in chunks of tokens (``lcpo.algo.logprobs``);
- micro-batches are sized in tokens, rows sorted by length so that a micro-batch carries little padding
  (``lcpo.algo.batching.micro_batches``); mini-batches still hold whole groups;
- the first optimiser step of the first PPO epoch sees the policy that sampled, so its rows take the detached
  current log-probs as the old ones: with one epoch and one mini-batch there is no extra forward pass at all.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Optional

import torch

from lcpo.algo.batching import micro_batches
from lcpo.algo.logprobs import chunk_tokens, chunked_logprobs
from lcpo.algo.losses import global_token_normaliser, grpo_loss, mismatch_sums, tis_weights
from lcpo.config.algo import AlgoConfig
from lcpo.models.sharding import whole
from lcpo.training.collector import RolloutBatch

#: Statistics of every micro-batch's loss that the update reports.
LOSS_STATS = ("loss", "policy_loss", "kl", "entropy", "clip_fraction", "ratio")


class UpdateHooks:
    """How the update takes part in its surroundings; these defaults run one process with a plain optimiser.

    The training module overrides them for Lightning (its backward, gradient sync, step guard) and for data-parallel
    ranks, which sum token counts and the rollout mismatch over ranks and agree on micro-batch counts.
    """

    world_size: int = 1

    def backward(self, loss: torch.Tensor, sync: bool) -> None:
        """Accumulates ``loss``'s gradients; ``sync`` is true on a mini-batch's last micro-batch only, where
        data-parallel gradients need reducing over ranks."""
        loss.backward()

    def step(self, optimizer: Any, grad_norm: torch.Tensor) -> None:
        """Takes the optimiser (and scheduler) step after clipping to ``grad_norm``."""
        optimizer.step()

    def all_sum(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` summed over ranks."""
        return value

    def all_max(self, count: int) -> int:
        """The largest ``count`` of any rank."""
        return count


def _agreed_micro_batches(lengths: list[int], max_tokens: int, hooks: UpdateHooks) -> list[list[int]]:
    """Token-sized micro-batches of ``lengths``, as many as on the rank that needs the most."""
    plan = micro_batches(lengths, max_tokens)
    count = hooks.all_max(len(plan))
    return plan if count == len(plan) else micro_batches(lengths, max_tokens, min_count=count)


def response_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    temperature: float = 1.0,
    chunk_mb: float = 128.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of the response tokens and entropies of the distributions they were drawn from, ``[B, T - 1]``.

    Position ``t`` holds the values for token ``t + 1`` (0 where that token is not a response token). The decoder
    runs on the whole rows; the LM head only on the hidden states of the positions that predict response tokens.
    ``temperature`` matches the sampling temperature, so the PPO ratio compares like with like.
    """
    config = getattr(model, "config", None)
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None) not in (None, 1.0):
        raise NotImplementedError(f"{type(model).__name__} transforms its logits after the LM head; not supported")
    # The model's own forward runs (so wrappers such as FSDP gather its weights), with logits for one position
    # only; the decoder's output is taken from a hook.
    captured: list[torch.Tensor] = []
    hook = model.base_model.register_forward_hook(lambda _m, _a, out: captured.append(out.last_hidden_state))
    try:
        model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, logits_to_keep=1)
    finally:
        hook.remove()
    hidden, head = captured[0], model.get_output_embeddings()
    wanted = response_mask[:, 1:].bool()
    logp, entropy = chunked_logprobs(
        hidden[:, :-1][wanted],
        head.weight,
        input_ids[:, 1:][wanted],
        head.bias,
        temperature,
        chunk_tokens(head.weight.shape[0], chunk_mb),
    )
    zeros = torch.zeros(wanted.shape, dtype=logp.dtype, device=logp.device)
    return zeros.masked_scatter(wanted, logp), zeros.masked_scatter(wanted, entropy)


def _rows(rb: RolloutBatch, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Input ids, attention and response masks of ``rows``, without the right padding they all share."""
    index = torch.tensor(rows, device=rb.input_ids.device)
    attn = rb.attention_mask[index]
    width = int(attn.sum(-1).max())
    return rb.input_ids[index, :width], attn[:, :width], rb.response_mask[index, :width], width


@torch.no_grad()
def frozen_logprobs(
    model: torch.nn.Module,
    rb: RolloutBatch,
    rows: list[int],
    algo: AlgoConfig,
    temperature: float,
    hooks: UpdateHooks,
) -> torch.Tensor:
    """Per-token log-probs of ``rows`` under ``model``, without gradient, ``[N, T - 1]`` (0 in other rows)."""
    out = torch.zeros(rb.input_ids.shape[0], rb.input_ids.shape[1] - 1, device=rb.input_ids.device)
    lengths = rb.attention_mask.sum(-1).tolist()
    for micro in _agreed_micro_batches([lengths[r] for r in rows], algo.micro_batch_tokens, hooks):
        chosen = [rows[i] for i in micro]
        ids, attn, resp, width = _rows(rb, chosen)
        logp, _ = response_logprobs(model, ids, attn, resp, temperature, algo.logit_chunk_mb)
        out[torch.tensor(chosen, device=out.device), : width - 1] = logp
    return out


def ppo_update(
    policy: torch.nn.Module,
    ref_model: Optional[torch.nn.Module],
    rb: RolloutBatch,
    algo: AlgoConfig,
    optimizer: Any,
    hooks: UpdateHooks = UpdateHooks(),
    *,
    temperature: float = 1.0,
) -> dict[str, list[torch.Tensor]]:
    """Runs ``algo.updates_per_step`` optimiser steps on ``rb`` and returns every statistic of the update: per
    micro-batch (:data:`LOSS_STATS`), per optimiser step (``grad_norm``) and, when the engine returned its sampling
    log-probs, their distance from the trainer's (``rollout_logp_abs_diff``, ``rollout_kl``, over every rank).

    Mini-batches hold whole groups (``algo.mini_batch_prompts`` prompts split over ``hooks.world_size`` ranks);
    each is split into micro-batches whose gradients accumulate (``hooks.backward``), normalised by the
    mini-batch's token count over every rank (:func:`global_token_normaliser`) or its sequence count so the step
    equals one on the whole mini-batch; after clipping, ``hooks.step`` takes the optimiser step. When the engine has
    sampling log-probs, the old log-probs are computed for every row and compared with them, and with
    ``algo.tis_cap`` each token's loss is weighted by the truncated importance ratio. Every rank runs as many
    micro-batches as the rank that needs the most (``hooks.all_max``): under DDP and FSDP each forward and backward
    takes part in collectives, and token-sized micro-batches differ in number from rank to rank.
    """
    n = rb.input_ids.shape[0]
    group_size = int((rb.group == rb.group[0]).sum())
    rows_per_mini = max(1, algo.mini_batch_prompts // hooks.world_size) * group_size
    minis = [list(range(start, min(start + rows_per_mini, n))) for start in range(0, n, rows_per_mini)]
    # Rows first trained on after an optimiser step need the sampling policy's log-probs computed up front; the
    # first step's rows take their detached current ones, unless the engine's log-probs are to be compared.
    every_row = algo.ppo_epochs > 1 or rb.rollout_logp is not None
    stale = list(range(n)) if every_row else [r for mini in minis[1:] for r in mini]
    old_logp = frozen_logprobs(policy, rb, stale, algo, temperature, hooks) if stale else None
    ref_logp = None if ref_model is None else frozen_logprobs(ref_model, rb, list(range(n)), algo, temperature, hooks)
    stats: dict[str, list[torch.Tensor]] = defaultdict(list)
    tis = None if rb.rollout_logp is None else _rollout_mismatch(old_logp, rb, algo, hooks, stats)
    lengths = rb.attention_mask.sum(-1).tolist()
    max_norm = algo.grad_clip if algo.grad_clip > 0 else float("inf")
    for epoch in range(algo.ppo_epochs):
        for m, mini in enumerate(minis):
            optimizer.zero_grad()
            local_tokens = rb.response_mask[mini[0] : mini[-1] + 1, 1:].sum()
            num_tokens = global_token_normaliser(hooks.all_sum(local_tokens.float()), hooks.world_size)
            fresh = epoch == 0 and m == 0 and not every_row
            micros = _agreed_micro_batches([lengths[r] for r in mini], algo.micro_batch_tokens, hooks)
            for number, micro in enumerate(micros, start=1):
                rows = [mini[i] for i in micro]
                index = torch.tensor(rows, device=rb.input_ids.device)
                ids, attn, resp, width = _rows(rb, rows)
                logp, entropy = response_logprobs(policy, ids, attn, resp, temperature, algo.logit_chunk_mb)
                out = grpo_loss(
                    logp,
                    entropy,
                    resp[:, 1:],
                    logp.detach() if fresh else old_logp[index, : width - 1],
                    rb.advantages[index],
                    None if ref_logp is None else ref_logp[index, : width - 1],
                    clip_low=algo.clip_low,
                    clip_high=algo.clip_high,
                    kl_coef=algo.kl_coef,
                    entropy_coef=algo.entropy_coef,
                    loss_agg=algo.loss_agg,
                    loss_constant=algo.loss_constant,
                    num_tokens=num_tokens,
                    num_seqs=float(len(mini)),
                    pg_weight=_pg_weight(rb, tis, index, width),
                )
                hooks.backward(out.loss, number == len(micros))
                for key in LOSS_STATS:
                    stats[key].append(getattr(out, key).detach())
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), max_norm)
            stats["grad_norm"].append(whole(grad_norm).detach())
            hooks.step(optimizer, stats["grad_norm"][-1])
    return stats


def _pg_weight(rb: RolloutBatch, tis: torch.Tensor | None, index: torch.Tensor, width: int) -> torch.Tensor | None:
    """Per-token weights of the clipped surrogate for ``index``'s rows: the truncated importance weights, times 0 on
    the tokens the policy gradient leaves out (``rb.policy_mask``); None when neither applies."""
    weight = None if tis is None else tis[index, : width - 1]
    if rb.policy_mask is None:
        return weight
    keep = rb.policy_mask[index, 1:width].float()
    return keep if weight is None else weight * keep


def _rollout_mismatch(
    old_logp: torch.Tensor, rb: RolloutBatch, algo: AlgoConfig, hooks: UpdateHooks,
    stats: dict[str, list[torch.Tensor]],
) -> torch.Tensor | None:
    """Records how far the engine's sampling log-probs are from the trainer's on the sampled tokens (mean |delta|
    and k3 KL, over every rank's tokens); returns the truncated importance-sampling weights when ``algo.tis_cap``
    is set."""
    mask = rb.response_mask[:, 1:]
    totals = hooks.all_sum(mismatch_sums(old_logp, rb.rollout_logp, mask))
    count = totals[2].clamp(min=1)
    stats["rollout_logp_abs_diff"].append(totals[0] / count)
    stats["rollout_kl"].append(totals[1] / count)
    if algo.tis_cap is None:
        return None
    return tis_weights(old_logp, rb.rollout_logp, algo.tis_cap) * mask
