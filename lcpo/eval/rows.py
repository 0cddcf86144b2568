"""Evaluation report rows: one :class:`EvalRow` per (model, task, mode, budget) cell, and the one way rows are
grouped.

Rows are typed so that the report, the plots, the acceptance bars and the training-time validation read the same
fields; ``to_dict`` gives the plain form stored in ``report.json`` (keys in this order) and in a sweep's
``summary.csv``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class EvalRow:
    """The metrics of one cell (:func:`lcpo.algo.metrics.group_metrics`), its share of truncated samples and
    every sample's length (for the length distribution and the length-budget correlation).

    ``data_source`` is the common ``data_source`` of the cell's problems (a verl file's), else the task's name;
    ``thinking_*`` count only the tokens before ``</think>`` (:mod:`lcpo.rollout.thinking`) and
    ``mean_answer_tokens`` the rest. These fields have defaults so that rows written before they existed still
    read back (NaN: not measured)."""

    model: str
    task: str
    data_source: str = field(default="", kw_only=True)
    mode: str
    budget: int
    n: int
    samples: int
    k: int
    accuracy: float
    pass_at_k: float
    mean_tokens: float
    length_std: float
    rel_error: float
    mean_abs_rel_error: float = field(default=math.nan, kw_only=True)
    over_budget_share: float
    thinking_mean_tokens: float = field(default=math.nan, kw_only=True)
    thinking_rel_error: float = field(default=math.nan, kw_only=True)
    thinking_mean_abs_rel_error: float = field(default=math.nan, kw_only=True)
    thinking_over_budget_share: float = field(default=math.nan, kw_only=True)
    mean_answer_tokens: float = field(default=math.nan, kw_only=True)
    truncated_share: float
    lengths: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The row as ``report.json`` stores it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvalRow":
        """A row read back from ``report.json`` or a cell file; keys that are not fields are ignored."""
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"a row lacks {', '.join(missing)}")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def group_rows(rows: Iterable[EvalRow], key: Callable[[EvalRow], K]) -> dict[K, list[EvalRow]]:
    """Rows bucketed by ``key``, buckets in first-seen order, rows sorted by budget inside each bucket."""
    groups: dict[K, list[EvalRow]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return {k: sorted(v, key=lambda r: r.budget) for k, v in groups.items()}


def table(rows: Sequence[EvalRow]) -> tuple[list[str], list[list[Any]]]:
    """``(columns, data)`` of a wandb table of ``rows``: every field but the per-sample lengths."""
    columns = [f.name for f in fields(EvalRow) if f.name != "lengths"]
    return columns, [[getattr(r, c) for c in columns] for r in rows]
