"""The vLLM engine's GPU lifecycle against the fake vLLM (tests/fakes/vllm), for what vLLM's CPU build cannot run:
sleep mode and the GPU's memory share. The engine created in setup sleeps until the first push, and during every
update; a push wakes the weights, reloads them, then wakes the KV cache. Everything else runs on the real CPU build
(tests/rollout/test_vllm_real.py)."""

from __future__ import annotations

import os

import pytest
import torch

from lcpo.config import RolloutConfig, TinyModelConfig, VLLMConfig
from lcpo.rollout import SamplingConfig
from lcpo.rollout.vllm import VLLMEngine
from lcpo.models.tiny import build_tiny
from lcpo.training.build import build

SMALL = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
SAMPLING = SamplingConfig(temperature=1.0, max_new_tokens=8)
CFG = RolloutConfig(name="vllm", max_new_tokens=8, vllm=VLLMConfig(max_prompt_tokens=256))


def _events(vllm, engine: int = 0) -> list[str]:
    return [event for number, event, _ in vllm.CALLS if number == engine and event != "reload_weights"]


def test_vllm_engine_sleeps_until_weights_arrive_then_wakes_weights_before_kv_cache(fake_vllm):
    model, tokenizer = build_tiny(SMALL)
    engine = VLLMEngine.colocated(model, tokenizer, CFG.vllm, 8, seed=0)
    before = {key: os.environ.get(key) for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    engine.start(torch.device("cpu"))
    assert fake_vllm.ENGINES[0].env == {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}
    assert {key: os.environ.get(key) for key in before} == before  # a later Lightning run must not see them
    (_, _, init), (_, _, level) = fake_vllm.CALLS
    assert init["distributed_executor_backend"] == "external_launcher" and init["load_format"] == "dummy"
    assert init["enable_sleep_mode"] and init["max_model_len"] == 256 + 8 and init["skip_tokenizer_init"]
    assert init["logprobs_mode"] == "processed_logprobs" and init["gpu_memory_utilization"] == 0.5
    assert "kv_cache_memory_bytes" not in init  # on a GPU vLLM sizes its KV cache from its memory share
    assert level == 2
    with pytest.raises(RuntimeError, match="asleep"):
        engine.generate(["1+1 = ?"], 1, SAMPLING)
    engine.sync_weights(model)
    # the first push is checked by comparing a probe's log-probs (one generate call) once everything is awake
    assert _events(fake_vllm) == ["init", "sleep", "wake_up", "collective_rpc", "reset_prefix_cache", "wake_up",
                                  "generate"]
    assert [d for _, e, d in fake_vllm.CALLS if e == "wake_up"] == [("weights",), ("kv_cache",)]
    (pushed,) = [names for _, e, names in fake_vllm.CALLS if e == "reload_weights"]
    assert sorted(pushed) == sorted(name for name, _ in model.named_parameters(remove_duplicate=False))
    assert "lm_head.weight" in pushed  # the tied head too, under its own name
    for mine, theirs in zip(model.parameters(), fake_vllm.ENGINES[0].model.parameters()):
        assert torch.equal(mine, theirs)  # the dummy (then discarded) weights were all overwritten


def test_vllm_training_sleeps_during_updates_and_pushes_at_start_and_after_every_update(
    fake_vllm, compose_train, tmp_path
):
    cfg = compose_train("rollout=vllm", "trainer.max_steps=2", "algo.tis_cap=2.0", output_dir=tmp_path)
    module, datamodule, trainer = build(cfg)
    assert not fake_vllm.ENGINES  # nothing is created before the process group exists
    trainer.fit(module, datamodule=datamodule)
    push = ["wake_up", "collective_rpc", "reset_prefix_cache", "wake_up"]
    assert _events(fake_vllm) == ["init", "sleep", *push, "generate", "generate", "sleep", *push, "generate",
                                  "sleep", *push, "shutdown"]
    metrics = trainer.callback_metrics
    assert float(metrics["train/rollout_logp_abs_diff"]) < 1e-4 and float(metrics["train/rollout_kl"]) < 1e-6
