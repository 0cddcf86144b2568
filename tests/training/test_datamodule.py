from lcpo.training.datamodule import PromptDataModule
from lcpo.tasks.prompts import PromptBatch


def test_prompt_stream_depends_only_on_seed_step_and_rank(prompt_stream):
    a = prompt_stream(0, 0).batch(5)
    assert a.prompts == prompt_stream(0, 0).batch(5).prompts and a.specs == prompt_stream(0, 0).batch(5).specs
    assert a.prompts != prompt_stream(0, 1).batch(5).prompts  # ranks see different prompts
    assert a.prompts != prompt_stream(1, 0).batch(5).prompts
    resumed = next(iter(prompt_stream(0, 0, start=5)))  # a resumed stream continues with the same data
    assert resumed.step == 5 and resumed.prompts == a.prompts
    assert all(p.endswith("<think>") and "Think for" in p for p in a.prompts)


def test_datamodule_yields_prompt_batches_only(prompt_stream):
    stream = prompt_stream()
    dm = PromptDataModule(stream.task, stream.sampler, stream.build_prompt, prompts_per_step=3, seed=0,
                          start_step=lambda: 2)
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, PromptBatch) and batch.step == 2 and len(batch.prompts) == 3
    assert batch.prompts == stream.batch(2).prompts
