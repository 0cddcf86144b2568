"""Fixture rows in the shapes of the reference implementation's files (written by the tests, never copied).

``verl_row`` follows scripts/data/deepscaler_dataset.py and generate_{aime,gpqa,mmlu,lsat}.py; ``json_row`` the
deepscaler/data/test/*.json lists.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MATH_INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."
CHOICE_INSTRUCTION = "Let's think step by step and output the final answer (eg, A, B, C, D) within \\boxed{}."


def budget_sentence(num_tokens: int) -> str:
    if num_tokens == -1:
        return ""
    return f" Think for maximum {-num_tokens} tokens." if num_tokens < -1 else f" Think for {num_tokens} tokens."


def verl_row(question: str, answer: str, num_tokens: int, data_source: str = "", index: int = 0) -> dict:
    """A math row as the training script writes it: question, a space, instruction and budget sentence."""
    content = f"{question} {MATH_INSTRUCTION}{budget_sentence(num_tokens)}"
    return _wrap(content, answer, num_tokens, data_source, index)


def verl_choice_row(question: str, options: list[str], letter: str, num_tokens: int, source: str = "gpqa") -> dict:
    """A GPQA/MMLU row: options in the message, a letter as ground truth."""
    listed = "".join(f"{chr(65 + i)}. {text}\n" for i, text in enumerate(options))
    content = f"{question}\n\nOptions:\n{listed}\n\n{CHOICE_INSTRUCTION}{budget_sentence(num_tokens)}"
    return _wrap(content, letter, num_tokens, source, 0)


def _wrap(content: str, answer: str, num_tokens: int, data_source: str, index: int) -> dict:
    return {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": content}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": answer, "num_tokens": num_tokens},
        "extra_info": {"split": "train", "index": index},
    }


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def json_row(problem: str, answer: str) -> dict:
    return {"problem": problem, "solution": f"It is $\\boxed{{{answer}}}$.", "answer": answer}


def write_json_list(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps(rows, indent=2))
    return path
