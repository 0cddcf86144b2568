"""Turns a problem and its budget into the exact string the policy is conditioned on, and batches of those."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lcpo.algo.budgets import BudgetSpec
from lcpo.config.prompt import PromptConfig
from lcpo.tasks.base import Problem


@dataclass
class PromptBuilder:
    """``chat_template(user message) + response_prefix`` when the tokenizer has a chat template and the config
    asks for it, else ``user message + response_prefix``; the user message is ``PromptConfig.render``'s."""

    config: PromptConfig
    tokenizer: Any

    def __call__(self, problem: Problem, spec: BudgetSpec) -> str:
        user = self.config.render(problem.question, spec)
        if self.config.use_chat_template and getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = user
        return text + self.config.response_prefix


@dataclass
class PromptBatch:
    """The prompts of one rollout step on one rank, with the problems and budget specs they were built from."""

    step: int
    problems: list[Problem]
    specs: list[BudgetSpec]
    prompts: list[str]
