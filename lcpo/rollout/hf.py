"""Rollouts with a transformers model in this process: batched, KV-cached sampling from the live policy module
(``lcpo.rollout.decode``).

The engine holds a reference to the policy itself, so a weight update is visible to the next rollout for free and
:meth:`HFEngine.sync_weights` has nothing to copy. A sharded policy (``trainer=fsdp``) is gathered whole for each
rollout (``lcpo.models.sharding.gathered``), so ranks may decode for different numbers of steps.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Sequence

import torch
from transformers import PreTrainedModel

from lcpo.models.sharding import gathered
from lcpo.rollout.base import Completion, SamplingConfig
from lcpo.rollout.decode import sample
from lcpo.rollout.tokens import encode_prompts, eos_token_ids


class HFEngine:
    """Samples in chunks of at most ``batch_size`` sequences (prompt x sample), under autocast to ``dtype`` when it
    is a 16-bit type (the run's compute dtype; the trainer's own autocast is off during engine calls)."""

    def __init__(self, model: PreTrainedModel, tokenizer, batch_size: int, add_special_tokens: bool = False,
                 dtype: torch.dtype | None = None):
        if batch_size < 1:
            raise ValueError(f"rollout.batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.add_special_tokens = add_special_tokens
        self.dtype = dtype
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"

    @property
    def eos_ids(self) -> set[int]:
        return eos_token_ids(self.model, self.tokenizer)

    def start(self, device: torch.device) -> None:
        """Nothing to claim: generation runs the training module where it is."""

    def offload(self) -> None:
        """Nothing to free: the engine holds no memory of its own."""

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Points the engine at ``model``: generation shares the training module, so this copies nothing."""
        self.model = model

    def close(self) -> None:
        """Drops the engine's reference to the model."""
        self.model = None

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        sampling: SamplingConfig,
        *,
        budgets: Sequence[int] | None = None,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        """``n`` completions per prompt. Prompts go in chunks so that a chunk holds at most ``batch_size`` rows.
        Sampling draws from torch's global generator (seeded by the caller), so ``seed`` is not used; nor are
        ``budgets``: the policy reads its budget in the prompt."""
        if n < 1:
            raise ValueError(f"need at least one sample per prompt, got n={n}")
        prompts_per_chunk = max(1, self.batch_size // n)
        was_training = self.model.training
        self.model.eval()
        try:
            with gathered(self.model), self._autocast():
                out: list[list[Completion]] = []
                for start in range(0, len(prompts), prompts_per_chunk):
                    out.extend(self._generate_chunk(prompts[start : start + prompts_per_chunk], n, sampling))
            return out
        finally:
            self.model.train(was_training)

    def _autocast(self) -> AbstractContextManager:
        if self.dtype in (None, torch.float32):
            return nullcontext()
        return torch.autocast(next(self.model.parameters()).device.type, dtype=self.dtype)

    def _generate_chunk(self, prompts: Sequence[str], n: int, sampling: SamplingConfig) -> list[list[Completion]]:
        prompt_ids = encode_prompts(self.tokenizer, prompts, self.add_special_tokens)
        responses = sample(self.model, prompt_ids, n, sampling, self.eos_ids, self.tokenizer.pad_token_id)
        groups: list[list[Completion]] = []
        for i, ids in enumerate(prompt_ids):
            group = []
            for tokens in responses[i * n : (i + 1) * n]:
                reason = "eos" if tokens and tokens[-1] in self.eos_ids else "length"
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                group.append(Completion(prompt_ids=ids, token_ids=tokens, text=text, finish_reason=reason))
            groups.append(group)
        return groups

