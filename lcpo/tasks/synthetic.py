"""The embedded synthetic reasoning task: chained additions modulo a small number, with verifiable answers.

Why this task: a tiny model cannot add several numbers "in its head", but it learns one step (``a+b`` mod m, a
table of m*m facts) quickly, so a step-by-step trace gets the answer right while a shortcut does not. Each step is
one short line, and verbosity comes from optional ``check`` lines that restate the last step: a repeated unit of
fixed length that a policy can add or drop cheaply, which is what length control needs. The number of checks in a
warm-start trace is drawn from its own generator and never sees a budget, so a model trained on these traces
produces lengths that ignore any budget in its prompt, like the paper's base model.

Example (3 terms, 1 check)::

    question:  4+7+5 mod 10 = ?
    response:  <think>4+7=1\\n1+5=6\\ncheck 1+5=6\\n</think>\\n\\boxed{6}
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lcpo.tasks.base import Problem

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
#: Check lines carry a one-digit number.
MAX_CHECKS = 9


@dataclass
class SyntheticTaskConfig:
    """Difficulty knobs: ``min_terms``..``max_terms`` numbers in 0..``max_value`` are added modulo ``modulus``.

    ``distinct`` draws the terms without replacement, so no lookup of a term in the question is ambiguous.
    Measured with the default tiny model (bs 32, lr 1e-3): 3 terms reach 100% greedy accuracy after about 1300 SFT
    steps; with 3-6 terms it learned the copies but not which term comes next (chance accuracy after 1300 steps).
    How many check lines a trace carries is the warm-start's choice (``WarmstartConfig.min/max_verbosity``).
    """

    min_terms: int = 3
    max_terms: int = 3
    max_value: int = 9
    modulus: int = 10
    distinct: bool = True
    eval_size: int = 256

    def __post_init__(self) -> None:
        if not 2 <= self.min_terms <= self.max_terms:
            raise ValueError(
                f"task.synthetic needs 2 <= min_terms <= max_terms, got {self.min_terms}, {self.max_terms}"
            )
        if self.max_value < 1 or self.modulus < 2:
            raise ValueError(f"task.synthetic needs max_value >= 1 and modulus >= 2, got {self.max_value}, {self.modulus}")
        if self.distinct and self.max_terms > self.max_value + 1:
            raise ValueError(
                f"task.synthetic.distinct needs max_terms <= max_value + 1, got {self.max_terms} > {self.max_value + 1}"
            )
        if self.eval_size < 1:
            raise ValueError(f"task.synthetic.eval_size must be >= 1, got {self.eval_size}")


class SyntheticTask:
    """Implements :class:`lcpo.tasks.base.Task`, plus :meth:`trace` for the supervised warm-start."""

    name = "synthetic"

    def __init__(self, cfg: SyntheticTaskConfig | None = None):
        self.cfg = cfg or SyntheticTaskConfig()

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

    def trace(self, problem: Problem, checks: int = 0) -> str:
        """A correct response: the steps, ``checks`` numbered check lines, then the boxed answer.

        Check line ``i`` is ``check i=<answer>``: ten tokens each, so length moves in fixed steps, and the line
        number tells the policy how far it has gone, which makes "stop after the right number of checks" a rule
        a tiny model can learn by RL. The response ends without EOS; the caller appends the tokenizer's EOS.
        """
        if not 0 <= checks <= MAX_CHECKS:
            raise ValueError(f"a trace holds 0..{MAX_CHECKS} check lines, got {checks}")
        steps = self.steps(problem)
        lines = steps + [f"check {i}={problem.answer}" for i in range(1, checks + 1)]
        thinking = "".join(line + "\n" for line in lines)
        return f"{THINK_OPEN}{thinking}{THINK_CLOSE}\n\\boxed{{{problem.answer}}}"
