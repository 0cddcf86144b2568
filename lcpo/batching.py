"""Packing (prompt, response) token lists into right-padded tensors: rollouts for the update, traces for SFT."""

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
