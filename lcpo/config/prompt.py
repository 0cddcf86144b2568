"""The ``prompt`` group: the one place where the budget sentence and its surroundings are worded."""

from __future__ import annotations

from dataclasses import dataclass

from lcpo.algo.budgets import BudgetSpec, Mode


@dataclass
class PromptConfig:
    """How the user message is worded and wrapped; the defaults are the reference's wording.

    The user message is ``question``, ``instruction`` and the budget sentence of the prompt's mode (``exact`` or
    ``max``, with ``{budget}`` filled in; none for unbudgeted prompts), joined by ``separator``. The model sees
    ``chat_template(user message) + response_prefix`` (without the chat template when ``use_chat_template`` is off
    or the tokenizer has none).
    """

    instruction: str = "Let's think step by step and output the final answer within \\boxed{}."
    exact: str = "Think for {budget} tokens."
    max: str = "Think for maximum {budget} tokens."
    separator: str = " "
    use_chat_template: bool = True
    response_prefix: str = ""

    def __post_init__(self) -> None:
        for key in ("exact", "max"):
            if "{budget}" not in getattr(self, key):
                raise ValueError(f"prompt.{key} must contain '{{budget}}', got {getattr(self, key)!r}")

    def budget_sentence(self, spec: BudgetSpec) -> str:
        """The sentence that states ``spec``'s budget ("" for prompts without one)."""
        if spec.mode is Mode.NONE:
            return ""
        return (self.exact if spec.mode is Mode.EXACT else self.max).format(budget=spec.budget)

    def render(self, question: str, spec: BudgetSpec) -> str:
        """The user message: question, instruction, then the budget sentence (absent for ``Mode.NONE``)."""
        parts = [question.rstrip(), self.instruction, self.budget_sentence(spec)]
        return self.separator.join(p for p in parts if p)
