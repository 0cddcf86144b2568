"""Every engine implements the rollout protocol as it is: the same methods with the same signatures, so a caller
(the collector, evaluation) never needs to know which engine it holds; budget forcing builds on the HF engine by
composition, not as a subclass with an extra argument."""

from __future__ import annotations

import inspect

import pytest
import torch

from lcpo.config import ForcingConfig, RolloutConfig, TinyModelConfig, VLLMConfig
from lcpo.models.tiny import build_tiny
from lcpo.rollout.base import RolloutEngine
from lcpo.rollout.budget_forcing import BudgetForcingEngine
from lcpo.rollout.engines import build_engine
from lcpo.rollout.hf import HFEngine
from lcpo.rollout.vllm import VLLMEngine

ENGINES = [HFEngine, VLLMEngine, BudgetForcingEngine]
METHODS = ["start", "generate", "offload", "sync_weights", "close"]
SMALL = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)


def _parameters(function) -> list[tuple[str, inspect._ParameterKind, object]]:
    """Names, kinds and defaults: what a caller relies on (annotations may be narrower, e.g. the completion type)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.__name__)
@pytest.mark.parametrize("method", METHODS)
def test_every_engine_has_the_protocols_signatures(engine, method):
    assert _parameters(getattr(engine, method)) == _parameters(getattr(RolloutEngine, method))


def test_budgets_and_seed_are_keywords_of_the_protocol():
    kinds = {p.name: p.kind for p in inspect.signature(RolloutEngine.generate).parameters.values()}
    assert kinds["budgets"] == kinds["seed"] == inspect.Parameter.KEYWORD_ONLY


def test_budget_forcing_is_not_an_hf_engine():
    assert not issubclass(BudgetForcingEngine, HFEngine)


def test_the_factory_builds_each_engine_from_its_section():
    model, tokenizer = build_tiny(SMALL)
    hf = build_engine(RolloutConfig(name="hf", batch_size=8), model, tokenizer, seed=0)
    assert type(hf) is HFEngine and hf.batch_size == 8
    cfg = RolloutConfig(name="budget_forcing", batch_size=8, forcing=ForcingConfig(max_waits=2, wait_text="?"))
    forced = build_engine(cfg, model, tokenizer, seed=0)
    assert type(forced) is BudgetForcingEngine and forced.forcing == cfg.forcing
    assert forced.decoder.batch_size == 8 and forced.wait_ids == tokenizer.encode("?", add_special_tokens=False)
    cfg = RolloutConfig(name="vllm", vllm=VLLMConfig(max_prompt_tokens=32))
    vllm = build_engine(cfg, model, tokenizer, seed=0, max_new_tokens=16)
    try:
        assert type(vllm) is VLLMEngine and vllm.max_model_len == 32 + 16
    finally:
        vllm.close()


def test_budget_forcing_follows_the_weights_its_decoder_is_given():
    model, tokenizer = build_tiny(SMALL)
    engine = build_engine(RolloutConfig(name="budget_forcing"), model, tokenizer, seed=0)
    other, _ = build_tiny(SMALL)
    engine.start(torch.device("cpu"))
    engine.sync_weights(other)
    assert engine.model is other and engine.decoder.model is other
    engine.close()
    assert engine.decoder.model is None
