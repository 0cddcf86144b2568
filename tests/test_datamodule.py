from lcpo.budgets import BudgetSampler, UniformBudget
from lcpo.config import PromptConfig, SyntheticTaskConfig
from lcpo.datamodule import PromptDataModule, PromptStream
from lcpo.prompts import PromptBatch, PromptBuilder
from lcpo.tasks.synthetic import SyntheticTask
from lcpo.tiny import build_tokenizer


def _stream(seed: int, rank: int, start: int = 0) -> PromptStream:
    build_prompt = PromptBuilder(PromptConfig(instruction="", use_chat_template=False, response_prefix="<think>"),
                                 build_tokenizer())
    sampler = BudgetSampler(UniformBudget(10, 40), max_share=0.5)
    return PromptStream(SyntheticTask(SyntheticTaskConfig()), sampler, build_prompt, 3, seed=seed, rank=rank,
                        start_step=lambda: start)


def test_prompt_stream_depends_only_on_seed_step_and_rank():
    a = _stream(0, 0).batch(5)
    assert a.prompts == _stream(0, 0).batch(5).prompts and a.specs == _stream(0, 0).batch(5).specs
    assert a.prompts != _stream(0, 1).batch(5).prompts  # ranks see different prompts
    assert a.prompts != _stream(1, 0).batch(5).prompts
    resumed = next(iter(_stream(0, 0, start=5)))  # a resumed stream continues with the same data
    assert resumed.step == 5 and resumed.prompts == a.prompts
    assert all(p.endswith("<think>") and "Think for" in p for p in a.prompts)


def test_datamodule_yields_prompt_batches_only():
    stream = _stream(0, 0)
    dm = PromptDataModule(stream.task, stream.sampler, stream.build_prompt, prompts_per_step=3, start_step=lambda: 2)
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, PromptBatch) and batch.step == 2 and len(batch.prompts) == 3
    assert batch.prompts == stream.batch(2).prompts
