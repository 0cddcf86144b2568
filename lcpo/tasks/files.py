"""Tasks read from files: math problems and multiple-choice questions in JSONL, JSON (a list of rows) or parquet.

Row formats (one JSON object per line, one element of a JSON list, or one parquet row):

- math: ``problem`` (or its alias ``question``), ``answer``, optional ``solution`` (the reference's test lists);
- choice: ``question`` (or ``problem``), ``choices`` (a list of option texts), ``answer`` (the gold letter);
- verl: the reference's training and evaluation rows (``prompt``, ``reward_model``, ...; see ``lcpo.tasks.verl``).

``kind="auto"`` decides per row: a row with ``choices`` is a choice row; a verl row whose ground truth is a letter
and whose message lists options is one too. Every problem keeps its ``data_source`` (the row's, else the file
stem) in ``meta``. A bad row stops loading with a
:class:`TaskFileError` naming the file, the row (1-based line for JSONL, 0-based row index for parquet) and the
reason, because a silently dropped row changes what an accuracy number means. ``skip_bad_rows=True`` keeps going
but reports how many rows were skipped and why (logged and kept in ``FileTask.skipped``).
"""

from __future__ import annotations

import json
import logging
import random
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from lcpo.tasks.base import Problem
from lcpo.tasks.verl import VerlRowError, is_verl_row, verl_problem

log = logging.getLogger(__name__)

KINDS = ("auto", "math", "choice")
#: The first bytes of every parquet file.
PARQUET_MAGIC = b"PAR1"
LETTERS = string.ascii_uppercase


class TaskFileError(ValueError):
    """A task file that cannot be read, or a row that is not a valid problem."""


@dataclass(frozen=True)
class ChoiceFormat:
    """How a multiple-choice question is shown to the model: the only place that wording lives.

    Rendered as ``question``, a blank line, ``header``, one ``line`` per option, a blank line, ``instruction``.
    """

    header: str = "Options:"
    line: str = "{letter}. {text}"
    instruction: str = "Output the letter of the correct option within \\boxed{}."

    def render(self, question: str, choices: Sequence[str]) -> str:
        options = "\n".join(self.line.format(letter=LETTERS[i], text=text) for i, text in enumerate(choices))
        return f"{question.rstrip()}\n\n{self.header}\n{options}\n\n{self.instruction}"


@dataclass
class FileTask:
    """A :class:`lcpo.tasks.base.Task` over the problems of one file, in file order.

    ``skipped`` lists ``(row, reason)`` for rows dropped under ``skip_bad_rows`` (empty otherwise).
    """

    name: str
    problems: list[Problem]
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.problems:
            raise TaskFileError(f"task {self.name!r} has no problems")

    def __len__(self) -> int:
        return len(self.problems)

    def sample(self, rng: random.Random) -> Problem:
        return rng.choice(self.problems)

    def eval_set(self, n: int | None, seed: int) -> list[Problem]:
        """The first ``n`` problems in file order (all when None): a file is already a fixed list, so ``seed``
        does not reorder it and reports from different seeds compare the same problems."""
        return list(self.problems if n is None else self.problems[:n])


def load_file_task(
    path: str | Path,
    kind: str = "auto",
    limit: int | None = None,
    *,
    name: str | None = None,
    choice_format: ChoiceFormat = ChoiceFormat(),
    skip_bad_rows: bool = False,
) -> FileTask:
    """Loads a ``.jsonl``, ``.json`` or ``.parquet`` task file (the format follows the suffix).

    ``limit`` keeps the first valid problems only; ``name`` defaults to the file stem.
    """
    path = Path(path).expanduser()
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    if not path.is_file():
        raise TaskFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows, where = _jsonl_rows(path), "line"
    elif suffix == ".json":
        rows, where = _json_list_rows(path), "element"
    elif suffix == ".parquet":
        rows, where = _parquet_rows(path), "row"
    else:
        raise TaskFileError(f"{path}: unsupported file type {suffix!r} (expected .jsonl, .json or .parquet)")

    problems: list[Problem] = []
    skipped: list[tuple[int, str]] = []
    for index, row in rows:
        try:
            if isinstance(row, _BadRow):
                raise TaskFileError(row.reason)
            problems.append(_problem(row, kind, choice_format, f"{path.stem}-{index}", (str(path), index)))
        except TaskFileError as err:
            if not skip_bad_rows:
                raise TaskFileError(f"{path}, {where} {index}: {err}") from None
            skipped.append((index, str(err)))
        if limit is not None and len(problems) >= limit:
            break
    if skipped:
        log.warning("%s: skipped %d bad rows (first: %s %d: %s)", path, len(skipped), where, *skipped[0])
    if not problems:
        note = f" ({len(skipped)} bad rows skipped)" if skipped else ""
        raise TaskFileError(f"{path}: no problems in the file{note}")
    return FileTask(name=name or path.stem, problems=problems, skipped=skipped)


@dataclass(frozen=True)
class _BadRow:
    """A row that could not even be decoded; carried through so it is reported with its position."""

    reason: str


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict | _BadRow]]:
    with path.open("rb") as handle:  # bytes, so that a bad encoding is reported with its line too
        if handle.read(4) == PARQUET_MAGIC:
            raise TaskFileError(f"{path}: this is a parquet file; name it .parquet (and use task=parquet)")
        handle.seek(0)
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                yield number, _BadRow(f"not UTF-8 ({err.reason} at byte {err.start})")
                continue
            except json.JSONDecodeError as err:
                yield number, _BadRow(f"invalid JSON ({err.msg} at column {err.colno})")
                continue
            if not isinstance(row, dict):
                row = _BadRow(f"expected a JSON object, got {type(row).__name__}")
            yield number, row


def _json_list_rows(path: Path) -> Iterator[tuple[int, dict | _BadRow]]:
    """The elements of a JSON list (the reference's test sets), numbered from 0 as a reader indexes them."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TaskFileError(f"{path}: not a JSON file ({err}); one object per line is .jsonl") from None
    if not isinstance(data, list):
        raise TaskFileError(f"{path}: expected a JSON list of rows, got {type(data).__name__}")
    for index, row in enumerate(data):
        yield index, row if isinstance(row, dict) else _BadRow(f"expected a JSON object, got {type(row).__name__}")


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several unrelated types for unreadable files
        raise TaskFileError(f"{path}: not a readable parquet file ({err})") from None
    yield from enumerate(table.to_pylist())


def _problem(row: dict[str, Any], kind: str, fmt: ChoiceFormat, problem_id: str, source: tuple[str, int]) -> Problem:
    meta: dict[str, Any] = {"source": source[0], "row": source[1], "data_source": Path(source[0]).stem}
    if is_verl_row(row):
        try:
            return verl_problem(row, problem_id, meta, fmt.instruction)
        except VerlRowError as err:
            raise TaskFileError(str(err)) from None
    if row.get("data_source"):
        meta["data_source"] = str(row["data_source"])
    is_choice = kind == "choice" or (kind == "auto" and row.get("choices") is not None)
    question = _text(row, ("question", "problem") if is_choice else ("problem", "question"))
    answer = _text(row, ("answer",))
    if not is_choice:
        if row.get("solution") is not None:
            meta["solution"] = str(row["solution"])
        return Problem(id=problem_id, question=question, answer=answer, meta=meta)
    choices = row.get("choices")
    if not isinstance(choices, (list, tuple)) or len(choices) < 2:
        raise TaskFileError("field 'choices' must be a list of at least two options")
    if len(choices) > len(LETTERS):
        raise TaskFileError(f"field 'choices' has {len(choices)} options; at most {len(LETTERS)} are supported")
    texts = tuple(str(c).strip() for c in choices)
    if not all(texts):
        raise TaskFileError("field 'choices' has an empty option")
    letter = answer.upper()
    if letter not in LETTERS[: len(texts)]:
        raise TaskFileError(f"answer {answer!r} is not among the choice letters {LETTERS[0]}-{LETTERS[len(texts) - 1]}")
    meta["raw_question"] = question
    return Problem(id=problem_id, question=fmt.render(question, texts), answer=letter, choices=texts, meta=meta)


def _text(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The first present field of ``keys`` as stripped text; numbers are accepted (answers are often ints)."""
    for key in keys:
        if row.get(key) is not None:
            value = row[key]
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise TaskFileError(f"field {key!r} must be text or a number, got {type(value).__name__}")
            text = str(value).strip()
            if not text:
                raise TaskFileError(f"field {key!r} is empty")
            return text
    raise TaskFileError(f"missing field {' or '.join(repr(k) for k in keys)}")
