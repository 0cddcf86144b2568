"""Prompts that do not fit ``rollout.vllm.max_prompt_tokens`` are found when the task loads, not mid-run.

vLLM reserves a context of ``max_prompt_tokens + max_new_tokens`` and refuses a longer prompt, so one long problem
in a file used to stop training whenever it was drawn, hours in. Each problem of a file task is rendered as the
policy will see it, at the largest budget in every mode the run draws (the budget sentence is part of the prompt),
and tokenised as the engines tokenise; problems that do not fit are dropped, and the count and the first few rows
are logged (a run that trains on a subset should say so). A task left empty is an error naming the setting.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from lcpo.algo.budgets import BudgetSampler, BudgetSpec, Mode
from lcpo.rollout.tokens import encode_prompts
from lcpo.tasks.base import Task
from lcpo.tasks.prompts import PromptBuilder

log = logging.getLogger(__name__)


def longest_specs(sampler: BudgetSampler) -> list[BudgetSpec]:
    """One spec per mode the sampler draws, each at the largest budget: the longest prompts it can build."""
    largest = sampler.distribution.largest
    specs = []
    if sampler.none_share > 0:
        specs.append(BudgetSpec(Mode.NONE, None))
    if sampler.max_share > 0:
        specs.append(BudgetSpec(Mode.MAX, largest))
    if sampler.none_share + sampler.max_share < 1:
        specs.append(BudgetSpec(Mode.EXACT, largest))
    return specs


def fit_prompts(task: Task, build_prompt: PromptBuilder, tokenizer: Any, max_tokens: int,
                sampler: BudgetSampler) -> Task:
    """``task`` without the problems whose prompt can exceed ``max_tokens`` tokens (see the module docstring);
    a task without a fixed problem list (the synthetic one) is returned as it is."""
    problems = getattr(task, "problems", None)
    if problems is None:
        return task
    specs = longest_specs(sampler)
    prompts = [build_prompt(problem, spec) for problem in problems for spec in specs]
    lengths = [len(ids) for ids in encode_prompts(tokenizer, prompts)]
    longest = [max(lengths[i * len(specs) : (i + 1) * len(specs)]) for i in range(len(problems))]
    kept = [p for p, n in zip(problems, longest) if n <= max_tokens]
    if len(kept) == len(problems):
        return task
    dropped = [(p, n) for p, n in zip(problems, longest) if n > max_tokens]
    rows = ", ".join(f"{p.meta.get('row', p.id)} ({n} tokens)" for p, n in dropped[:5])
    if not kept:
        raise ValueError(
            f"task {task.name!r}: every prompt is longer than rollout.vllm.max_prompt_tokens={max_tokens} "
            f"(rows {rows}, ...); raise rollout.vllm.max_prompt_tokens"
        )
    log.warning(
        "task %r: dropped %d of %d problems whose prompt is longer than rollout.vllm.max_prompt_tokens=%d (rows: %s%s)",
        task.name, len(dropped), len(problems), max_tokens, rows, ", ..." if len(dropped) > 5 else "",
    )
    return dataclasses.replace(task, problems=kept)
