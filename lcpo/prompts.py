"""Turns a problem and its budget into the exact string the policy is conditioned on."""

from __future__ import annotations

from dataclasses import dataclass

from lcpo.budgets import BudgetSpec, PromptTemplate
from lcpo.tasks.base import Problem


@dataclass
class PromptBuilder:
    """``chat_template(user message) + response_prefix`` when the tokenizer has a chat template and
    ``use_chat_template`` is on, else ``user message + response_prefix``."""

    template: PromptTemplate
    tokenizer: object
    use_chat_template: bool = True
    response_prefix: str = ""

    def __call__(self, problem: Problem, spec: BudgetSpec) -> str:
        user = self.template.render(problem.question, spec)
        if self.use_chat_template and getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = user
        return text + self.response_prefix
