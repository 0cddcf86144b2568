"""The token ids every engine conditions on (the encoded prompts) and stops at (the EOS ids), computed one way for
all of them so that the engines sample the same responses to the same prompts."""

from __future__ import annotations

from typing import Sequence

from transformers import GenerationConfig, PreTrainedModel

from lcpo.rollout.stops import stop_token_ids


def encode_prompts(tokenizer, prompts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]:
    """The token ids every engine conditions on. Prompts are complete strings (a chat template already put its BOS
    in), so no special tokens are added by default: adding them again would give R1-style tokenizers two BOS."""
    return [list(ids) for ids in tokenizer(list(prompts), add_special_tokens=add_special_tokens)["input_ids"]]


def eos_token_ids(model: PreTrainedModel, tokenizer) -> set[int]:
    """The ids that end a response: every end-of-turn token of the model's generation config and the tokenizer."""
    return generation_eos_ids(model.generation_config, tokenizer)


def generation_eos_ids(generation_config: GenerationConfig | None, tokenizer) -> set[int]:
    """:func:`eos_token_ids` from a generation config alone (None: the tokenizer's), for an engine that loads a saved
    model folder itself (vLLM in evaluation) and so holds no transformers model: every end-of-turn token of the
    config and the tokenizer (:func:`lcpo.rollout.stops.stop_token_ids`)."""
    return stop_token_ids(generation_config, tokenizer)
