"""File tasks: JSONL/parquet math problems and multiple-choice sets load; a bad row stops loading with its place."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lcpo.tasks.files import ChoiceFormat, TaskFileError, load_file_task

MATH_ROWS = [
    {"problem": "What is 1+1?", "answer": "2", "solution": "1+1=2"},
    {"question": "What is 2*3?", "answer": 6},
    {"problem": "Simplify 2/4.", "answer": "\\frac{1}{2}"},
]
CHOICE_ROW = {"question": "Which is prime?", "choices": ["4", "6", "7", "9"], "answer": "C"}


def write_jsonl(path, rows, raw_lines=()):
    lines = [json.dumps(r) for r in rows] + list(raw_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_math_jsonl_loads_with_alias_and_numbers(tmp_path):
    task = load_file_task(write_jsonl(tmp_path / "math.jsonl", MATH_ROWS))
    assert task.name == "math" and len(task) == 3
    first, second, _ = task.problems
    assert (first.question, first.answer, first.meta["solution"]) == ("What is 1+1?", "2", "1+1=2")
    assert (second.question, second.answer, second.choices) == ("What is 2*3?", "6", None)
    assert first.meta["row"] == 1 and task.problems[2].meta["row"] == 3
    assert task.eval_set(2, seed=0) == task.problems[:2]
    assert task.sample(random.Random(0)) in task.problems
    assert len(load_file_task(tmp_path / "math.jsonl", limit=2)) == 2


def test_parquet_loads(tmp_path):
    path = tmp_path / "set.parquet"
    pq.write_table(pa.Table.from_pylist([{"problem": r.get("problem") or r["question"], "answer": str(r["answer"])}
                                         for r in MATH_ROWS]), path)
    task = load_file_task(path, kind="math")
    assert [p.answer for p in task.problems] == ["2", "6", "\\frac{1}{2}"]


def test_choice_rows_are_rendered_with_options(tmp_path):
    task = load_file_task(write_jsonl(tmp_path / "mc.jsonl", [CHOICE_ROW, MATH_ROWS[0]]), kind="auto")
    choice, math = task.problems
    assert choice.is_choice and choice.answer == "C" and choice.choices == ("4", "6", "7", "9")
    assert choice.question == (
        "Which is prime?\n\nOptions:\nA. 4\nB. 6\nC. 7\nD. 9\n\n"
        "Output the letter of the correct option within \\boxed{}."
    )
    assert not math.is_choice
    custom = ChoiceFormat(header="Choices:", line="({letter}) {text}", instruction="Box the letter.")
    task = load_file_task(tmp_path / "mc.jsonl", kind="choice", limit=1, choice_format=custom)
    assert task.problems[0].question.endswith("Choices:\n(A) 4\n(B) 6\n(C) 7\n(D) 9\n\nBox the letter.")


@pytest.mark.parametrize(
    "bad,reason",
    [
        ('{"problem": "x", "answer": ', "invalid JSON"),
        ('["not", "an", "object"]', "expected a JSON object"),
        ('{"answer": "1"}', "missing field 'problem' or 'question'"),
        ('{"problem": "x"}', "missing field 'answer'"),
        ('{"problem": "x", "answer": "  "}', "field 'answer' is empty"),
        ('{"question": "x", "choices": ["a", "b"], "answer": "C"}', "not among the choice letters A-B"),
        ('{"question": "x", "choices": "ab", "answer": "A"}', "'choices' must be a list"),
    ],
)
def test_bad_jsonl_row_names_file_line_and_reason(tmp_path, bad, reason):
    path = write_jsonl(tmp_path / "bad.jsonl", MATH_ROWS[:2], raw_lines=["", bad])
    with pytest.raises(TaskFileError) as err:
        load_file_task(path)
    assert f"{path}, line 4: " in str(err.value) and reason in str(err.value)


def test_bad_encoding_names_its_line(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(json.dumps(MATH_ROWS[0]).encode() + b'\n{"problem": "caf\xe9", "answer": "1"}\n')
    with pytest.raises(TaskFileError, match=r"latin.jsonl, line 2: not UTF-8"):
        load_file_task(path)


def test_bad_parquet_row_names_its_index(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([{"problem": "a", "answer": "1"}, {"problem": "b", "answer": ""}]), path)
    with pytest.raises(TaskFileError, match=r"bad.parquet, row 1: field 'answer' is empty"):
        load_file_task(path)


def test_skip_bad_rows_reports_what_it_skipped(tmp_path, caplog):
    path = write_jsonl(tmp_path / "mixed.jsonl", MATH_ROWS, raw_lines=["{oops", '{"problem": "y"}'])
    task = load_file_task(path, skip_bad_rows=True)
    assert len(task) == 3 and [line for line, _ in task.skipped] == [4, 5]
    assert "skipped 2 bad rows" in caplog.text


def test_unusable_files(tmp_path):
    with pytest.raises(TaskFileError, match="no such file"):
        load_file_task(tmp_path / "missing.jsonl")
    (tmp_path / "data.csv").write_text("problem,answer\n")
    with pytest.raises(TaskFileError, match="unsupported file type"):
        load_file_task(tmp_path / "data.csv")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(TaskFileError, match="empty.jsonl: no problems"):
        load_file_task(tmp_path / "empty.jsonl")
    with pytest.raises(ValueError, match="kind"):
        load_file_task(tmp_path / "empty.jsonl", kind="essay")
