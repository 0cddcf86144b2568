"""Response tokens that the policy gradient leaves out.

A task may name character spans of a response that are bookkeeping rather than decisions (the synthetic task's
countdown: :meth:`lcpo.tasks.synthetic.SyntheticTask.bookkeeping_spans`). The policy still writes them and conditions
on them; the update gives them no policy gradient, so a reward cannot be earned by rewriting the bookkeeping, only
by the decisions taken on it. The KL term still covers them, which holds them to what the reference model writes:
left out of the KL term too, the tiny model's count drifted away from the arithmetic within one stage
(docs/measurements.md). This module finds the tokens whose text lies inside those spans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Callable, Sequence

from lcpo.rollout.base import Completion


def tokens_within(ends: Sequence[int], spans: Sequence[tuple[int, int]]) -> list[int]:
    """Indices of the tokens whose text (token ``i`` covers characters ``ends[i-1]..ends[i]``) is non-empty and lies
    inside one of ``spans`` (``(start, end)`` character offsets); a token that straddles a span's edge stays in."""
    out, start = [], 0
    for i, end in enumerate(ends):
        if end > start and any(a <= start and end <= b for a, b in spans):
            out.append(i)
        start = end
    return out


@dataclass
class BookkeepingTokens:
    """For a completion: the indices of its tokens that ``spans`` (a task's ``bookkeeping_spans``) marks, found with
    ``tokenizer``'s decoding of each token."""

    tokenizer: Any
    spans: Callable[[str], list[tuple[int, int]]]
    #: Each token id's text decoded alone, kept: the collector asks for every response token of every step.
    _pieces: dict[int, str] = field(default_factory=dict, init=False, repr=False)

    def __call__(self, completion: Completion) -> list[int]:
        spans = self.spans(completion.text)
        return tokens_within(self.token_ends(completion.token_ids, completion.text), spans) if spans else []

    def token_ends(self, token_ids: Sequence[int], text: str) -> list[int]:
        """Where each token's text ends in ``text``: from each token decoded alone where that spells ``text`` (a
        character or byte-level tokenizer on plain text), else from decoding each prefix, which is quadratic in the
        response's length (the synthetic task, the one task with bookkeeping, writes responses of a few hundred
        tokens)."""
        pieces = [self._piece(t) for t in token_ids]
        if "".join(pieces) == text:
            return list(accumulate(len(p) for p in pieces))
        return [len(self._decode(token_ids[: i + 1])) for i in range(len(token_ids))]

    def _piece(self, token_id: int) -> str:
        piece = self._pieces.get(token_id)
        if piece is None:
            piece = self._pieces[token_id] = self._decode([token_id])
        return piece

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)
