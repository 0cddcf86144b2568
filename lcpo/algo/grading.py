"""Correctness I(y = y_gold) for LCPO rewards and evaluation, bounded in time whatever the model writes.

Which part of a response is the answer (the last box after the first ``</think>``) is :mod:`lcpo.algo.answers`'s
convention; this module decides whether that answer is right.

Equivalence is decided by math-verify (``parse`` + ``verify(gold, pred)``), not by the reference's
Hendrycks/PRM800K string normaliser: it is maintained and understands LaTeX, intervals, sets, matrices,
percentages and numeric tolerance. It is more lenient than the reference in places, e.g. it accepts ``2/4``
for ``1/2`` and ``0.5`` for ``\\frac12``. Bare answers are wrapped in ``$...$`` before parsing: measured,
that parses more forms than ``\\boxed{...}`` (``5\\%`` parses only inline), and newlines become spaces because
inline math may not span lines.

Time bound (an RL step must never stall on one sample). A model can box ``9^{9^{9^{9}}}``, ``(10^6)!`` or
``(x+1)^{1000}``; sympy then computes for minutes or hours. Three layers:

1. Cheap guards on the extracted answer before sympy sees it: a length cap (``too_long``), and
   :func:`lcpo.algo.answers.too_complex`'s brace-depth cap and refusal of numeric power towers, factorials and
   binomials too large to be a sensible answer (``too_complex``). They turn the known pathological families into
   microsecond rejections.
2. Every verification runs in the main thread of a process (the caller's, or a grading worker's) under our own
   ``ITIMER_REAL`` timer, which raises a ``BaseException`` that math-verify's ``except Exception`` cannot
   swallow. math-verify's own ``signal.alarm`` timeouts are disabled: they take whole seconds, would cancel our
   timer and swallow the timeout so it could not be counted. Sympy runs Python code, so the signal interrupts it.
3. :meth:`Grader.grade_many` grades a batch in a pool of worker processes (``pebble``, started from a clean
   forkserver), a chunk per task; a task that outlives its chunk's time (a worker stuck in C code, where no
   signal lands) is killed with its worker, and its answers are regraded one by one under a hard per-answer
   timeout, so one pathological answer costs its own timeout and nothing else. Callers off the main thread,
   where signals cannot be used, are served by the same pool.

A timeout is incorrect (``False``) with reason ``"timeout"``; ``grade_detailed`` returns the reason so
callers can count timeouts, guard hits and parse failures.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from pebble import ProcessExpired, ProcessPool

from lcpo.algo.answers import (
    CHOICE_LETTERS,
    KINDS,
    choice_letter,
    locate_answer,
    too_complex,
)
from lcpo.algo.pools import settled, worker_pool

__all__ = [
    "REASONS",
    "GradeResult",
    "Grader",
    "grade",
    "grade_choice",
    "grade_choice_detailed",
    "grade_detailed",
    "grade_exact_detailed",
    "verify_answer",
]

#: Every reason a ``GradeResult`` can carry.
REASONS = ("ok", "wrong", "no_think", "no_boxed", "too_long", "too_complex", "timeout", "parse_error", "bad_input")

_WORKER_GRACE_S = 2.0  # a worker times each answer out itself; this covers the round trip or a hang in C
_DELIMITED_RE = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed|\\fbox")

# We disable math-verify's signal timeouts on purpose (see module docstring); its warning would say otherwise.
for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(lambda record: not record.getMessage().startswith("Timeout is disabled"))


@dataclass(frozen=True)
class GradeResult:
    """A verdict and why: ``reason`` is one of ``REASONS``; ``answer`` is the extracted box content, if any."""

    correct: bool
    reason: str
    answer: str | None = None


# --------------------------------------------------------------------------------------------- verification


class _Deadline(BaseException):
    """Raised by our timer; a BaseException so math-verify's and sympy's ``except Exception`` let it through."""


@lru_cache(maxsize=None)
def _extraction_config(match_types: tuple[str, ...]) -> list[LatexExtractionConfig | ExprExtractionConfig]:
    unknown = set(match_types) - {"latex", "expr"}
    if unknown or not match_types:
        raise ValueError(f"match_types must be a non-empty subset of ('latex', 'expr'), got {match_types!r}")
    # boxed_match_priority=0: a box wins over other math in the string, as in math-verify's own tests.
    return [
        LatexExtractionConfig(boxed_match_priority=0) if kind == "latex" else ExprExtractionConfig()
        for kind in match_types
    ]


def _verify_here(pred: str, gold: str, match_types: tuple[str, ...], precision: int, strict: bool) -> str:
    """math-verify on two raw strings, in this thread, unbounded: ``ok``, ``wrong`` or ``parse_error``."""
    config = _extraction_config(match_types)
    try:
        gold_parsed = parse(gold, config, parsing_timeout=None)
        pred_parsed = parse(pred, config, parsing_timeout=None)
        if not gold_parsed or not pred_parsed:
            return "parse_error"
        same = verify(gold_parsed, pred_parsed, float_rounding=precision, strict=strict, timeout_seconds=None)
    except Exception:  # noqa: BLE001 - any failure inside sympy is a grading failure, never a crash
        return "parse_error"
    return "ok" if same else "wrong"


def _run_with_timer(work: Callable[[], str], timeout_s: float) -> str:
    """``work()`` in the main thread, cut after ``timeout_s`` (-> ``timeout``); restores any outer timer.

    An outer ``ITIMER_REAL`` (e.g. pytest-timeout's) is re-armed afterwards, late by at most ``timeout_s``.
    """

    def on_alarm(signum: int, frame: object) -> None:
        raise _Deadline

    started = time.monotonic()
    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        try:
            return work()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Deadline:
        return "timeout"
    finally:
        signal.signal(signal.SIGALRM, old_handler)
        if outer_delay:
            signal.setitimer(signal.ITIMER_REAL, max(outer_delay - (time.monotonic() - started), 1e-3), outer_interval)


def _verify_reason(
    pred: str, gold: str, match_types: tuple[str, ...], precision: int, strict: bool, timeout_s: float
) -> str:
    """``_verify_here`` bounded by ``timeout_s``: a timer in the main thread, a pool worker's elsewhere."""
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    _extraction_config(match_types)  # fail fast on bad match_types, in the caller's process
    if _can_time_here():
        return _run_with_timer(lambda: _verify_here(pred, gold, match_types, precision, strict), timeout_s)
    args = (pred, gold, match_types, precision, strict, timeout_s)
    pool = worker_pool(1, __name__)
    future = pool.schedule(_verify_reason, args=args, timeout=timeout_s + _WORKER_GRACE_S)
    try:
        return settled(pool, future)
    except (FutureTimeout, ProcessExpired):
        return "timeout"


def _can_time_here() -> bool:
    """Our timer needs signals, which only the main thread of a process receives."""
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")


def verify_answer(
    pred: str,
    gold: str,
    *,
    match_types: tuple[str, ...] | list[str] = ("latex", "expr"),
    precision: int = 6,
    strict: bool = True,
    timeout_s: float = 5.0,
) -> bool:
    """math-verify on two raw strings (no ``</think>``/box convention), gold first, bounded by ``timeout_s``.

    Mirrors math-verify's own test helper: each ``match_types`` entry selects an extraction ("latex" with
    boxes first, "expr" for plain numbers/expressions); ``precision`` is the float rounding; ``strict`` makes
    variables matter. A timeout or an unparsable side is False.
    """
    return _verify_reason(pred, gold, tuple(match_types), precision, strict, timeout_s) == "ok"


def _as_math(answer: str) -> str:
    """Delimits a bare answer as inline math so math-verify's LaTeX extraction sees it (see module docstring)."""
    return answer if _DELIMITED_RE.search(answer) else "$" + answer.replace("\r", " ").replace("\n", " ") + "$"


def _check_gold(gold: object) -> str:
    # A gold that is not a string is a data-loading bug (e.g. an int column): fail loudly, not with reward 0.
    if not isinstance(gold, str):
        raise TypeError(f"gold must be a str (convert it when loading the data), got {type(gold).__name__}")
    return gold


# --------------------------------------------------------------------------------------------- grading


def _located(response: str, gold: str, require_think: bool) -> GradeResult:
    """The answer to grade in an unfinished verdict (``answer`` set), or the verdict when there is none to grade:
    ``bad_input`` for a response that is not a str or an empty gold, else why no answer was found."""
    gold = _check_gold(gold)
    if not isinstance(response, str) or not gold.strip():
        return GradeResult(False, "bad_input")
    answer, reason = locate_answer(response, require_think)
    return GradeResult(False, reason, answer)


def grade_detailed(
    response: str,
    gold: str,
    *,
    require_think: bool = True,
    timeout_s: float = 5.0,
    max_answer_chars: int = 1000,
) -> GradeResult:
    """Grades one response against a gold answer (plain ``1/2`` or LaTeX ``\\frac{1}{2}``), with the reason.

    A response that is not a str (None, bytes) or an empty gold is ``bad_input``: generation hiccups must not
    crash training. A gold that is not a str raises ``TypeError``.
    """
    found = _located(response, gold, require_think)
    if found.answer is None:
        return found
    answer = found.answer
    if len(answer) > max_answer_chars:
        return GradeResult(False, "too_long", answer)
    if too_complex(answer):
        return GradeResult(False, "too_complex", answer)
    reason = _verify_reason(_as_math(answer), _as_math(gold), ("latex", "expr"), 6, True, timeout_s)
    return GradeResult(reason == "ok", reason, answer)


def grade(
    response: str,
    gold: str,
    *,
    require_think: bool = True,
    timeout_s: float = 5.0,
    max_answer_chars: int = 1000,
) -> bool:
    """True iff the response's final boxed answer equals ``gold`` (see ``grade_detailed``)."""
    return grade_detailed(
        response, gold, require_think=require_think, timeout_s=timeout_s, max_answer_chars=max_answer_chars
    ).correct


def grade_choice_detailed(
    response: str, gold_letter: str, *, require_think: bool = True, letters: str = CHOICE_LETTERS
) -> GradeResult:
    """Multiple choice: the boxed letter, case-insensitive, against ``gold_letter``; ``parse_error`` if no letter.

    A gold that is not one of ``letters`` raises ``ValueError`` (a data bug that would silently zero the reward).
    """
    gold = choice_letter(_check_gold(gold_letter))
    if gold is None or gold not in letters.upper():
        raise ValueError(f"gold_letter must be one of {letters!r}, got {gold_letter!r}")
    found = _located(response, gold_letter, require_think)
    if found.answer is None:
        return found
    answer = found.answer
    letter = choice_letter(answer)
    if letter is None:
        return GradeResult(False, "parse_error", answer)
    return GradeResult(letter == gold, "ok" if letter == gold else "wrong", answer)


def grade_choice(
    response: str, gold_letter: str, *, require_think: bool = True, letters: str = CHOICE_LETTERS
) -> bool:
    """True iff the final boxed letter equals ``gold_letter`` (see ``grade_choice_detailed``)."""
    return grade_choice_detailed(response, gold_letter, require_think=require_think, letters=letters).correct


def grade_exact_detailed(response: str, gold: str, *, require_think: bool = True) -> GradeResult:
    """The final boxed text against ``gold`` as strings (surrounding spaces ignored): no parsing, no time bound."""
    found = _located(response, gold, require_think)
    if found.answer is None:
        return found
    right = found.answer.strip() == gold.strip()
    return GradeResult(right, "ok" if right else "wrong", found.answer)


@dataclass(frozen=True)
class Grader:
    """The grading settings of a task in one picklable object, so rewards, evaluation and workers agree.

    ``kind`` is ``"math"`` (math-verify equivalence), ``"choice"`` (boxed option letter) or ``"exact"`` (the boxed
    text equals the gold, spaces aside: for generated tasks whose answers have one spelling, such as the synthetic
    task's digits; it needs no timer and no workers, so a verdict never depends on how busy the machine is).
    ``workers`` is the number of processes :meth:`grade_many` spreads a math batch over (0: grade in this process).
    """

    kind: str = "math"
    require_think: bool = True
    timeout_s: float = 5.0
    max_answer_chars: int = 1000
    workers: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Grader.kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.timeout_s <= 0 or self.max_answer_chars <= 0 or self.workers < 0:
            raise ValueError("Grader.timeout_s and Grader.max_answer_chars must be > 0, Grader.workers >= 0")

    def detailed(self, response: str, gold: str) -> GradeResult:
        if self.kind == "choice":
            return grade_choice_detailed(response, gold, require_think=self.require_think)
        if self.kind == "exact":
            return grade_exact_detailed(response, gold, require_think=self.require_think)
        return grade_detailed(
            response,
            gold,
            require_think=self.require_think,
            timeout_s=self.timeout_s,
            max_answer_chars=self.max_answer_chars,
        )

    def __call__(self, response: str, gold: str) -> bool:
        return self.detailed(response, gold).correct

    def grade_many(self, responses: Sequence[str], golds: Sequence[str]) -> list[GradeResult]:
        """Grades ``responses[i]`` against ``golds[i]``, in parallel over ``workers`` processes when set.

        Gold answers are checked here first, so a data bug raises in the caller rather than in a worker. Each
        answer is bounded by ``timeout_s`` (see the module docstring for how), whatever the others do.
        """
        if len(responses) != len(golds):
            raise ValueError(f"got {len(responses)} responses for {len(golds)} gold answers")
        for gold in golds:
            _check_gold(gold)
        pairs = list(zip(responses, golds))
        if self.workers == 0 or len(pairs) < 2 or self.kind == "exact":
            return [self.detailed(r, g) for r, g in pairs]
        pool = worker_pool(self.workers, __name__)
        size = max(1, -(-len(pairs) // (4 * self.workers)))  # about four chunks per worker balances the load
        chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
        futures = [
            pool.schedule(_grade_chunk, args=(self, chunk), timeout=len(chunk) * self.timeout_s + _WORKER_GRACE_S)
            for chunk in chunks
        ]
        results: list[GradeResult] = []
        for chunk, future in zip(chunks, futures):
            try:
                results.extend(settled(pool, future))
            except (FutureTimeout, ProcessExpired):  # a worker stuck in C code: isolate the answer that did it
                results.extend(self._grade_alone(pool, pair) for pair in chunk)
            except BrokenProcessPool as err:  # every worker died as it started: none will grade anything
                raise RuntimeError(
                    "the grading worker processes exited as they started. When lcpo runs from a Python script, "
                    "guard the script's top level with `if __name__ == \"__main__\":` (multiprocessing runs an "
                    "unguarded script again in every worker), or set task.grading_workers=0 to grade in this process"
                ) from err
        return results

    def _grade_alone(self, pool: ProcessPool, pair: tuple[str, str]) -> GradeResult:
        future = pool.schedule(_grade_chunk, args=(self, [pair]), timeout=self.timeout_s + _WORKER_GRACE_S)
        try:
            return settled(pool, future)[0]
        except (FutureTimeout, ProcessExpired):
            return GradeResult(False, "timeout")


def _grade_chunk(grader: Grader, pairs: list[tuple[str, str]]) -> list[GradeResult]:
    """A pool task: grades pairs in the worker's main thread, where each answer gets its own timer."""
    return [grader.detailed(response, gold) for response, gold in pairs]
