"""s1 budget forcing on real tiny Llama models whose next token is scripted through their weights.

A one-hot embedding with the attention/MLP outputs zeroed leaves each position's hidden state equal to its own
token's embedding, so an untied ``lm_head`` is a next-token table: the model's behaviour (stop at once, spell
``</think>`` character by character, never stop) is deterministic while generation runs the real model code.
"""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from dataclasses import replace

from lcpo.rollout.base import SamplingConfig
from lcpo.rollout.budget_forcing import BudgetForcingEngine
from lcpo.rollout.engines import build_engine
from lcpo.config import RolloutConfig, TinyModelConfig
from lcpo.models.tiny import build_tiny, build_tokenizer

SAMPLING = SamplingConfig(temperature=0.6, top_p=0.95, max_new_tokens=64)


def forcing(model, tokenizer, **knobs) -> BudgetForcingEngine:
    """The engine ``rollout=budget_forcing`` builds, with the schema's knobs except ``knobs``."""
    engine = build_engine(replace(RolloutConfig(name="budget_forcing"), **knobs), model, tokenizer, seed=0)
    assert isinstance(engine, BudgetForcingEngine)
    return engine


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def scripted_model(tokenizer, table: dict[str, str], default: str) -> LlamaForCausalLM:
    """A Llama whose next token after character ``c`` is ``table.get(c, default)`` (token strings)."""
    vocab = len(tokenizer)
    hidden = vocab + 2 - vocab % 2  # one spare dimension at least, and even for the rotary embedding
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=1, num_attention_heads=1,
        num_key_value_heads=1, intermediate_size=8, tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = "eager"
    model = LlamaForCausalLM(config).eval()
    ids = tokenizer.convert_tokens_to_ids
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(vocab, hidden))
        model.lm_head.weight.zero_()
        for token in range(vocab):
            target = table.get(tokenizer.convert_ids_to_tokens(token), default)
            model.lm_head.weight[ids(target), token] = 10.0
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def test_early_eos_is_replaced_by_wait_until_the_budget(tokenizer):
    engine = forcing(scripted_model(tokenizer, {}, tokenizer.eos_token), tokenizer)
    cue = len(engine.cue_ids)
    budgets = [cue + 30, cue + 9]
    groups = engine.generate(["1+1=?", "2+2=?"], n=2, sampling=SAMPLING, budgets=budgets)
    for group, budget in zip(groups, budgets):
        for c in group:
            assert c.answer_tokens == 1 and c.finish_reason == "eos"  # the greedy answer is EOS at once
            assert c.length == budget + c.answer_tokens
            thinking = tokenizer.decode(c.token_ids[: budget - cue])
            assert thinking == ("Wait" * 10)[: budget - cue]
            assert c.waits == -(-(budget - cue) // 4)
            assert c.text.endswith("\n</think>\n\nThe final answer is: \\boxed{")


def test_multi_token_end_marker_is_detected_and_removed(tokenizer):
    # Spells "</think>" one character at a time (8 tokens), then starts again.
    spell = dict(zip("</thin", "/think")) | {"k": ">", ">": "<"}
    engine = forcing(scripted_model(tokenizer, spell, "<"), tokenizer, max_waits=3)
    cue = len(engine.cue_ids)
    (c,), = engine.generate(["Q"], n=1, sampling=SAMPLING, budgets=[cue + 200])
    thinking = c.text[: c.text.index("\nThe final")].rsplit("\n</think>", 1)[0]
    assert c.waits == 3
    assert "</think>" not in thinking and thinking.count("Wait") == 3
    # Waits ran out: the fourth marker ends thinking early, under budget.
    assert c.length - c.answer_tokens < cue + 200


def test_model_that_never_stops_is_cut_at_the_budget(tokenizer):
    engine = forcing(scripted_model(tokenizer, {}, "a"), tokenizer, answer_max_tokens=5)
    cue = len(engine.cue_ids)
    (c,), = engine.generate(["Q"], n=1, sampling=SAMPLING, budgets=[cue + 17])
    assert c.waits == 0 and c.answer_tokens == 5 and c.finish_reason == "length"
    assert c.length == cue + 17 + 5
    assert c.text == "a" * 17 + "\n</think>\n\nThe final answer is: \\boxed{" + "a" * 5


@pytest.mark.parametrize("end_at_line, thinking", [(False, "abc\nabc\nab"), (True, "abc\nabc\n")])
def test_the_forced_end_can_wait_for_the_end_of_a_line(tokenizer, end_at_line, thinking):
    """With ``end_at_line`` the cue follows the last complete line, as the model's own ends of thinking do."""
    lines = scripted_model(tokenizer, {"a": "b", "b": "c", "c": "\n", "\n": "a"}, "a")
    engine = forcing(lines, tokenizer, answer_cue="</think>{", answer_max_tokens=2, end_at_line=end_at_line)
    cue = len(engine.cue_ids)
    (c,), = engine.generate(["Q"], n=1, sampling=SAMPLING, budgets=[cue + 10])
    assert c.text == thinking + "</think>{" + "ab"
    assert c.length == len(thinking) + cue + 2 <= cue + 10 + 2


def test_no_waits_closes_at_the_first_stop(tokenizer):
    engine = forcing(scripted_model(tokenizer, {}, tokenizer.eos_token), tokenizer, max_waits=0)
    (c,), = engine.generate(["Q"], n=1, sampling=SAMPLING, budgets=[100])
    assert c.waits == 0 and c.length == len(engine.cue_ids) + 1


def test_random_tiny_model_stays_within_budget_plus_answer():
    model, tok = build_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    engine = forcing(model, tok, answer_max_tokens=4)
    torch.manual_seed(0)
    groups = engine.generate(["What is 2+3?"] * 3, n=2, sampling=SAMPLING, budgets=[40, 60, 80])
    for group, budget in zip(groups, [40, 60, 80]):
        for c in group:
            assert c.length <= budget + c.answer_tokens and 1 <= c.answer_tokens <= 4


def test_budget_must_leave_room_for_the_cue(tokenizer):
    engine = forcing(scripted_model(tokenizer, {}, "a"), tokenizer)
    with pytest.raises(ValueError, match="answer cue"):
        engine.generate(["Q"], n=1, sampling=SAMPLING, budgets=[len(engine.cue_ids)])
