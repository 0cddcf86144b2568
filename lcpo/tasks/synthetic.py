"""The embedded synthetic reasoning task: sums of a varying number of labelled digits modulo 10, solved line by line.

Why this task: thinking longer has to buy accuracy, as on real problems. A problem adds ``k`` digits (``k`` varies
per problem) and a tiny model cannot add them "in its head", so the answer needs one step line per term: a response
that stops early answers from a partial sum, which is right only by chance (one time in ten). Longer problems need
more lines, so a small budget fits only the short ones and accuracy rises with the budget. With ``zero_share`` a
digit is 0 more often, and an early answer is partly right, the more often the fewer steps it skips.

Terms are labelled with letters that count down to ``A`` (``D3 C7 B5 A9 mod 10``): each step line names the term it
adds (``+C7=0``), so finding the next term is a lookup by content (the letter after the last one used, then the
digit after that letter in the question) rather than by position, and the last step is the one labelled ``A``.

Thinking that adds nothing: check lines (``?C7=0``) restate the step before them. A warm-start trace scatters a
random number of them between (and after) its steps, drawn independently of any budget; a policy can drop them when
the budget is tight and add them when it is large, which is the trade-off length control is about. Restating the
step keeps the next step's label one line back whatever came before, and a check line is as long as a step line,
so the response length moves in steps of one line.

``budget_in_trace`` decides whether lines carry budget arithmetic:

- ``none``: ``+C7=0`` and ``?C7=0`` (six tokens a line): nothing in the trace depends on the prompt's budget;
- ``countdown`` (the default): every line ends with the tokens the prompt's budget would have left if the thinking
  ended after it (``+C7=0, 23``; two digits, clamped to 0..99; ``<`` instead of the space under a maximum), the way
  a reasoning model keeps track of what it has spent (ten tokens a line, so the count falls by ten a line).

The count is written whether or not the trace follows it: how many lines a trace has is drawn apart from the budget,
except that the warm-start may wrap up early after a line that shows the steps left no longer fit
(:meth:`SyntheticTask.short_lines`, ``warmstart.stop_when_short`` and ``stop_when_short_max``).

The count is bookkeeping, learned in the warm-start: RL's policy gradient leaves its tokens out
(:meth:`SyntheticTask.bookkeeping_spans`, unless ``task.synthetic.countdown_gradient``; the KL term keeps them), so
rewards are earned by the decisions taken on the count, not by rewriting it. With the count in the policy
gradient, rewarded for going on where the warm-start would wrap up (exact mode at small budgets, where a line over
is nearer than a line under), the tiny model learned to write a count one line too high, which then made it
overrun max-mode budgets.

Example (3 terms, countdown, one check line, exact budget 60)::

    question:  C4 B7 A5 mod 10
    response:  <think>+C4=4, 37\\n+B7=1, 27\\n?B7=1, 17\\n+A5=6, 07\\n</think>\\n\\boxed{6}
"""

from __future__ import annotations

import random
import re
from typing import Sequence

from lcpo.algo.budgets import BudgetSpec, Mode
from lcpo.config.task import LABELS, SyntheticTaskConfig
from lcpo.tasks.base import Problem

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
#: A line's count: the sign (a space, ``<`` under a maximum) and two digits, between the line's comma and its end.
COUNT = re.compile(r"(?<=,)[ <]\d\d(?=\n)")


class SyntheticTask:
    """Implements :class:`lcpo.tasks.base.Task`, plus :meth:`trace` for the supervised warm-start."""

    name = "synthetic"

    def __init__(self, cfg: SyntheticTaskConfig | None = None):
        self.cfg = cfg or SyntheticTaskConfig()

    def sample(self, rng: random.Random) -> Problem:
        cfg = self.cfg
        k = rng.randint(cfg.min_terms, cfg.max_terms)
        values = range(cfg.max_value + 1)
        if cfg.distinct:
            terms = tuple(rng.sample(values, k))
        else:
            # no extra draw without zero_share: the same seed gives the same problems as before the knob
            terms = tuple(0 if cfg.zero_share and rng.random() < cfg.zero_share else rng.choice(values)
                          for _ in range(k))
        labelled = " ".join(f"{LABELS[k - 1 - i]}{x}" for i, x in enumerate(terms))
        return Problem(
            id=f"{labelled}%{cfg.modulus}",
            question=f"{labelled} mod {cfg.modulus}",
            answer=str(sum(terms) % cfg.modulus),
            meta={"terms": terms, "modulus": cfg.modulus},
        )

    def eval_set(self, n: int | None, seed: int) -> list[Problem]:
        rng = random.Random(seed)
        return [self.sample(rng) for _ in range(self.cfg.eval_size if n is None else n)]

    def steps(self, problem: Problem) -> list[tuple[str, int]]:
        """``(term, running sum)`` per step: the term as labelled in the question (``C7``) and the sum after it."""
        terms, modulus = problem.meta["terms"], problem.meta["modulus"]
        out, acc = [], 0
        for i, x in enumerate(terms):
            acc = (acc + x) % modulus
            out.append((f"{LABELS[len(terms) - 1 - i]}{x}", acc))
        return out

    def trace(
        self,
        problem: Problem,
        checks: Sequence[int] = (),
        budget: BudgetSpec | None = None,
        stop_after: int | None = None,
    ) -> str:
        """A response: the step lines with ``checks[i]`` check lines after step ``i``, then the boxed running sum.

        ``checks`` may be shorter than the number of steps (missing entries are 0). ``stop_after`` ends the thinking
        after that many lines (steps and checks), the way a response cut short does: its answer is the running sum
        so far, right only when the terms left add up to 0 (by chance, unless ``zero_share``). ``budget`` only
        changes what the lines say (``budget_in_trace``), never how many there are. The response ends without EOS;
        the caller appends the tokenizer's EOS.
        """
        steps = self.steps(problem)
        if len(checks) > len(steps) or min(checks, default=0) < 0:
            raise ValueError(f"checks must give 0 or more check lines for each of the {len(steps)} steps, got {checks}")
        if stop_after is not None and stop_after < 1:
            raise ValueError(f"stop_after must be >= 1 line, got {stop_after}")
        counted = self.cfg.budget_in_trace == "countdown" and budget is not None and budget.mode is not Mode.NONE
        sign = "<" if budget is not None and budget.mode is Mode.MAX else " "
        lines: list[tuple[str, int]] = []
        for i, (term, acc) in enumerate(steps):
            lines.append((f"+{term}={acc}", acc))
            lines += [(f"?{term}={acc}", acc)] * (checks[i] if i < len(checks) else 0)
        if stop_after is not None:
            lines = lines[:stop_after]
        answer = lines[-1][1]
        tail = f"{THINK_CLOSE}\n\\boxed{{{answer}}}"
        thinking = THINK_OPEN
        for body, _ in lines:
            if counted:  # the line is as long for any count, so the count can assume it
                left = budget.budget - response_tokens(thinking + f"{body},{sign}00\n" + tail)
                body = f"{body},{sign}{min(max(left, 0), 99):02d}"
            thinking += body + "\n"
        return thinking + tail

    def short_lines(self, problem: Problem, checks: Sequence[int], budget: BudgetSpec | None) -> list[bool]:
        """For each line of the full trace (``checks`` as in :meth:`trace`): whether, once it is written, the steps
        left no longer fit the budget, i.e. ending the thinking after them would overrun it.

        With the countdown this is what the line shows: the steps left are its label's letter (``C``: two more), each
        a line long, and the count is the tokens left, so the steps no longer fit when ``line * steps left > count``.
        Lines with no step left, and prompts without a budget, are never short.
        """
        steps = len(self.steps(problem))
        if budget is None or budget.mode is Mode.NONE:
            return [False] * (steps + sum(checks))
        fixed, line = self.length_grid(budget)
        short, written = [], 0
        for i in range(steps):
            for _ in range(1 + (checks[i] if i < len(checks) else 0)):
                written += 1
                left = steps - 1 - i
                short.append(left > 0 and fixed + line * (written + left) > budget.budget)
        return short

    def bookkeeping_spans(self, response: str) -> list[tuple[int, int]]:
        """Character spans of ``response`` that RL's policy gradient leaves out: each line's count (sign and
        digits) under the countdown, unless ``countdown_gradient``; none otherwise."""
        if self.cfg.budget_in_trace != "countdown" or self.cfg.countdown_gradient:
            return []
        thinking = response.split(THINK_CLOSE, 1)[0] + "\n"
        return [m.span() for m in COUNT.finditer(thinking)]

    def length_grid(self, budget: BudgetSpec | None = None) -> tuple[int, int]:
        """``(fixed, line)``: every full response is ``fixed + line * j`` tokens long, ``j`` its number of lines."""
        problem = Problem(id="A0", question="A0", answer="0", meta={"terms": (0,), "modulus": self.cfg.modulus})
        one, two = (response_tokens(self.trace(problem, checks, budget)) for checks in ((0,), (1,)))
        return one - (two - one), two - one


def response_tokens(response: str) -> int:
    """Tokens of ``response`` under the tiny tokenizer (``lcpo.models.tiny``): a character each, a think marker each, + EOS."""
    return len(response.replace(THINK_OPEN, "<").replace(THINK_CLOSE, ">")) + 1
