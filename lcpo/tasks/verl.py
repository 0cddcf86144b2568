"""Rows in the reference implementation's verl layout, read as they are.

A verl row (cmu-l3/l1, ``scripts/data/deepscaler_dataset.py`` and ``generate_{aime,gpqa,lsat,mmlu}.py``) is::

    {"data_source": "gpqa", "prompt": [{"role": "user", "content": "<question> Let's think step by step and
     output the final answer within \\boxed{}. Think for 1234 tokens."}], "ability": "math",
     "reward_model": {"style": "rule", "ground_truth": "42", "num_tokens": 1234}, "extra_info": {...}}

Read: the last user message of ``prompt`` (the question, with the reference's instruction and budget sentence
stripped so that :class:`lcpo.config.PromptConfig` words them once), ``reward_model.ground_truth`` (the answer),
``reward_model.num_tokens`` (the row's budget in the reference's signed encoding: > 0 exact, < -1 max, -1 none;
kept as ``meta["budget"]`` for ``budget=from_file``) and ``data_source`` (kept as ``meta["data_source"]``; the
file's stem when empty, as in the reference's training file). ``ability``, ``reward_model.style`` and
``extra_info`` are ignored. A letter as ground truth with options in the message makes a multiple-choice problem.
"""

from __future__ import annotations

import re
from typing import Any

from lcpo.algo.budgets import BudgetSpec
from lcpo.tasks.base import Problem
from lcpo.tasks.choices import is_letter, parse_options

#: The columns that mark a verl row.
VERL_COLUMNS = ("prompt", "reward_model")

#: The reference's instruction (its math and its multiple-choice wording) with an optional budget sentence, at the
#: end of the user message; a budget sentence alone is stripped too.
_TAIL = re.compile(
    r"\s*(?:Let's think step by step and output the final answer(?: \(eg, [A-Z, ]+\))? within \\boxed\{\}\.)?"
    r"(?:\s*Think for (?P<max>maximum )?(?P<n>\d+) tokens\.)?\s*$"
)


class VerlRowError(ValueError):
    """A verl row that is not a valid problem; the message names the field."""


def is_verl_row(row: dict[str, Any]) -> bool:
    """Whether ``row`` has the reference's columns (``prompt`` and ``reward_model``)."""
    return all(key in row for key in VERL_COLUMNS)


def verl_problem(row: dict[str, Any], problem_id: str, meta: dict[str, Any], choice_instruction: str) -> Problem:
    """The :class:`Problem` of one verl row; ``meta`` (source file and row) is extended with the row's
    ``data_source``, ``budget`` and, for multiple choice, its parsed options."""
    message = _user_message(row.get("prompt"))
    reward_model = row.get("reward_model")
    if not isinstance(reward_model, dict):
        raise VerlRowError(f"field 'reward_model' must be an object, got {type(reward_model).__name__}")
    answer = _ground_truth(reward_model.get("ground_truth"))
    question, stated = strip_instruction(message)
    if not question:
        raise VerlRowError("field 'prompt': the user message holds no question besides the instruction")
    budget = _budget(reward_model.get("num_tokens"), stated)
    source = row.get("data_source")
    meta = {**meta, "data_source": str(source) if source else meta.get("data_source", "")}
    if budget is not None:
        meta["budget"] = budget
    options = parse_options(question) if is_letter(answer) else None
    if options is None:
        return Problem(id=problem_id, question=question, answer=answer, meta=meta)
    letter = answer.upper()
    if letter not in "".join(chr(ord("A") + i) for i in range(len(options))):
        raise VerlRowError(
            f"field 'reward_model.ground_truth': {answer!r} is not among the {len(options)} options in the message"
        )
    return Problem(
        id=problem_id, question=f"{question}\n\n{choice_instruction}", answer=letter, choices=options,
        meta=meta | {"raw_question": question},
    )


def strip_instruction(message: str) -> tuple[str, BudgetSpec | None]:
    """``message`` without the reference's trailing instruction and budget sentence, and the budget that sentence
    stated (None when it had none)."""
    match = _TAIL.search(message)
    assert match is not None  # every part of the pattern is optional, so it matches at the end of any text
    stated = None
    if match.group("n") is not None:
        n = int(match.group("n"))
        stated = BudgetSpec("max" if match.group("max") else "exact", n) if n > 0 else None
    return message[: match.start()].strip(), stated


def _user_message(prompt: Any) -> str:
    if not isinstance(prompt, (list, tuple)) or not prompt:
        raise VerlRowError("field 'prompt' must be a non-empty list of chat messages")
    users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise VerlRowError("field 'prompt' has no message with role 'user'")
    content = users[-1].get("content")
    if not isinstance(content, str) or not content.strip():
        raise VerlRowError("field 'prompt': the user message has no text content")
    return content


def _ground_truth(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 1:  # some verl writers keep a one-element list
        value = value[0]
    if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise VerlRowError(f"field 'reward_model.ground_truth' must be text or a number, got {value!r}")
    text = str(value).strip()
    if not text:
        raise VerlRowError("field 'reward_model.ground_truth' is empty")
    return text


def _budget(value: Any, stated: BudgetSpec | None) -> BudgetSpec | None:
    """The row's budget from ``reward_model.num_tokens`` (None when the field is absent), checked against the
    budget sentence of the message: a file whose text and data disagree would train on one and reward the other."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise VerlRowError(f"field 'reward_model.num_tokens' must be an integer, got {value!r}")
    try:
        spec = BudgetSpec.from_signed(int(value))
    except ValueError as err:
        raise VerlRowError(f"field 'reward_model.num_tokens': {err}") from None
    if stated is not None and stated != spec:
        raise VerlRowError(
            f"field 'reward_model.num_tokens' is {int(value)} but the message says "
            f"{stated.mode} {stated.budget} tokens"
        )
    return spec


def row_budget(problem: Problem) -> BudgetSpec:
    """The budget a problem's file row carries (``budget=from_file``)."""
    spec = problem.meta.get("budget")
    if not isinstance(spec, BudgetSpec):
        raise ValueError(f"budget=from_file: {_where(problem)} has no budget (reward_model.num_tokens)")
    return spec


def check_row_budgets(problems: list[Problem], low: int, high: int) -> None:
    """Every problem carries a budget inside ``[low, high]`` (``budget.low``/``budget.high`` under
    ``budget=from_file``, which set the per-quarter metrics and validation budgets): checked before training starts,
    so a file without budgets fails at once rather than at the step that first draws a bad row."""
    for problem in problems:
        spec = row_budget(problem)
        if spec.budget is not None and not low <= spec.budget <= high:
            raise ValueError(
                f"budget=from_file: {_where(problem)} asks for {spec.budget} tokens, outside "
                f"[budget.low={low}, budget.high={high}]; widen budget.low/budget.high"
            )


def _where(problem: Problem) -> str:
    source, row = problem.meta.get("source"), problem.meta.get("row")
    return f"{source}, row {row}" if source is not None else f"problem {problem.id}"
