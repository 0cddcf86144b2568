"""The reference's verl parquet rows and JSON test lists load as they are; bad rows are named by file, row, field."""

from __future__ import annotations

import pytest

from lcpo.algo.budgets import BudgetSpec
from lcpo.config import PromptConfig
from lcpo.models.tiny import build_tokenizer
from lcpo.tasks.files import TaskFileError, load_file_task
from lcpo.tasks.prompts import PromptBuilder
from lcpo.tasks.verl import check_row_budgets, row_budget, strip_instruction
from lcpo.training.datamodule import PromptStream
from lcpo.algo.budgets import BudgetSampler, UniformBudget
from reference_rows import (
    json_row, verl_choice_row, verl_row, write_json_list, write_parquet,
)

ROW = verl_row("Q?", "1", 100)
TRAIN_ROWS = [
    verl_row("What is 1+1?", "2", 1234, index=0),
    verl_row("What is 2*3?", "6", -700, index=1),
    verl_row("Simplify 2/4.", "\\frac{1}{2}", -1, index=2),
]


def test_training_rows_load_with_question_answer_budget_and_source(tmp_path):
    task = load_file_task(write_parquet(tmp_path / "train.parquet", TRAIN_ROWS))
    questions = [p.question for p in task.problems]
    assert questions == ["What is 1+1?", "What is 2*3?", "Simplify 2/4."]  # instruction and budget stripped
    assert [p.answer for p in task.problems] == ["2", "6", "\\frac{1}{2}"]
    assert [row_budget(p) for p in task.problems] == [
        BudgetSpec("exact", 1234), BudgetSpec("max", 700), BudgetSpec("none", None)
    ]
    # the reference's training file leaves data_source empty: the file's stem stands in
    assert {p.meta["data_source"] for p in task.problems} == {"train"}
    assert not any(p.is_choice for p in task.problems)


def test_prompt_builder_words_the_budget_once():
    task_question = strip_instruction(TRAIN_ROWS[0]["prompt"][0]["content"])[0]
    text = PromptConfig().render(task_question, BudgetSpec("exact", 1234))
    assert text == TRAIN_ROWS[0]["prompt"][0]["content"]  # our default wording is the reference's, word for word


def test_choice_rows_are_graded_as_choices(tmp_path):
    rows = [verl_choice_row("Which is prime?", ["4", "6", "7", "9"], "C", 512),
            verl_choice_row("Pick B.", ["x", "y"], "b", -1, source="mmlu")]
    task = load_file_task(write_parquet(tmp_path / "gpqa.parquet", rows))
    first, second = task.problems
    assert first.is_choice and first.answer == "C" and first.choices == ("4", "6", "7", "9")
    assert first.question.startswith("Which is prime?\n\nOptions:\nA. 4\nB. 6\nC. 7\nD. 9\n\n")
    assert "Think for" not in first.question and "eg, A, B" not in first.question
    assert (second.answer, second.meta["data_source"], first.meta["data_source"]) == ("B", "mmlu", "gpqa")


def test_json_test_lists_load(tmp_path):
    rows = [json_row("Find x.", "204"), json_row("Find y.", "5")]
    task = load_file_task(write_json_list(tmp_path / "aime.json", rows))
    assert task.name == "aime" and [p.answer for p in task.problems] == ["204", "5"]
    assert task.problems[0].meta["solution"].startswith("It is") and task.problems[1].meta["row"] == 1


@pytest.mark.parametrize(
    "row, field",
    [
        ({**ROW, "reward_model": {"style": "rule", "num_tokens": 100}}, "reward_model.ground_truth"),
        ({**ROW, "reward_model": {"ground_truth": "1", "num_tokens": 0}}, "reward_model.num_tokens"),
        ({**ROW, "reward_model": {"ground_truth": "1", "num_tokens": 300}}, "reward_model.num_tokens"),
        ({**ROW, "prompt": [{"role": "system", "content": "hi"}]}, "prompt"),
        (verl_row("", "1", 100), "prompt"),
        (verl_choice_row("Which?", ["a", "b"], "D", 100), "reward_model.ground_truth"),
    ],
)
def test_bad_verl_rows_name_file_row_and_field(tmp_path, row, field):
    path = write_parquet(tmp_path / "bad.parquet", [TRAIN_ROWS[0], row])
    with pytest.raises(TaskFileError, match=rf"bad\.parquet, row 1: .*'{field}'"):
        load_file_task(path)
    assert len(load_file_task(path, skip_bad_rows=True)) == 1


def test_bad_json_lists_are_named(tmp_path):
    (tmp_path / "lines.json").write_text('{"problem": "a", "answer": "1"}\n{"problem": "b", "answer": "2"}\n')
    with pytest.raises(TaskFileError, match=r"lines\.json: not a JSON file .*\.jsonl"):
        load_file_task(tmp_path / "lines.json")
    write_json_list(tmp_path / "rows.json", [json_row("a", "1"), {"problem": "no answer"}])
    with pytest.raises(TaskFileError, match=r"rows\.json, element 1: missing field 'answer'"):
        load_file_task(tmp_path / "rows.json")


def test_from_file_budgets_reach_every_prompt(tmp_path):
    task = load_file_task(write_parquet(tmp_path / "train.parquet", TRAIN_ROWS))
    check_row_budgets(task.problems, 100, 4000)
    outside = r"train\.parquet, row 0 asks for 1234 tokens, outside \[budget.low=100, budget.high=1000\]"
    with pytest.raises(ValueError, match=outside):
        check_row_budgets(task.problems, 100, 1000)
    build = PromptBuilder(PromptConfig(), build_tokenizer())
    sampler = BudgetSampler(UniformBudget(100, 4000), max_share=0.0, none_share=0.0)
    stream = PromptStream(task, sampler, build, prompts_per_rank=6, seed=0, rank=0, start_step=lambda: 0,
                          from_file=True)
    batch = stream.batch(0)
    assert batch.specs == [row_budget(p) for p in batch.problems]
    for problem, prompt in zip(batch.problems, batch.prompts):
        spec = row_budget(problem)
        assert prompt.count("Think for") == (0 if spec.mode == "none" else 1)
        if spec.mode != "none":
            assert f"Think for {'maximum ' if spec.mode == 'max' else ''}{spec.budget} tokens." in prompt
    drawn = PromptStream(task, sampler, build, 6, 0, 0, lambda: 0).batch(0)  # any other budget config resamples
    assert drawn.specs != batch.specs and all(s.mode == "exact" for s in drawn.specs)


def test_rows_without_budgets_are_refused_under_from_file(tmp_path):
    task = load_file_task(write_json_list(tmp_path / "aime.json", [json_row("Find x.", "204")]))
    with pytest.raises(ValueError, match=r"aime\.json, row 0 has no budget"):
        check_row_budgets(task.problems, 1, 10)
