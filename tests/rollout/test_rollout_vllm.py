"""The vLLM engine against the fake vLLM (tests/fakes/vllm): token-id prompts, per-request seeds, sampling
log-probs, and the engine's lifecycle in training (created in setup, asleep during updates, weights pushed at start
and after every update, also after a resume) and in evaluation (one engine per model, shut down after it)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch

from lcpo.config import EvalGrid, RolloutConfig, TinyModelConfig
from lcpo.eval.run import evaluate_models
from lcpo.rollout import SamplingConfig
from lcpo.rollout.hf import HFEngine
from lcpo.rollout.vllm import VLLMEngine
from lcpo.algo.seeds import row_seed
from lcpo.tasks.synthetic import SyntheticTask
from lcpo.models.tiny import BOS, build_tiny, save_tiny
from lcpo.cli.train import build
from lcpo.training.update import response_logprobs

SMALL = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
SAMPLING = SamplingConfig(temperature=1.0, max_new_tokens=8)
CFG = RolloutConfig(name="vllm", max_new_tokens=8, max_prompt_tokens=256)


def _started(model, tokenizer, cfg: RolloutConfig = CFG) -> VLLMEngine:
    engine = VLLMEngine.colocated(model, tokenizer, cfg, cfg.max_new_tokens, seed=0)
    engine.start(torch.device("cpu"))
    engine.sync_weights(model)
    return engine


def _events(vllm, engine: int = 0) -> list[str]:
    return [event for number, event, _ in vllm.CALLS if number == engine and event != "load_weights"]


def test_vllm_prompts_are_the_hf_engines_token_ids_with_one_bos(fake_vllm):
    model, tokenizer = build_tiny(SMALL)
    prompts = [f"{BOS}1+2 = ?", "a longer prompt without bos"]  # a chat template's output starts with BOS
    hf = HFEngine(model, tokenizer, batch_size=64).generate(prompts, 2, SAMPLING)
    groups = _started(model, tokenizer).generate(prompts, 2, SAMPLING, seed=5)
    (request,) = [details for _, event, details in fake_vllm.CALLS if event == "generate"]
    assert request["prompts"] == [g[0].prompt_ids for g in hf for _ in range(2)]
    assert request["prompts"][0][:2] == [tokenizer.bos_token_id, tokenizer.convert_tokens_to_ids("1")]
    assert [len(g) for g in groups] == [2, 2] and groups[1][0].prompt_ids == hf[1][0].prompt_ids


def test_vllm_requests_are_seeded_per_row_and_reproduce(fake_vllm):
    model, tokenizer = build_tiny(SMALL)
    engine = _started(model, tokenizer)
    first = engine.generate(["1+2 = ?", "3+4 = ?"], 3, SAMPLING, seed=11)
    again = engine.generate(["1+2 = ?", "3+4 = ?"], 3, SAMPLING, seed=11)
    other = engine.generate(["1+2 = ?", "3+4 = ?"], 3, SAMPLING, seed=12)
    seeds = [details["seeds"] for _, event, details in fake_vllm.CALLS if event == "generate"]
    assert seeds[0] == [row_seed(11, row) for row in range(6)] and len(set(seeds[0])) == 6
    assert seeds[0] == seeds[1] and not set(seeds[0]) & set(seeds[2])
    tokens = lambda groups: [c.token_ids for g in groups for c in g]  # noqa: E731
    assert tokens(first) == tokens(again) and tokens(first) != tokens(other)
    assert len({tuple(t) for t in tokens(first)}) > 1  # the samples of a prompt differ


def test_vllm_logprobs_are_the_sampled_tokens_under_the_trainers_temperature(fake_vllm):
    model, tokenizer = build_tiny(SMALL)
    sampling = replace(SAMPLING, temperature=0.7)
    (group,) = _started(model, tokenizer).generate(["5+5 = ?"], 2, sampling, seed=3)
    for c in group:
        ids = torch.tensor([c.prompt_ids + c.token_ids])
        response = torch.tensor([[0] * len(c.prompt_ids) + [1] * c.length])
        with torch.no_grad():
            logp, _ = response_logprobs(model, ids, torch.ones_like(ids), response, 0.7)
        trainer = logp[0, len(c.prompt_ids) - 1 :]
        assert c.logprobs is not None and len(c.logprobs) == c.length
        torch.testing.assert_close(torch.tensor(c.logprobs), trainer, atol=1e-4, rtol=1e-4)


def test_vllm_engine_sleeps_until_weights_arrive_then_wakes_weights_before_kv_cache(fake_vllm):
    model, tokenizer = build_tiny(SMALL)
    engine = VLLMEngine.colocated(model, tokenizer, CFG, 8, seed=0)
    before = {key: os.environ.get(key) for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    engine.start(torch.device("cpu"))
    assert fake_vllm.ENGINES[0].env == {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}
    assert {key: os.environ.get(key) for key in before} == before  # a later Lightning run must not see them
    (_, _, init), (_, _, level) = fake_vllm.CALLS
    assert init["distributed_executor_backend"] == "external_launcher" and init["load_format"] == "dummy"
    assert init["enable_sleep_mode"] and init["max_model_len"] == 256 + 8 and init["skip_tokenizer_init"]
    assert init["logprobs_mode"] == "processed_logprobs" and init["gpu_memory_utilization"] == 0.5
    assert level == 2
    with pytest.raises(RuntimeError, match="asleep"):
        engine.generate(["1+1 = ?"], 1, SAMPLING)
    engine.sync_weights(model)
    events = _events(fake_vllm)
    assert events[:3] == ["init", "sleep", "wake_up"] and events[-2:] == ["reset_prefix_cache", "wake_up"]
    assert [d for _, e, d in fake_vllm.CALLS if e == "wake_up"] == [("weights",), ("kv_cache",)]
    pushed = {name for _, e, names in fake_vllm.CALLS if e == "load_weights" for name in names}
    assert pushed == {name for name, _ in model.named_parameters()}
    for mine, theirs in zip(model.parameters(), fake_vllm.ENGINES[0].model.parameters()):
        assert torch.equal(mine, theirs)  # the dummy (then discarded) weights were all overwritten


def test_vllm_prompt_over_max_prompt_tokens_names_the_key(fake_vllm):
    model, tokenizer = build_tiny(SMALL)
    engine = _started(model, tokenizer, replace(CFG, max_prompt_tokens=4))
    with pytest.raises(ValueError, match="rollout.max_prompt_tokens"):
        engine.generate(["a prompt longer than four tokens"], 1, SAMPLING)


def test_vllm_training_pushes_at_start_and_after_every_update(fake_vllm, compose_train, tmp_path):
    cfg = compose_train("rollout=vllm", "trainer.max_steps=2", "algo.tis_cap=2.0", output_dir=tmp_path)
    module, datamodule, trainer = build(cfg)
    assert not fake_vllm.ENGINES  # nothing is created before the process group exists
    trainer.fit(module, datamodule=datamodule)
    push = ["wake_up"] + ["collective_rpc"] * len(list(module.policy.parameters())) + ["reset_prefix_cache", "wake_up"]
    first_push = push[:-2] + ["collective_rpc"] + push[-2:]  # the first push also checks every vLLM weight was written
    assert _events(fake_vllm) == ["init", "sleep", *first_push, "generate", "sleep", *push, "generate", "sleep", *push]
    metrics = trainer.callback_metrics
    assert float(metrics["train/rollout_logp_abs_diff"]) < 1e-4 and float(metrics["train/rollout_kl"]) < 1e-6


def test_vllm_resumed_run_samples_from_the_restored_weights(fake_vllm, compose_train, tmp_path):
    common = ["rollout=vllm", "trainer.ckpt_every_n_steps=1", "algo.lr=0.01"]
    cfg = compose_train(*common, "trainer.max_steps=1", output_dir=tmp_path)
    module, datamodule, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    trained = {k: v.clone() for k, v in module.policy.state_dict().items()}
    resumed = compose_train(*common, "trainer.max_steps=2", f"ckpt_path={tmp_path}/checkpoints/last.ckpt",
                            output_dir=tmp_path)
    module2, datamodule2, trainer2 = build(resumed)
    seen: dict[str, torch.Tensor] = {}
    original = fake_vllm.LLM.generate

    def generate_and_look(llm, *args, **kwargs):  # the engine's weights when the resumed run first samples
        if not seen:
            seen.update({k: v.clone() for k, v in llm.model.state_dict().items()})
        return original(llm, *args, **kwargs)

    fake_vllm.LLM.generate = generate_and_look
    try:
        trainer2.fit(module2, datamodule=datamodule2, ckpt_path=resumed.ckpt_path)
    finally:
        fake_vllm.LLM.generate = original
    assert seen and trainer2.global_step == 2 * cfg.algo.updates_per_step
    for name, value in trained.items():
        torch.testing.assert_close(seen[name], value)


def test_vllm_evaluation_builds_one_engine_per_model_and_shuts_it_down(fake_vllm, tmp_path, monkeypatch):
    import lcpo.eval.run

    def no_transformers_copy(*args, **kwargs):
        raise AssertionError("rollout=vllm must not load the model with transformers as well")

    monkeypatch.setattr(lcpo.eval.run, "load_pretrained", no_transformers_copy)
    folders = {name: save_tiny(*build_tiny(replace(SMALL, seed=i)), tmp_path / name) for i, name in enumerate("ab")}
    grid = EvalGrid(budgets=[8], modes=["exact"], samples=2, problems=2)
    rows = evaluate_models(folders, [SyntheticTask()], grid, rollout=replace(CFG, temperature=0.6), progress=False)
    assert [r["model"] for r in rows] == ["a", "b"]
    events = [(number, event) for number, event, _ in fake_vllm.CALLS]
    assert events == [(0, "init"), (0, "generate"), (0, "shutdown"), (1, "init"), (1, "generate"), (1, "shutdown")]
    (_, _, init_a) = fake_vllm.CALLS[0]
    assert init_a["path"] == str(folders["a"]) and init_a["max_model_len"] == CFG.max_prompt_tokens + 16
    assert all(engine.model is None for engine in fake_vllm.ENGINES)  # released
