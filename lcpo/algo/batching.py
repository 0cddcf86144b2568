"""Packing (prompt, response) token lists into right-padded tensors (rollouts for the update, traces for SFT),
left-padding prompts for generation, and splitting packed rows into micro-batches of bounded size."""

from __future__ import annotations

from typing import Sequence

import torch


def pack(pairs: Sequence[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded prompt+response ids of (prompt, response) pairs, with attention and response masks.

    Right padding keeps every row's tokens at positions 0..n-1, so position ids need no correction and a
    micro-batch can drop the padding columns all its rows share.
    """
    width = max(len(p) + len(r) for p, r in pairs)
    input_ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(pairs), width), dtype=torch.long)
    response = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, (prompt, completion) in enumerate(pairs):
        n = len(prompt) + len(completion)
        input_ids[i, :n] = torch.tensor(prompt + completion)
        attention[i, :n] = 1
        response[i, len(prompt) : n] = 1
    return input_ids, attention, response


def left_pad(
    sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ``input_ids`` and ``attention_mask`` of token lists: every row's next token goes in the same
    (last) column, as generation needs; position ids are then ``(mask.cumsum(-1) - 1).clamp(min=0)``."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for i, seq in enumerate(sequences):
        ids[i, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long, device=device)
        mask[i, width - len(seq) :] = 1
    return ids, mask


def pack_response_logprobs(pairs: Sequence[tuple[list[int], list[float]]], width: int) -> torch.Tensor:
    """Per-token values of each response (prompt token ids, one value per response token) laid out like the
    trainer's log-probs of ``input_ids[:, 1:]`` for a batch :func:`pack` made ``width`` wide: the value of the
    response's j-th token sits at column ``len(prompt) + j - 1``; everything else is 0."""
    out = torch.zeros((len(pairs), width - 1), dtype=torch.float32)
    for i, (prompt, values) in enumerate(pairs):
        out[i, len(prompt) - 1 : len(prompt) - 1 + len(values)] = torch.tensor(values, dtype=torch.float32)
    return out


def micro_batches(lengths: Sequence[int], max_tokens: int, min_count: int = 1) -> list[list[int]]:
    """Splits rows into micro-batches of at most ``max_tokens`` padded tokens (rows x the longest row's length).

    Rows go longest first, so each micro-batch holds rows of similar length and little padding; a row longer than
    ``max_tokens`` forms a micro-batch of its own. ``min_count`` asks for at least that many micro-batches (the
    fullest ones are halved until there are): under DDP and FSDP every rank must run as many forward and backward
    passes as the others, since each one takes part in collectives. Returns lists of row indices into ``lengths``.
    """
    if max_tokens < 1:
        raise ValueError(f"algo.micro_batch_tokens must be >= 1, got {max_tokens}")
    if lengths and not 1 <= min_count <= len(lengths):
        raise ValueError(f"cannot split {len(lengths)} rows into {min_count} micro-batches")
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= max_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    while batches and len(batches) < min_count:
        fullest = max(range(len(batches)), key=lambda b: (len(batches[b]) > 1, len(batches[b]) * lengths[batches[b][0]]))
        rows = batches.pop(fullest)
        batches[fullest:fullest] = [rows[: len(rows) // 2], rows[len(rows) // 2 :]]
    return batches
