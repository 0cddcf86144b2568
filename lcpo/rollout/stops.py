"""Which token ids end a response: every end-of-turn token the generation config and the tokenizer name.

A chat model ends its turn with its template's end-of-turn token (``<|im_end|>`` for Qwen2.5 and its instruct
models), which need not be the config's one EOS: sampling that stops only on the EOS keeps generating past the
answer (into a made-up next turn) until the cap, and every such response is scored as truncated.
"""

from __future__ import annotations

from typing import Any, Optional

#: End-of-turn markers of the common chat templates (ChatML, Llama 3, Gemma, Phi-3, DeepSeek).
END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<|end|>",
               "<｜end▁of▁sentence｜>")


def stop_token_ids(generation_config: Optional[Any], tokenizer: Any) -> set[int]:
    """The generation config's ``eos_token_id`` (one id or a list), the tokenizer's EOS, and each of
    :data:`END_OF_TURN` that is one token of the tokenizer's vocabulary."""
    ids: set[int] = set()
    eos = None if generation_config is None else generation_config.eos_token_id
    ids.update(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    for token in END_OF_TURN:  # looked up one by one: cheap, where building the whole vocabulary is not
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is not None and tokenizer.convert_ids_to_tokens(token_id) == token:
            ids.add(token_id)
    return {int(i) for i in ids}
