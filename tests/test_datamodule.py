import torch

from lcpo.budgets import BudgetSampler, PromptTemplate, UniformBudget
from lcpo.datamodule import PromptStream, RolloutDataModule
from lcpo.grading import Grader
from lcpo.prompts import PromptBuilder
from lcpo.rewards import RewardConfig, build_reward
from lcpo.rollout import SamplingConfig
from lcpo.rollout.hf import HFEngine
from lcpo.tasks.synthetic import SyntheticTask, SyntheticTaskConfig
from lcpo.tiny import TinyModelConfig, build_tiny


def _parts():
    model, tokenizer = build_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    build_prompt = PromptBuilder(PromptTemplate(instruction=""), tokenizer, use_chat_template=False, response_prefix="<think>")
    sampler = BudgetSampler(UniformBudget(10, 40), max_share=0.5)
    return model, tokenizer, build_prompt, sampler


def test_prompt_stream_depends_only_on_seed_step_and_rank():
    _, _, build_prompt, sampler = _parts()
    task = SyntheticTask(SyntheticTaskConfig())

    def stream(seed, rank, start=0):
        return PromptStream(task, sampler, build_prompt, 3, seed=seed, rank=rank, start_step=lambda: start)

    a = stream(0, 0).batch(5)
    assert a.prompts == stream(0, 0).batch(5).prompts and a.specs == stream(0, 0).batch(5).specs
    assert a.prompts != stream(0, 1).batch(5).prompts  # ranks see different prompts
    assert a.prompts != stream(1, 0).batch(5).prompts
    resumed = next(iter(stream(0, 0, start=5)))  # a resumed stream continues with the same data
    assert resumed.step == 5 and resumed.prompts == a.prompts
    assert all(p.endswith("<think>") and "Think for" in p for p in a.prompts)


def test_collect_scores_groups_together():
    model, tokenizer, build_prompt, sampler = _parts()
    task = SyntheticTask(SyntheticTaskConfig())
    dm = RolloutDataModule(
        task, sampler, build_prompt, Grader(), build_reward(RewardConfig(name="mixed")),
        SamplingConfig(temperature=1.0, max_new_tokens=12), group_size=4, prompts_per_step=3, seed=0,
    )
    stream = PromptStream(task, sampler, build_prompt, 3, seed=0, rank=0, start_step=lambda: 0)
    engine = HFEngine(model, tokenizer)
    rb = dm.collect(engine, stream.batch(0))
    assert rb.input_ids.shape[0] == 12 and rb.group.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.equal(rb.response_mask.sum(-1).float(), rb.lengths)  # every generated token counts
    assert torch.allclose(rb.advantages.view(3, 4).mean(-1), torch.zeros(3), atol=1e-5)
    assert (rb.lengths <= 12).all() and rb.truncated.any()
    assert len(rb.samples) == 3 and {"prompt", "budget", "length", "reward", "text"} <= set(rb.samples[0])
    again = dm.collect(engine, stream.batch(0))  # same step, same sampling seed: same rollouts
    assert torch.equal(again.input_ids, rb.input_ids)
