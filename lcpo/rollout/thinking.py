"""Thinking length: how many of a response's tokens come before ``</think>``.

The paper's length n_y counts every response token, the answer included. Users who want the budget to bound the
thinking alone need that count as its own quantity: ``thinking`` is the number of leading response tokens whose
text lies entirely before the first ``</think>``; ``answer`` is the rest (the marker, the answer and EOS). A
response without ``</think>`` is all thinking (it never stopped thinking), so thinking + answer = total always.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from lcpo.algo.answers import THINK_END
from lcpo.rollout.base import Completion


@dataclass
class ThinkingCounter:
    """Counts a completion's thinking tokens with ``tokenizer``.

    When the marker is one token of the vocabulary (DeepSeek-R1-style tokenizers), the count is the position of
    that token. Otherwise (a marker spelled over several tokens, e.g. a character tokenizer) it is found by a
    binary search on decoded prefixes: O(log n) decodes, not one per token.
    """

    tokenizer: Any
    marker: str = THINK_END
    _marker_id: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        ids = self.tokenizer(self.marker, add_special_tokens=False)["input_ids"]
        if len(ids) == 1 and self._decode(ids) == self.marker:
            self._marker_id = ids[0]

    def __call__(self, completion: Completion) -> int:
        return self.count(completion.token_ids, completion.text)

    def count(self, token_ids: Sequence[int], text: str) -> int:
        """Thinking tokens of a response with ``token_ids`` whose decoded text is ``text``."""
        start = text.find(self.marker)
        if start < 0:
            return len(token_ids)
        if self._marker_id is not None and self._marker_id in token_ids:
            return list(token_ids).index(self._marker_id)
        low, high = 0, len(token_ids)  # the largest prefix whose text ends at or before the marker's start
        while low < high:
            mid = (low + high + 1) // 2
            if len(self._decode(token_ids[:mid])) <= start:
                low = mid
            else:
                high = mid - 1
        return low

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)
