"""What a response answers: the box after the thinking, an option letter, and whether sympy could choke on it.

Convention (the reference's): the response must contain ``</think>``; the answer is the LAST ``\\boxed{...}``
after the FIRST ``</think>`` (``\\fbox{...}`` and Hendrycks' ``\\boxed 5`` single-token form count too). A box
inside the thinking is ignored, because only the final answer is graded. No ``</think>`` (with
``require_think``) or no box: there is no answer. ``require_think=False`` reads the whole text, for models that
do not think.

The complexity screen is the first of the grader's time bounds (see :mod:`lcpo.algo.grading`): a model can box
``9^{9^{9^{9}}}`` or ``(10^6)!`` and sympy then computes for hours; these string checks reject such answers in
microseconds, before sympy sees them. Pure string work: no math-verify, no processes.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "CHOICE_LETTERS",
    "KINDS",
    "THINK_END",
    "choice_letter",
    "extract_answer",
    "extract_boxed",
    "locate_answer",
    "too_complex",
]

#: How an answer can be compared with the gold (:class:`lcpo.algo.grading.Grader`): math-verify equivalence, an
#: option letter, or the exact string.
KINDS = ("math", "choice", "exact")
#: Option letters accepted by default: GPQA/MMLU use A-D, LSAT A-E, MMLU-Pro A-J.
CHOICE_LETTERS = "ABCDEFGHIJ"
THINK_END = "</think>"

_MAX_BRACE_DEPTH = 16  # real answers nest 3-5 deep; latex2sympy recurses per level
_MAX_EXPONENT = 1e6  # 2^{10^6} verifies in about 0.5 s; 9^{9^9} never finishes
_MAX_FACTORIAL = 1e5  # (10^5)! about 0.3 s, (10^6)! about 8 s

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BOX_ARG_RE = re.compile(r"\s*(\{)|\s+([^\s$]+)")  # "{...}" or Hendrycks' "\boxed 5"
_BRACE_RE = re.compile(r"\\.|[{}]", re.S)  # "\{", "\}" and "\\" are skipped as escapes
_NUM = r"\d+(?:\.\d+)?"
_TOWER = rf"{_NUM}(?:\s*\^\s*\{{?\s*[-+]?\s*{_NUM})*"  # 9, 10^{10}, 9^{9^{9  (closing braces follow)
_EXPONENT_RE = re.compile(rf"\^\s*\{{?\s*[-+]?\s*({_TOWER})")
_FACTORIAL_RE = re.compile(rf"({_TOWER})[\s)}}]*!")
_BINOM_RE = re.compile(rf"binom\s*\{{?\s*({_TOWER})")
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf)\s*\{([^{}]*)\}")
_CHOICE_RE = re.compile(r"\(?\s*([A-Za-z])\s*\)?\s*[.:]?")


# --------------------------------------------------------------------------------------------- extraction


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed``/``\\fbox`` in ``text``; None if there is none or it is never closed.

    Braces are matched with a counter (nested ``\\frac{1}{2}`` and 10k levels alike, linear time); escaped
    ``\\{``/``\\}`` are skipped so ``\\left\\{ ... \\right.`` does not unbalance the count.
    """
    last = None
    for last in _BOX_RE.finditer(text):
        pass
    if last is None:
        return None
    arg = _BOX_ARG_RE.match(text, last.end())
    if arg is None:
        return None
    if arg.group(2) is not None:
        return arg.group(2)
    start, depth = arg.end(), 1
    for token in _BRACE_RE.finditer(text, start):
        if token.group() == "{":
            depth += 1
        elif token.group() == "}":
            depth -= 1
            if depth == 0:
                return text[start : token.start()]
    return None


def locate_answer(response: str, require_think: bool) -> tuple[str | None, str]:
    """The graded answer, or None and the reason there is none (``no_think`` or ``no_boxed``)."""
    if require_think:
        end = response.find(THINK_END)
        if end < 0:
            return None, "no_think"
        response = response[end + len(THINK_END) :]
    answer = extract_boxed(response)
    return (None, "no_boxed") if answer is None else (answer, "ok")


def extract_answer(response: str, require_think: bool = True) -> str | None:
    """The answer that would be graded: last box after the first ``</think>`` (or anywhere without thinking)."""
    return locate_answer(response, require_think)[0]


# --------------------------------------------------------------------------------------------- guards


def _max_brace_depth(text: str) -> int:
    depth = deepest = 0
    for token in _BRACE_RE.finditer(text):
        if token.group() == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif token.group() == "}":
            depth -= 1
    return deepest


def _tower_value(tower: str) -> float:
    """Value of a numeric power tower such as ``10^{10`` (signs ignored: 10^{-10^{10}} is as costly), or inf."""
    numbers = [float(n) for n in re.findall(_NUM, tower)]
    value = numbers[-1]
    for base in reversed(numbers[:-1]):
        if value > _MAX_EXPONENT:
            return math.inf
        try:
            value = base**value
        except OverflowError:
            return math.inf
    return value


def too_complex(answer: str) -> bool:
    """True for answers sympy could spend minutes on and no sensible problem has (huge powers, factorials)."""
    return (
        _max_brace_depth(answer) > _MAX_BRACE_DEPTH
        or any(_tower_value(m.group(1)) > _MAX_EXPONENT for m in _EXPONENT_RE.finditer(answer))
        or any(_tower_value(m.group(1)) > _MAX_FACTORIAL for m in _FACTORIAL_RE.finditer(answer))
        or any(_tower_value(m.group(1)) > _MAX_FACTORIAL for m in _BINOM_RE.finditer(answer))
    )


def choice_letter(text: str) -> str | None:
    """``B``, ``(B)``, ``B.``, ``\\text{B}``, ``$b$`` -> ``"B"``; anything else -> None."""
    match = _CHOICE_RE.fullmatch(_TEXT_CMD_RE.sub(r"\1", text).replace("$", "").strip())
    return match.group(1).upper() if match else None
