"""A start-up check of a loaded model's tokenizer against what the grader and the engines need.

Tokenizers of R1-distilled models have been rebuilt differently by several transformers releases. Two failures are
silent and make every reward 0 or every prompt off-distribution: ``</think>`` becoming a special token (the engines
decode with ``skip_special_tokens=True``, so the grader never sees it), and a chat template whose BOS no longer
tokenises to the model's BOS id (or tokenises to two of them).
"""

from __future__ import annotations

from typing import Any

from lcpo.algo.budgets import BudgetSpec, Mode
from lcpo.algo.answers import THINK_END, extract_answer
from lcpo.rollout.tokens import encode_prompts
from lcpo.tasks.base import Problem
from lcpo.tasks.prompts import PromptBuilder

#: A response as a reasoning model writes it: the grader must read ``42`` from it after encoding and decoding.
PROBE_RESPONSE = f"Two sixes and thirty. 6 * 7 = 42{THINK_END}\n\nThe answer is \\boxed{{42}}."


def check_tokenizer(model: Any, tokenizer: Any, build_prompt: PromptBuilder, where: str) -> None:
    """Raises a ``ValueError`` naming ``where`` (the model folder) when ``</think>`` does not survive the engines'
    encode/decode as the grader reads it, or when the prompt's template adds a BOS that does not tokenise to
    the model's BOS id exactly once."""
    ids = tokenizer(PROBE_RESPONSE, add_special_tokens=False)["input_ids"]
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    if extract_answer(decoded, require_think=True) != "42":
        special = THINK_END in getattr(tokenizer, "all_special_tokens", ())
        raise ValueError(
            f"{where}: the tokenizer does not round-trip {THINK_END}: {PROBE_RESPONSE!r} decodes (skipping special "
            f"tokens, as the engines do) to {decoded!r}, so the grader would find no answer and every reward would be "
            f"0{' (' + THINK_END + ' is a special token)' if special else ''}; use a tokenizer that keeps it"
        )
    prompt = build_prompt(Problem(id="probe", question="What is 6 * 7?", answer="42"), BudgetSpec(Mode.EXACT, 100))
    bos = tokenizer.bos_token
    if not bos or not prompt.startswith(bos):
        return
    first = encode_prompts(tokenizer, [prompt])[0][:2]
    model_bos = getattr(model.generation_config, "bos_token_id", None) or model.config.bos_token_id
    expected = tokenizer.bos_token_id if model_bos is None else model_bos
    if first[0] != expected or (len(first) > 1 and first[1] == expected):
        raise ValueError(
            f"{where}: the chat template starts prompts with {bos!r}, but they tokenise to {first} where the "
            f"model's BOS is id {expected} (once): the tokenizer and the model disagree; use the model's own tokenizer"
        )
