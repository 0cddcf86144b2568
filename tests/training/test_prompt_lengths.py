"""Prompts longer than ``rollout.vllm.max_prompt_tokens`` are found when a file task loads: dropped with a count and
their rows, or an error naming the setting when none fits; nothing is dropped from a task that fits."""

import json
import logging

import pytest

from lcpo.algo.budgets import BudgetSampler, FixedBudget
from lcpo.config import PromptConfig
from lcpo.models.tiny import build_tokenizer
from lcpo.rollout.tokens import encode_prompts
from lcpo.tasks.files import load_file_task
from lcpo.tasks.prompts import PromptBuilder
from lcpo.tasks.synthetic import SyntheticTask
from lcpo.config import SyntheticTaskConfig
from lcpo.training.prompt_lengths import fit_prompts, longest_specs

SAMPLER = BudgetSampler(FixedBudget(1000), max_share=0.5, none_share=0.0)


def _task(tmp_path, questions):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"problem": q, "answer": "1"}) + "\n" for q in questions))
    return load_file_task(path)


def test_long_prompts_are_dropped_at_load_with_a_count_and_their_rows(tmp_path, caplog):
    tokenizer = build_tokenizer()  # one character, one token
    build = PromptBuilder(PromptConfig(), tokenizer)
    task = _task(tmp_path, ["1+1", "x" * 300, "2+2", "y" * 400])
    limit = max(len(ids) for ids in encode_prompts(tokenizer, [build(p, s) for p in task.problems[:1]
                                                                for s in longest_specs(SAMPLER)])) + 10
    with caplog.at_level(logging.WARNING, logger="lcpo.training.prompt_lengths"):
        fitted = fit_prompts(task, build, tokenizer, limit, SAMPLER)
    assert [p.question for p in fitted.problems] == ["1+1", "2+2"]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert f"dropped 2 of 4 problems whose prompt is longer than rollout.vllm.max_prompt_tokens={limit}" in warning
    assert "rows: 2 (" in warning and ", 4 (" in warning  # JSONL rows are numbered by line
    assert fit_prompts(task, build, tokenizer, 10_000, SAMPLER) is task


def test_a_task_with_no_prompt_that_fits_is_an_error_naming_the_setting(tmp_path):
    tokenizer = build_tokenizer()
    with pytest.raises(ValueError, match="every prompt is longer than rollout.vllm.max_prompt_tokens=5"):
        fit_prompts(_task(tmp_path, ["1+1"]), PromptBuilder(PromptConfig(), tokenizer), tokenizer, 5, SAMPLER)


def test_the_longest_prompt_of_each_drawn_mode_is_measured():
    assert [s.mode for s in longest_specs(SAMPLER)] == ["max", "exact"]
    assert [s.mode for s in longest_specs(BudgetSampler(FixedBudget(7), max_share=0.0, none_share=0.0))] == ["exact"]
    task = SyntheticTask(SyntheticTaskConfig())
    assert fit_prompts(task, None, build_tokenizer(), 1, SAMPLER) is task  # no fixed list to check
