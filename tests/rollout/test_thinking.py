"""Thinking tokens: those before </think>, counted on real tokenizers (marker as one token, or spelled out)."""

from __future__ import annotations

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from lcpo.models.tiny import CHARACTERS, build_tokenizer
from lcpo.rollout.base import Completion
from lcpo.rollout.thinking import ThinkingCounter


def _plain_characters() -> PreTrainedTokenizerFast:
    """A character tokenizer without a </think> token: the marker is eight tokens."""
    backend = Tokenizer(models.WordLevel({c: i for i, c in enumerate(("<unk>", *CHARACTERS))}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")


def _completion(tokenizer, text: str, eos: bool = False) -> Completion:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + ([tokenizer.eos_token_id] if eos else [])
    return Completion(prompt_ids=[], token_ids=ids, text=tokenizer.decode(ids, skip_special_tokens=True),
                      finish_reason="eos" if eos else "length")


@pytest.mark.parametrize("tokenizer", [build_tokenizer(), _plain_characters()], ids=["marker-token", "spelled"])
def test_hand_counted_cases(tokenizer):
    count = ThinkingCounter(tokenizer)
    # "abc" is 3 thinking tokens whichever way the marker is spelled; the rest is answer
    assert count(_completion(tokenizer, "abc</think>\\boxed{1}")) == 3
    assert count(_completion(tokenizer, "</think>42")) == 0
    assert count(_completion(tokenizer, "no marker at all")) == 16  # never stopped thinking: all of it
    assert count(_completion(tokenizer, "a</think>b</think>c")) == 1  # the first marker ends the thinking


def test_eos_and_marker_token_count_as_answer():
    tokenizer = build_tokenizer()
    completion = _completion(tokenizer, "12345</think>\\boxed{7}", eos=True)
    assert completion.length == 5 + 1 + 9 + 1  # thinking, the marker token, the answer, EOS
    assert ThinkingCounter(tokenizer)(completion) == 5
