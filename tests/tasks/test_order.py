"""Shuffled epochs over a file's problems: each epoch visits every problem once, seeded, and the prompt stream
takes its positions from (step, rank), so a resumed run or another number of ranks sees the same problems."""

import json
from collections import Counter

from lcpo.algo.budgets import BudgetSampler, UniformBudget
from lcpo.config import PromptConfig, TaskConfig
from lcpo.training.datamodule import PromptStream
from lcpo.tasks.prompts import PromptBuilder
from lcpo.tasks import build_epochs, build_task
from lcpo.tasks.order import ShuffledEpochs
from lcpo.tasks.base import Problem
from lcpo.models.tiny import build_tokenizer

PROBLEMS = [Problem(id=str(i), question=f"q{i}", answer=str(i)) for i in range(10)]


def test_each_epoch_visits_every_problem_once_in_a_seeded_order():
    walk = ShuffledEpochs(PROBLEMS, seed=3)
    first, second = walk.take(0, 10), walk.take(10, 10)
    assert sorted(p.id for p in first) == sorted(p.id for p in second) == sorted(p.id for p in PROBLEMS)
    assert first != second and first != PROBLEMS  # reshuffled every epoch
    assert walk.take(7, 6) == first[7:] + second[:3]  # a batch may straddle two epochs
    assert ShuffledEpochs(PROBLEMS, seed=3).take(0, 10) == first
    assert ShuffledEpochs(PROBLEMS, seed=4).take(0, 10) != first


def _stream(rank: int, world: int, per_rank: int, start: int = 0) -> PromptStream:
    build_prompt = PromptBuilder(PromptConfig(instruction="", use_chat_template=False), build_tokenizer())
    task = ShuffledEpochs(PROBLEMS, seed=0)
    return PromptStream(None, BudgetSampler(UniformBudget(10, 40), 0.0, 0.0), build_prompt, per_rank, seed=0, rank=rank,
                        start_step=lambda: start, epochs=task, world_size=world)


def test_stream_positions_come_from_step_and_rank():
    one = [p.id for step in range(4) for p in _stream(0, 1, 4).batch(step).problems]
    two = [p.id for step in range(4) for rank in range(2) for p in _stream(rank, 2, 2).batch(step).problems]
    assert one == two  # the same walk whatever the number of ranks
    counts = Counter(one[:10])
    assert len(counts) == 10  # no problem twice within an epoch
    resumed = next(iter(_stream(1, 2, 2, start=3)))
    assert resumed.problems == _stream(1, 2, 2).batch(3).problems


def test_file_tasks_default_to_epochs(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps({"problem": f"q{i}", "answer": i}) for i in range(5)) + "\n")
    cfg = TaskConfig(name="jsonl", path=str(path))
    assert cfg.sampling == "epochs"
    epochs = build_epochs(cfg, build_task(cfg), seed=1)
    assert sorted(p.answer for p in epochs.take(0, 5)) == ["0", "1", "2", "3", "4"]
    replacement = TaskConfig(name="jsonl", path=str(path), sampling="replacement")
    assert build_epochs(replacement, build_task(replacement), seed=1) is None
    assert build_epochs(TaskConfig(), None, seed=1) is None  # the synthetic task has no fixed list
