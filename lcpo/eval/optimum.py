"""The reward's own best policy on the synthetic task, and the demo's bars as it scores them.

Why: a bar that the best policy under the training reward cannot pass measures the reward and the task, not the
training, and no amount of training will pass it. On the synthetic task this best policy can be written down. A
response is ``j`` lines (``fixed + line * j`` tokens, :meth:`SyntheticTask.length_grid`); a line-by-line solver
that knows how many terms ``k`` a problem has, but not the answer before it has added them, chooses ``j`` for each
problem, mode and budget:

- ``j >= k``: all steps and ``j - k`` check lines; the answer is right;
- ``j < k``: it stops after ``j`` steps and answers the running sum, right when the ``k - j`` terms left sum to 0
  modulo the task's modulus (the chance of that for independent terms drawn as the task draws them, zeros
  included; an approximation when ``task.synthetic.distinct`` is true).

It picks the ``j`` with the highest expected reward under the configured reward (the one ``lcpo.cli.train`` would use,
each row scored by its own mode), capped by the evaluation's generation cap, shortest first on ties; its rows are
then scored on the demo's own evaluation problems with their realised correctness and go through
:func:`lcpo.eval.acceptance.demo_bars`. A policy that always solves without check lines stands in for the base model, and s1
is left out: those bars say nothing about the reward.

``python -m lcpo.bench optimum`` prints them; the demo shows them next to its own bars.
"""

from __future__ import annotations


import torch

from lcpo.algo import metrics
from lcpo.eval.acceptance import demo_bars
from lcpo.eval.rows import EvalRow
from lcpo.algo.budgets import BudgetSpec, Mode
from lcpo.config import EvalGrid, RewardConfig, TrainConfig
from lcpo.config.task import SyntheticTaskConfig
from lcpo.algo.rewards import RewardInputs
from lcpo.config.reward import build_reward
from lcpo.tasks.base import Problem
from lcpo.tasks.synthetic import SyntheticTask


def stop_chance(remaining: int, max_value: int, modulus: int, zero_share: float = 0.0) -> float:
    """P(``remaining`` independent terms sum to 0 mod ``modulus``): an early stop's chance. A term is 0 with chance
    ``zero_share``, else uniform in 0..max_value (``SyntheticTask.sample``)."""
    term = [(1 - zero_share) / (max_value + 1)] * (max_value + 1)
    term[0] += zero_share
    dist = [1.0] + [0.0] * (modulus - 1)  # of the sum so far, modulo ``modulus``
    for _ in range(remaining):
        dist = [sum(dist[(s - v) % modulus] * p for v, p in enumerate(term)) for s in range(modulus)]
    return dist[0]


def best_lines(k: int, spec: BudgetSpec, cap: int, grid: tuple[int, int], cfg: SyntheticTaskConfig,
               reward: RewardConfig) -> int:
    """The line count with the highest expected reward for a ``k``-term problem (see the module docstring)."""
    fixed, line = grid
    options = list(range(1, max(1, (cap - fixed) // line) + 1))
    lengths = [fixed + line * j for j in options]
    n = len(options)
    score = build_reward(reward)
    by_correct = [
        score(RewardInputs.build([c] * n, [spec] * n, lengths, cap, range(n)))
        for c in (True, False)
    ]
    chances = torch.tensor([1.0 if j >= k else stop_chance(k - j, cfg.max_value, cfg.modulus, cfg.zero_share)
                            for j in options])
    expected = chances * by_correct[0] + (1 - chances) * by_correct[1]
    return options[int(torch.argmax(expected))]  # argmax takes the first (shortest) of equal maxima


def best_line_counts(task: SyntheticTask, reward: RewardConfig, spec: BudgetSpec, cap: int,
                     sizes: set[int]) -> dict[int, int]:
    """The best line count for each problem size in ``sizes`` at one mode and budget (``spec``), under ``cap``."""
    grid = task.length_grid(spec)
    return {k: best_lines(k, spec, cap, grid, task.cfg, reward) for k in sizes}


def running_answer(task: SyntheticTask, problem: Problem, lines: int) -> str:
    """The answer after ``lines`` lines, all of them steps while any are left (checks only after the last)."""
    steps = task.steps(problem)
    return str(steps[min(lines, len(steps)) - 1][1])


def optimum_rows(task: SyntheticTask, reward: RewardConfig, grid: EvalGrid) -> list[EvalRow]:
    """Report rows (one sample a problem; none truncated: every length the policy picks fits the cap) of the best
    policy ("lcpo") and of a policy that always solves fully without check lines ("base"), on ``grid``'s problems,
    modes and budgets."""
    if reward.name == "kimi":
        raise ValueError("reward=kimi scores a sample against its group: no single best response exists for it")
    problems = task.eval_set(grid.problems, grid.seed)
    sizes = {len(p.meta["terms"]) for p in problems}
    rows = []
    for mode in grid.modes:
        for budget in grid.budgets:
            spec = BudgetSpec(mode, budget)
            length_grid = task.length_grid(spec)
            policies = {"lcpo": best_line_counts(task, reward, spec, grid.cap(mode, budget), sizes),
                        "base": {k: k for k in sizes}}
            for model, policy in policies.items():
                lines, correct = [], []
                for p in problems:
                    j = policy[len(p.meta["terms"])]
                    lines.append(length_grid[0] + length_grid[1] * j)
                    correct.append([running_answer(task, p, j) == p.answer])
                rows.append(EvalRow(model=model, task=task.name, mode=str(mode), budget=budget, n=len(problems), samples=1,
                                    k=1, **metrics.group_metrics(correct, [[n] for n in lines], budget, 1),
                                    truncated_share=0.0, lengths=lines))
    return rows


def over_budget_shares(rows: list[EvalRow], model: str = "lcpo") -> dict[int, float]:
    """``model``'s max-mode over-budget share at each budget: what the max-mode bar measures a model against."""
    return {r.budget: r.over_budget_share for r in rows if r.model == model and r.mode == Mode.MAX}


def optimum_bars(cfg: TrainConfig) -> tuple[list[EvalRow], list[dict]]:
    """The best policy's rows and its demo bars under ``cfg``'s reward, task and evaluation grid (synthetic task)."""
    task = SyntheticTask(cfg.task.synthetic)
    rows = optimum_rows(task, cfg.reward, cfg.eval)
    grid = task.length_grid(BudgetSpec(Mode.EXACT, max(cfg.eval.budgets)))
    return rows, demo_bars(rows, grid, best_over=over_budget_shares(rows))
