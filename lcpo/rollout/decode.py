"""A sampling loop for rollouts: n samples per prompt from a transformers causal LM, cheaper than ``generate``.

Rollouts of a group share one prompt and stop at very different lengths, and on small models every decode step is
dominated by memory traffic and per-call overhead rather than arithmetic. So this loop

- runs the prompt (prefill) once per distinct prompt and repeats its KV cache for the ``n`` samples;
- keeps keys and values in buffers with room for the whole response, written in place (a ``DynamicCache``
  concatenates, copying the whole cache on every step);
- drops finished rows from the batch once a quarter of them have stopped, so later steps compute only live rows.

Sampling goes through transformers' own logits warpers (temperature, top-k, top-p), so it draws from the same
distribution as ``generate`` with the same settings; temperature 0 is greedy and matches ``generate`` token for token.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import torch
from transformers.cache_utils import Cache, DynamicLayer
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from lcpo.algo.batching import left_pad
from lcpo.rollout.base import SamplingConfig

#: Finished rows are dropped from the batch once they make up this share of it (each drop copies the cache).
DROP_SHARE = 0.25


class _BufferLayer(DynamicLayer):
    """A full-attention cache layer whose keys/values live in buffers of ``capacity`` positions, filled in place."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length = capacity, 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        batch, heads, _, dim = key_states.shape
        self._keys = key_states.new_empty(batch, heads, self.capacity, dim)
        self._values = value_states.new_empty(batch, heads, self.capacity, value_states.shape[-1])
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        self._keys[:, :, self.length : end] = key_states
        self._values[:, :, self.length : end] = value_states
        self.length = end
        return self._view()

    def _view(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys, self.values = self._keys[:, :, : self.length], self._values[:, :, : self.length]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._keys = self._keys.repeat_interleave(repeats, dim=0)
        self._values = self._values.repeat_interleave(repeats, dim=0)
        self._view()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys, self._values = self._keys[indices], self._values[indices]
        self._view()


def _warpers(sampling: SamplingConfig) -> LogitsProcessorList:
    warpers = LogitsProcessorList()
    if sampling.temperature == 0:  # greedy: argmax, no warping
        return warpers
    if sampling.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(float(sampling.temperature)))
    if sampling.top_k > 0:
        warpers.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(sampling.top_p))
    return warpers


def _check_full_attention(model: torch.nn.Module) -> None:
    layer_types = getattr(model.config.get_text_config(decoder=True), "layer_types", None) or []
    if any(kind != "full_attention" for kind in layer_types):
        raise NotImplementedError(
            f"rollout=hf samples with a full-attention KV cache; {type(model).__name__} has layers of types "
            f"{sorted(set(layer_types))}"
        )


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    n: int,
    sampling: SamplingConfig,
    eos_ids: set[int],
    pad_id: int,
) -> list[list[int]]:
    """``n`` responses to each prompt (token ids, rows ``i * n .. i * n + n - 1`` for prompt ``i``), each ending at its
    first EOS (kept) or after ``sampling.max_new_tokens`` tokens. Uses the global torch RNG."""
    _check_full_attention(model)
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, pad_id, device)
    width, cap = ids.shape[1], sampling.max_new_tokens
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = Cache(layer_class_to_replicate=partial(_BufferLayer, width + cap))
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True,
                logits_to_keep=1)
    cache.batch_repeat_interleave(n)
    logits = out.logits[:, -1].float().repeat_interleave(n, dim=0)
    mask, position = mask.repeat_interleave(n, dim=0), positions[:, -1].repeat_interleave(n, dim=0)

    rows = torch.arange(len(prompts) * n, device=device)  # which response each batch row writes to
    tokens = torch.full((len(rows), cap), pad_id, dtype=torch.long, device=device)
    lengths = torch.full((len(rows),), cap, dtype=torch.long, device=device)
    live = torch.ones(len(rows), dtype=torch.bool, device=device)  # rows of the batch still generating
    eos = torch.tensor(sorted(eos_ids), device=device)
    warpers = _warpers(sampling)
    for step in range(cap):
        if sampling.temperature == 0:
            token = logits.argmax(-1)
        else:
            token = torch.multinomial(torch.softmax(warpers(None, logits), dim=-1), 1)[:, 0]
        tokens[rows[live], step] = token[live]
        stopped = live & torch.isin(token, eos)
        lengths[rows[stopped]] = step + 1
        live &= ~stopped
        alive = int(live.sum())
        if alive == 0 or step == cap - 1:
            break
        if alive <= (1 - DROP_SHARE) * len(live):
            keep = live.nonzero()[:, 0]
            cache.batch_select_indices(keep)
            rows, live, token, mask, position = rows[keep], live[keep], token[keep], mask[keep], position[keep]
        mask = torch.cat([mask, mask.new_ones(len(mask), 1)], dim=1)
        position = position + 1
        out = model(input_ids=token[:, None], attention_mask=mask, position_ids=position[:, None],
                    past_key_values=cache, use_cache=True)
        logits = out.logits[:, -1].float()
    return [row[:length] for row, length in zip(tokens.tolist(), lengths.tolist())]
