"""Multiple-choice questions whose options are already written into the question text, and grading by kind.

The reference's GPQA, MMLU and LSAT files carry the options inside the user message (``Options:`` then ``A. text``
lines, or AGIEval's ``(A)text (B)text``) and a letter as ground truth. Such a row is recognised here, its options
are read back (so the gold letter can be checked against them), and it is graded as a choice, not as math.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Sequence

from lcpo.algo.answers import CHOICE_LETTERS
from lcpo.algo.grading import Grader, GradeResult
from lcpo.tasks.base import Problem

#: ``A. text`` / ``A) text`` on lines of their own.
_LINE_OPTION = re.compile(rf"^[ \t]*\(?([{CHOICE_LETTERS}])[.)][ \t]*(\S.*?)[ \t]*$", re.MULTILINE)
#: ``(A)text (B)text`` in running text (AGIEval's LSAT queries).
_INLINE_OPTION = re.compile(rf"\(([{CHOICE_LETTERS}])\)\s*")


def parse_options(text: str) -> tuple[str, ...] | None:
    """The option texts written in ``text``, in letter order from A, or None when it lists fewer than two.

    Lines of the form ``A. text`` are read first; otherwise inline ``(A)text (B)text``. Only a run that starts at
    A and goes on letter by letter counts, so a stray "(C)" in prose is not taken for options.
    """
    for found in (_line_options(text), _inline_options(text)):
        if found is not None:
            return found
    return None


def _line_options(text: str) -> tuple[str, ...] | None:
    return _consecutive([(m.group(1), m.group(2)) for m in _LINE_OPTION.finditer(text)])


def _inline_options(text: str) -> tuple[str, ...] | None:
    marks = list(_INLINE_OPTION.finditer(text))
    pairs = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        pairs.append((mark.group(1), text[mark.end() : end].split("\n")[0].strip()))
    return _consecutive(pairs)


def _consecutive(pairs: list[tuple[str, str]]) -> tuple[str, ...] | None:
    """The texts of the longest run A, B, C, ... at the start of ``pairs`` (its last run from A when A recurs)."""
    starts = [i for i, (letter, _) in enumerate(pairs) if letter == CHOICE_LETTERS[0]]
    if not starts:
        return None
    run: list[str] = []
    for letter, option in pairs[starts[-1] :]:
        if letter != CHOICE_LETTERS[len(run)] or not option:
            break
        run.append(option)
        if len(run) == len(CHOICE_LETTERS):
            break
    return tuple(run) if len(run) >= 2 else None


def is_letter(answer: str) -> bool:
    """Whether ``answer`` is a single option letter (the ground truth of a multiple-choice row)."""
    return len(answer) == 1 and answer.upper() in CHOICE_LETTERS


def grade_problems(grader: Grader, responses: Sequence[str], problems: Sequence[Problem]) -> list[GradeResult]:
    """Grades each response against its problem: choice problems by option letter, the others with ``grader``.

    One batch per kind, so a mixed batch (math and multiple choice from one file) still grades in parallel.
    """
    if len(responses) != len(problems):
        raise ValueError(f"{len(responses)} responses for {len(problems)} problems")
    results: list[GradeResult | None] = [None] * len(problems)
    for kind in {("choice" if p.is_choice else grader.kind) for p in problems}:
        picked = [i for i, p in enumerate(problems) if ("choice" if p.is_choice else grader.kind) == kind]
        golds = [problems[i].answer for i in picked]
        graded = replace(grader, kind=kind).grade_many([responses[i] for i in picked], golds)
        for i, result in zip(picked, graded):
            results[i] = result
    return [r for r in results if r is not None]
