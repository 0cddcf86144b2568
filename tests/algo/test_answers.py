"""Tests for lcpo.algo.answers: which text is the answer, option letters, and the complexity screen."""

from __future__ import annotations

import pytest

from lcpo.algo.answers import choice_letter, extract_answer, extract_boxed, too_complex


@pytest.mark.parametrize(
    "text, expected",
    [
        (r"\boxed{5}", "5"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"a \boxed{1} b \boxed{\sqrt{\frac{1}{2}}} c", r"\sqrt{\frac{1}{2}}"),
        (r"\fbox{7}", "7"),
        (r"\boxed 5$ done", "5"),
        (r"\boxed {x+1}", "x+1"),
        (r"\boxed{\left\{ 1, 2 \right.}", r"\left\{ 1, 2 \right."),  # escaped brace does not count
        (r"\boxed{1} then \boxed{2", None),  # last box never closed (truncated output)
        (r"\boxedfoo{3}", None),
        ("no box here", None),
        ("", None),
    ],
)
def test_extract_boxed(text: str, expected: str | None) -> None:
    assert extract_boxed(text) == expected


def test_extract_answer_uses_last_box_after_first_think_end() -> None:
    response = r"<think>\boxed{1}</think> \boxed{2} </think> \boxed{3}"
    assert extract_answer(response) == "3"
    assert extract_answer(r"<think>\boxed{1}</think> no box") is None
    assert extract_answer(r"<think>a</think> \boxed{2} </think> no box after the second") == "2"
    assert extract_answer(r"\boxed{4}") is None
    assert extract_answer(r"\boxed{4}", require_think=False) == "4"


@pytest.mark.parametrize(
    "text, letter",
    [("B", "B"), ("(b)", "B"), ("C.", "C"), (r"\text{D}", "D"), ("$a$", "A"), ("AB", None), ("12", None), ("", None)],
)
def test_choice_letter(text: str, letter: str | None) -> None:
    assert choice_letter(text) == letter


@pytest.mark.parametrize(
    "answer, refused",
    [
        ("2^{10}", False),
        ("10^{6}", False),
        (r"\frac{(10^5)!}{2}", False),
        ("2^{10^{7}}", True),  # exponent past the cap
        ("9^{9^{9}}", True),  # a tower
        ("(10^6)!", True),  # a factorial past the cap
        (r"\binom{10^{7}}{3}", True),
        ("{" * 17 + "1" + "}" * 17, True),  # nesting deeper than any real answer
        ("{" * 5 + "1" + "}" * 5, False),
    ],
)
def test_too_complex_refuses_what_sympy_would_choke_on(answer: str, refused: bool) -> None:
    assert too_complex(answer) is refused
