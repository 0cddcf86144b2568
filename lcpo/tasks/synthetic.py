"""The embedded synthetic reasoning task: chained additions modulo a small number, with verifiable answers.

Why this task: a tiny model cannot add several numbers "in its head", but it learns one step (``a+b`` mod m, a
table of m*m facts) quickly, so a step-by-step trace gets the answer right while a shortcut does not. Each step is
one short line, and verbosity comes from optional ``check`` lines that restate the last step: a repeated unit of
fixed length that a policy can add or drop cheaply, which is what length control needs. The number of checks in a
warm-start trace is drawn from its own generator and never sees a budget, so a model trained on these traces
produces lengths that ignore any budget in its prompt, like the paper's base model.

``budget_in_trace`` decides what check lines say about the prompt's budget (the warm-start's lengths ignore it
either way): ``none`` (``check 2=6``); ``restate``, the budget itself (``ck 2/55=6``, ``ck 2<35=6`` under a maximum);
``countdown`` (the default), the tokens the budget would have left if the thinking ended after this line
(``ck 2:10=6``), the way a reasoning model keeps track of what it has spent. The warm-started model writes the
countdown but stops at random; a countdown makes the rule LCPO has to learn local (stop once the count falls under
ten) where the other formats leave it to compare a line number with a budget read from the prompt.

Measurements of the three formats are in docs/measurements.md.

Example (3 terms, 1 check, countdown)::

    question:  4+7+5 mod 10 = ? Think for 55 tokens.
    response:  <think>4+7=1\\n1+5=6\\nck 1:20=6\\n</think>\\n\\boxed{6}
"""

from __future__ import annotations

import random

from lcpo.budgets import BudgetSpec
from lcpo.config.task import SyntheticTaskConfig
from lcpo.tasks.base import Problem

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
#: Check lines carry a one-digit number.
MAX_CHECKS = 9


class SyntheticTask:
    """Implements :class:`lcpo.tasks.base.Task`, plus :meth:`trace` for the supervised warm-start."""

    name = "synthetic"

    def __init__(self, cfg: SyntheticTaskConfig | None = None):
        self.cfg = cfg or SyntheticTaskConfig()

    @property
    def max_checks(self) -> int:
        """The most check lines a trace holds (the warm-start checks its verbosity range against it)."""
        return MAX_CHECKS

    def sample(self, rng: random.Random) -> Problem:
        cfg = self.cfg
        k = rng.randint(cfg.min_terms, cfg.max_terms)
        values = range(cfg.max_value + 1)
        terms = tuple(rng.sample(values, k) if cfg.distinct else (rng.choice(values) for _ in range(k)))
        expression = "+".join(map(str, terms))
        answer = sum(terms) % cfg.modulus
        return Problem(
            id=f"{expression}%{cfg.modulus}",
            question=f"{expression} mod {cfg.modulus} = ?",
            answer=str(answer),
            meta={"terms": terms, "modulus": cfg.modulus},
        )

    def eval_set(self, n: int | None, seed: int) -> list[Problem]:
        rng = random.Random(seed)
        return [self.sample(rng) for _ in range(self.cfg.eval_size if n is None else n)]

    def steps(self, problem: Problem) -> list[str]:
        """The running-sum lines ``acc+x=new`` that solve ``problem``, one per addition."""
        terms, modulus = problem.meta["terms"], problem.meta["modulus"]
        lines, acc = [], terms[0]
        for x in terms[1:]:
            new = (acc + x) % modulus
            lines.append(f"{acc}+{x}={new}")
            acc = new
        return lines

    def trace(self, problem: Problem, checks: int = 0, budget: BudgetSpec | None = None) -> str:
        """A correct response: the steps, ``checks`` numbered check lines, then the boxed answer.

        Check line ``i`` is ``check i=<answer>``, or with a budget and ``budget_in_trace``: ``ck i/N=<answer>``
        (restate; ``<`` for a maximum) or ``ck i:LL=<answer>`` (countdown of the tokens left, two digits, clamped
        to 0..99; ``<`` for a maximum). Every format is ten tokens a line for two-digit budgets, so length moves in
        fixed steps and does not depend on the budget. ``checks`` is the caller's draw; ``budget`` only changes
        what the lines say. The response ends without EOS; the caller appends the tokenizer's EOS.
        """
        if not 0 <= checks <= self.max_checks:
            raise ValueError(f"a trace holds 0..{self.max_checks} check lines, got {checks}")
        answer, steps = problem.answer, self.steps(problem)
        tail = f"{THINK_CLOSE}\n\\boxed{{{answer}}}"
        style = self.cfg.budget_in_trace if budget is not None and budget.mode != "none" else "none"
        sign = "<" if budget is not None and budget.mode == "max" else {"restate": "/", "countdown": ":"}.get(style)
        thinking = THINK_OPEN + "".join(line + "\n" for line in steps)
        for i in range(1, checks + 1):
            if style == "none":
                line = f"check {i}={answer}\n"
            elif style == "restate":
                line = f"ck {i}{sign}{budget.budget}={answer}\n"
            else:  # the line is as long for any count, so the count can assume it
                ended = response_tokens(thinking + f"ck {i}{sign}00={answer}\n" + tail)
                line = f"ck {i}{sign}{min(max(budget.budget - ended, 0), 99):02d}={answer}\n"
            thinking += line
        return thinking + tail


def response_tokens(response: str) -> int:
    """Tokens of ``response`` under the tiny tokenizer (``lcpo.tiny``): a character each, a think marker each, + EOS."""
    return len(response.replace(THINK_OPEN, "<").replace(THINK_CLOSE, ">")) + 1
