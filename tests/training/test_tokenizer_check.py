"""The start-up tokenizer check: ``</think>`` must survive the engines' encode/decode as the grader reads it, and a
template's BOS must be the model's BOS, once."""

import pytest
from tokenizers import AddedToken

from lcpo.config import PromptConfig, TinyModelConfig
from lcpo.models.tiny import build_tiny
from lcpo.tasks.prompts import PromptBuilder
from lcpo.training.tokenizer_check import check_tokenizer

SMALL = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
BOS_TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"


def _check(model, tokenizer):
    check_tokenizer(model, tokenizer, PromptBuilder(PromptConfig(), tokenizer), "model.path=/m")


def test_a_tokenizer_that_keeps_think_and_the_bos_passes():
    model, tokenizer = build_tiny(SMALL)
    _check(model, tokenizer)
    tokenizer.chat_template = BOS_TEMPLATE
    _check(model, tokenizer)


def test_a_special_think_token_is_an_error_naming_the_model():
    model, tokenizer = build_tiny(SMALL)
    tokenizer.add_tokens([AddedToken("</think>", special=True, normalized=False)], special_tokens=True)
    with pytest.raises(ValueError, match=r"model.path=/m: the tokenizer does not round-trip </think>.*special token"):
        _check(model, tokenizer)


def test_a_template_bos_that_is_not_the_models_is_an_error():
    model, tokenizer = build_tiny(SMALL)
    tokenizer.chat_template = BOS_TEMPLATE
    model.generation_config.bos_token_id = model.config.bos_token_id = tokenizer.eos_token_id
    with pytest.raises(ValueError, match="model.path=/m: the chat template starts prompts with '<bos>'"):
        _check(model, tokenizer)


def test_a_template_bos_that_tokenises_twice_is_an_error():
    model, tokenizer = build_tiny(SMALL)
    tokenizer.chat_template = "{{ bos_token }}" + BOS_TEMPLATE
    with pytest.raises(ValueError, match="the model's BOS is id"):
        _check(model, tokenizer)
