"""Rollouts with a transformers model in this process: batched, KV-cached sampling from the live policy module
(``lcpo.rollout.decode``).

The engine holds a reference to the policy itself, so a weight update is visible to the next rollout for free and
:meth:`HFEngine.sync_weights` has nothing to copy. A sharded policy (``trainer=fsdp``) is gathered whole for each
rollout (``lcpo.models.sharding.gathered``), so ranks may decode for different numbers of steps.
"""

from __future__ import annotations

from typing import Sequence

import torch
from transformers import GenerationConfig, PreTrainedModel

from lcpo.rollout.base import Completion, SamplingConfig, encode_prompts
from lcpo.rollout.decode import sample
from lcpo.models.sharding import gathered


class HFEngine:
    """Samples in chunks of at most ``batch_size`` sequences (prompt x sample)."""

    def __init__(self, model: PreTrainedModel, tokenizer, batch_size: int, add_special_tokens: bool = False):
        if batch_size < 1:
            raise ValueError(f"rollout.batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.add_special_tokens = add_special_tokens
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
        self, prompts: Sequence[str], n: int, sampling: SamplingConfig, *, seed: int | None = None
    ) -> list[list[Completion]]:
        """``n`` completions per prompt. Prompts go in chunks so that a chunk holds at most ``batch_size`` rows.
        Sampling draws from torch's global generator (seeded by the caller), so ``seed`` is not used."""
        if n < 1:
            raise ValueError(f"need at least one sample per prompt, got n={n}")
        prompts_per_chunk = max(1, self.batch_size // n)
        was_training = self.model.training
        self.model.eval()
        try:
            with gathered(self.model):
                out: list[list[Completion]] = []
                for start in range(0, len(prompts), prompts_per_chunk):
                    out.extend(self._generate_chunk(prompts[start : start + prompts_per_chunk], n, sampling))
            return out
        finally:
            self.model.train(was_training)

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


def eos_token_ids(model: PreTrainedModel, tokenizer) -> set[int]:
    """The ids that end a response: the model's generation config first, the tokenizer's EOS otherwise."""
    return generation_eos_ids(model.generation_config, tokenizer)


def generation_eos_ids(generation_config: GenerationConfig | None, tokenizer) -> set[int]:
    """:func:`eos_token_ids` from a generation config alone (None: the tokenizer's EOS)."""
    eos = None if generation_config is None else generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    return set(eos) if isinstance(eos, (list, tuple)) else {eos}


def generation_config(
    sampling: SamplingConfig, pad_token_id: int, eos_ids: set[int], max_new_tokens: int | None = None
) -> GenerationConfig:
    """A ``GenerationConfig`` for our sampling parameters; temperature 0 means greedy decoding."""
    greedy = sampling.temperature == 0
    return GenerationConfig(
        do_sample=not greedy,
        temperature=None if greedy else sampling.temperature,
        top_p=None if greedy else sampling.top_p,
        top_k=None if greedy else sampling.top_k,
        max_new_tokens=sampling.max_new_tokens if max_new_tokens is None else max_new_tokens,
        pad_token_id=pad_token_id,
        eos_token_id=sorted(eos_ids),
    )
