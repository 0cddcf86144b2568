"""One cell evaluated: its problems sampled through an engine, graded, and summed up into a report row plus one
record per sample (what ``samples.jsonl`` holds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from lcpo.algo import metrics
from lcpo.algo.budgets import BudgetSpec, Mode
from lcpo.config import FORCED, EvalGrid, RolloutConfig
from lcpo.eval.plan import Cell
from lcpo.eval.rows import EvalRow
from lcpo.rollout.base import Completion, RolloutEngine
from lcpo.tasks.choices import grade_problems
from lcpo.tasks.prompts import PromptBuilder


@dataclass(frozen=True)
class CellResult:
    """A finished cell: its report row and its samples (``model, task, mode, budget, problem, answer, length,
    thinking_tokens, answer_tokens, correct, finish_reason, text`` each)."""

    row: EvalRow
    samples: list[dict]


def evaluate_cell(
    engine: RolloutEngine,
    build_prompt: PromptBuilder,
    cell: Cell,
    grid: EvalGrid,
    rollout: RolloutConfig,
    advance: Callable[[int], None],
    count_thinking: Callable[[Completion], int],
) -> CellResult:
    """Samples, grades and scores one cell; ``advance(k)`` is called as ``k`` more problems are sampled;
    ``count_thinking`` gives a completion's tokens before ``</think>``."""
    groups = generate(engine, build_prompt, cell, grid, rollout, advance)
    return score(cell, groups, grid, count_thinking)


def generate(
    engine: RolloutEngine,
    build_prompt: PromptBuilder,
    cell: Cell,
    grid: EvalGrid,
    rollout: RolloutConfig,
    advance: Callable[[int], None],
) -> list[list[Completion]]:
    """Samples the cell's problems in chunks of about ``rollout.batch_size`` sequences (for progress updates)."""
    mode = Mode(grid.forced_prompt) if cell.mode == FORCED else cell.mode
    spec = BudgetSpec(Mode.NONE, None) if mode is Mode.NONE else BudgetSpec(mode, cell.budget)
    sampling = rollout.sampling(grid.cap(cell.mode, cell.budget))
    prompts = [build_prompt(p, spec) for p in cell.problems]
    torch.manual_seed(grid.seed + cell.seed)
    step = max(1, rollout.batch_size // grid.samples)
    groups: list[list[Completion]] = []
    for start in range(0, len(prompts), step):
        chunk = prompts[start : start + step]
        budgets = [cell.budget] * len(chunk)
        seed = grid.seed + cell.seed + start
        groups.extend(engine.generate(chunk, grid.samples, sampling, budgets=budgets, seed=seed))
        advance(len(chunk))
    return groups


def score(
    cell: Cell, groups: list[list[Completion]], grid: EvalGrid, count_thinking: Callable[[Completion], int]
) -> CellResult:
    """The row and sample records of a cell from its completions (``groups[i]``: problem ``i``'s samples)."""
    correct = grade(cell, groups)
    lengths = [[c.length for c in g] for g in groups]
    thinking = [[count_thinking(c) for c in g] for g in groups]
    samples = [
        {"model": cell.model, "task": cell.task.name, "mode": str(cell.mode), "budget": cell.budget, "problem": problem.id,
         "question": problem.question, "answer": problem.answer,
         "length": c.length, "thinking_tokens": n, "answer_tokens": c.length - n,
         "correct": ok, "finish_reason": c.finish_reason, "text": c.text}
        for problem, group, marks, counts in zip(cell.problems, groups, correct, thinking)
        for c, ok, n in zip(group, marks, counts)
    ]
    flat = [n for g in lengths for n in g]
    flat_thinking = [n for g in thinking for n in g]
    row = EvalRow(
        model=cell.model, task=cell.task.name, data_source=data_source(cell), mode=str(cell.mode),
        budget=cell.budget, n=len(cell.problems), samples=grid.samples, k=grid.k,
        **metrics.group_metrics(correct, lengths, cell.budget, grid.k),
        **metrics.length_metrics(flat_thinking, cell.budget, "thinking_"),
        mean_answer_tokens=metrics.mean_tokens(flat) - metrics.mean_tokens(flat_thinking),
        truncated_share=sum(c.truncated for g in groups for c in g) / len(flat), lengths=flat,
    )
    return CellResult(row, samples)


def data_source(cell: Cell) -> str:
    """The cell's problems' common ``data_source`` (a verl file's), else the task's name."""
    sources = {p.meta.get("data_source") for p in cell.problems}
    return str(sources.pop()) if len(sources) == 1 and None not in sources else cell.task.name


def grade(cell: Cell, groups: list[list[Completion]]) -> list[list[bool]]:
    """Per-sample correctness, by the same rule training's rewards use (choice problems by their option letter)."""
    flat = [(problem, completion.text) for problem, group in zip(cell.problems, groups) for completion in group]
    results = iter(grade_problems(cell.task.grader, [text for _, text in flat], [problem for problem, _ in flat]))
    return [[next(results).correct for _ in group] for group in groups]
