"""Options written into a question are read back; a mixed batch grades choices by letter and math with math-verify."""

from __future__ import annotations

from lcpo.algo.grading import Grader
from lcpo.tasks.base import Problem
from lcpo.tasks.choices import grade_problems, is_letter, parse_options


def test_options_on_lines_and_inline():
    assert parse_options("Q?\n\nOptions:\nA. four\nB. six\nC) seven\n") == ("four", "six", "seven")
    lsat = "Q: Who goes first? Answer Choices: (A)Frost (B)Heideck (C)Xu\nA: Among A through E, the answer is"
    assert parse_options(lsat) == ("Frost", "Heideck", "Xu")
    assert parse_options("As shown in (A), the sum is 5.") is None  # one stray mark is not a list
    assert parse_options("A. only one option") is None
    assert parse_options("A. x\nC. y") is None  # letters must follow on from A


def test_letters():
    assert is_letter("C") and is_letter("b") and not is_letter("12") and not is_letter("Z")


def test_mixed_batch_grades_each_problem_by_its_kind():
    math = Problem("m", "1+1?", "2")
    choice = Problem("c", "Which?", "B", choices=("x", "y"))
    responses = ["</think>\\boxed{2}", "</think>\\boxed{B}", "</think>\\boxed{(b)}", "</think>\\boxed{2}"]
    results = grade_problems(Grader(), responses, [math, choice, choice, choice])
    assert [r.correct for r in results] == [True, True, True, False]
    assert results[3].reason == "parse_error"  # "2" is no letter: the choice grader saw it, not math-verify
