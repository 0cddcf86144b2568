"""Every engine stops on every end-of-turn token the tokenizer and the generation config name, not just on EOS."""

import torch
from tokenizers import AddedToken

from lcpo.config import RolloutConfig, TinyModelConfig
from lcpo.rollout import SamplingConfig
from lcpo.rollout.budget_forcing import BudgetForcingEngine
from lcpo.rollout.engines import build_engine
from lcpo.rollout.hf import HFEngine
from lcpo.rollout.stops import stop_token_ids
from lcpo.rollout.vllm import VLLMEngine
from lcpo.models.tiny import build_tiny

SMALL = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)


def _chat_model():
    """The tiny model with a ChatML-style ``<|im_end|>`` token, and a generation config that lists two EOS ids."""
    model, tokenizer = build_tiny(SMALL)
    tokenizer.add_tokens([AddedToken("<|im_end|>", special=True, normalized=False)], special_tokens=True)
    model.resize_token_embeddings(len(tokenizer))
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("!")]
    return model, tokenizer, tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_stop_ids_hold_the_end_of_turn_token_and_every_generation_config_eos():
    model, tokenizer, im_end = _chat_model()
    expected = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("!"), im_end}
    assert stop_token_ids(model.generation_config, tokenizer) == expected
    assert stop_token_ids(None, tokenizer) == {tokenizer.eos_token_id, im_end}
    assert HFEngine(model, tokenizer, batch_size=8).eos_ids == expected
    forcing = build_engine(RolloutConfig(name="budget_forcing"), model, tokenizer, seed=0)
    assert isinstance(forcing, BudgetForcingEngine) and forcing.eos_ids == expected
    cfg = RolloutConfig(name="vllm", max_new_tokens=8)
    assert VLLMEngine.colocated(model, tokenizer, cfg, 8).eos_ids == expected


def test_generation_stops_at_the_end_of_turn_token():
    model, tokenizer, im_end = _chat_model()
    # a model that ends its turn at once: its head always scores <|im_end|> highest
    model.lm_head.register_forward_hook(lambda _m, _a, out: out.index_add(-1, torch.tensor([im_end]),
                                                                          torch.full((*out.shape[:-1], 1), 1e4)))
    (group,) = HFEngine(model, tokenizer, batch_size=8).generate(["1+2 = ?"], 2, SamplingConfig(temperature=1.0, max_new_tokens=8))
    assert [(c.token_ids, c.finish_reason) for c in group] == [([im_end], "eos")] * 2
