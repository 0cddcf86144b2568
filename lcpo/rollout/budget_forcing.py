"""s1 budget forcing (Muennighoff et al. 2025), the inference-only baseline LCPO is compared against.

For each response with token budget N:

1. Thinking: sample until the model ends its thinking (the end-of-thinking marker, ``</think>`` by default, or
   EOS). While budget is left, the marker/EOS is removed and ``wait_text`` ("Wait") appended, and sampling
   continues, up to ``max_waits`` times.
2. At the budget (or when the waits run out, or the model stops with no wait left), ``answer_cue`` is appended.
   The default cue closes thinking and opens a box, ``"\\n</think>\\n\\nThe final answer is: \\boxed{"``, because
   the grader only accepts a ``\\boxed{}`` after ``</think>``; the reference doc's cue "The final answer is:" is
   kept as the wording. With ``end_at_line`` the thinking cut at the budget first drops its unfinished last line,
   so the cue comes where the model itself ends lines (a model that only ever answered after a complete line is
   not judged on a format it never saw); the cue should then not open with a newline of its own.
3. Answer: at most ``answer_max_tokens`` (20) tokens, decoded greedily, stopping at EOS.

Token accounting (what :attr:`Completion.length` counts): every token of the returned response, which is every
token the model generated and kept plus every forced token. The budget N covers the thinking phase *including*
the forced tokens: model thinking tokens + each "Wait" + the answer cue together are at most N, so the thinking
phase proper is capped at ``N - len(cue)`` tokens (a forced "Wait" that would cross that cap is cut at it, like
model tokens). The answer tokens (EOS included if emitted) come on top. Hence, whenever thinking is forced to the
budget: ``length == N + answer_tokens``. It is shorter only when the waits run out before the budget. A removed
end marker or EOS is replaced, not kept, so it is not counted (it is not part of the response).

Continuations re-encode the prompt plus the response so far (no KV cache across waits), like the reference's
vLLM loop; rows are batched across prompts and samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from transformers import PreTrainedModel, StoppingCriteria, StoppingCriteriaList

from lcpo.algo.batching import left_pad
from lcpo.rollout.base import Completion, SamplingConfig
from lcpo.rollout.hf import HFEngine, generation_config

@dataclass
class ForcedCompletion(Completion):
    """A budget-forced response: ``waits`` forced continuations; its last ``answer_tokens`` tokens are the answer."""

    waits: int = 0
    answer_tokens: int = 0


@dataclass
class _Row:
    """One response under construction (one sample of one prompt)."""

    prompt_ids: list[int]
    think_limit: int
    tokens: list[int] = field(default_factory=list)
    waits: int = 0
    thinking: bool = True

    @property
    def room(self) -> int:
        return self.think_limit - len(self.tokens)


class BudgetForcingEngine(HFEngine):
    """A :class:`lcpo.rollout.base.RolloutEngine` that forces each response to think for its token budget.

    Budgets come per prompt through ``generate(..., budgets=[...])``; without them every prompt gets
    ``sampling.max_new_tokens``. Thinking samples with ``sampling``; the answer is greedy.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer,
        *,
        batch_size: int,
        max_waits: int,
        wait_text: str,
        answer_cue: str,
        answer_max_tokens: int,
        end_at_line: bool,
        end_think: str = "</think>",
        add_special_tokens: bool = False,
    ):
        if max_waits < 0 or answer_max_tokens < 1:
            raise ValueError(f"need max_waits >= 0 and answer_max_tokens >= 1; got {max_waits}, {answer_max_tokens}")
        super().__init__(model, tokenizer, batch_size=batch_size, add_special_tokens=add_special_tokens)
        self.max_waits = max_waits
        self.answer_max_tokens = answer_max_tokens
        self.end_think = end_think
        self.end_at_line = end_at_line
        self.wait_ids = tokenizer.encode(wait_text, add_special_tokens=False)
        self.cue_ids = tokenizer.encode(answer_cue, add_special_tokens=False)
        if not self.wait_ids:
            raise ValueError("wait_text must encode to at least one token")
        # Tokens to decode when looking for the marker: enough for one token per character, which covers a marker
        # the model spells out piece by piece even where the tokenizer also has it as one token.
        self._window = len(end_think) + 2

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        sampling: SamplingConfig,
        budgets: Sequence[int] | None = None,
        *,
        seed: int | None = None,
    ) -> list[list[ForcedCompletion]]:
        """``n`` budget-forced completions per prompt, in prompt order; ``budgets[i]`` is prompt ``i``'s budget."""
        if n < 1:
            raise ValueError(f"need at least one sample per prompt, got n={n}")
        budgets = [sampling.max_new_tokens] * len(prompts) if budgets is None else list(budgets)
        if len(budgets) != len(prompts):
            raise ValueError(f"got {len(budgets)} budgets for {len(prompts)} prompts")
        for budget in budgets:
            if budget <= len(self.cue_ids):
                raise ValueError(
                    f"budget {budget} leaves no room to think: the answer cue alone is {len(self.cue_ids)} tokens"
                )
        rows = []
        for prompt, budget in zip(prompts, budgets):
            prompt_ids = self.tokenizer.encode(prompt, add_special_tokens=self.add_special_tokens)
            rows.extend(_Row(prompt_ids, budget - len(self.cue_ids)) for _ in range(n))

        was_training = self.model.training
        self.model.eval()
        try:
            self._think(rows, sampling)
            answers = self._answer(rows)
        finally:
            self.model.train(was_training)

        eos_ids = self.eos_ids
        out = [
            ForcedCompletion(
                prompt_ids=row.prompt_ids,
                token_ids=row.tokens + answer,
                text=self.tokenizer.decode(row.tokens + answer, skip_special_tokens=True),
                finish_reason="eos" if answer and answer[-1] in eos_ids else "length",
                waits=row.waits,
                answer_tokens=len(answer),
            )
            for row, answer in zip(rows, answers)
        ]
        return [out[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _think(self, rows: list[_Row], sampling: SamplingConfig) -> None:
        """Runs the thinking phase of every row to its end, then appends the answer cue."""
        while active := [row for row in rows if row.thinking]:
            for start in range(0, len(active), self.batch_size):
                chunk = active[start : start + self.batch_size]
                for row, new in zip(chunk, self._continue(chunk, sampling)):
                    self._advance(row, new)
        for row in rows:
            if self.end_at_line and row.room <= 0:
                self._drop_unfinished_line(row.tokens)
            row.tokens.extend(self.cue_ids)

    def _drop_unfinished_line(self, tokens: list[int]) -> None:
        """Removes the tokens after the last newline (all of them when there is none)."""
        while tokens and not self._decode(tokens).endswith("\n"):
            tokens.pop()

    def _advance(self, row: _Row, new: list[int]) -> None:
        """Appends one continuation; an early stop becomes a "Wait" while waits and budget are left."""
        row.tokens.extend(new)
        stopped = self._strip_stop(row.tokens)
        if stopped and row.waits < self.max_waits and row.room > 0:
            row.tokens.extend(self.wait_ids[: row.room])
            row.waits += 1
        else:
            row.thinking = False
        if row.room <= 0:
            row.thinking = False

    def _strip_stop(self, tokens: list[int]) -> bool:
        """Removes a trailing EOS or end-of-thinking marker; True when there was one (the model stopped).

        The marker is removed with every token that holds part of it: trailing tokens are dropped until the
        decoded text ends before the marker starts (for a multi-token marker, all its pieces go).
        """
        if tokens and tokens[-1] in self.eos_ids:
            tokens.pop()
            return True
        window = tokens[-self._window :]
        start = self._decode(window).rfind(self.end_think)
        if start < 0:
            return False
        keep = len(window)
        while keep > 0 and len(self._decode(window[:keep])) > start:
            keep -= 1
        del tokens[len(tokens) - len(window) + keep :]
        return True

    def _decode(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode(list(tokens), skip_special_tokens=False)

    def _has_marker(self, tokens: Sequence[int]) -> bool:
        return self.end_think in self._decode(tokens[-self._window :])

    def _continue(self, rows: list[_Row], sampling: SamplingConfig) -> list[list[int]]:
        """One ``generate`` call continuing each row up to its room, EOS, or a newly emitted end marker."""
        input_ids, attention_mask = self._pad([row.prompt_ids + row.tokens for row in rows])
        stop = _ThinkingStop(self, input_ids.shape[1], [row.room for row in rows])
        sequences = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=generation_config(
                sampling, self.tokenizer.pad_token_id, self.eos_ids, max_new_tokens=max(row.room for row in rows)
            ),
            stopping_criteria=StoppingCriteriaList([stop]),
        )
        new_tokens = sequences[:, input_ids.shape[1] :].tolist()
        eos_ids = self.eos_ids
        out = []
        for i, tokens in enumerate(new_tokens):
            end = stop.ends[i] if stop.ends[i] is not None else len(tokens)
            end = next((j + 1 for j, t in enumerate(tokens[:end]) if t in eos_ids), end)
            out.append(tokens[:end])
        return out

    def _answer(self, rows: list[_Row]) -> list[list[int]]:
        """Greedy answers of at most ``answer_max_tokens`` after the cue, cut after the first EOS."""
        config = generation_config(
            SamplingConfig(temperature=0.0), self.tokenizer.pad_token_id, self.eos_ids, max_new_tokens=self.answer_max_tokens
        )
        eos_ids = self.eos_ids
        answers: list[list[int]] = []
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            input_ids, attention_mask = self._pad([row.prompt_ids + row.tokens for row in chunk])
            sequences = self.model.generate(
                input_ids=input_ids, attention_mask=attention_mask, generation_config=config
            )
            for tokens in sequences[:, input_ids.shape[1] :].tolist():
                end = next((j + 1 for j, t in enumerate(tokens) if t in eos_ids), len(tokens))
                answers.append(tokens[:end])
        return answers

    def _pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-pads token lists into ``input_ids`` and ``attention_mask`` on the model's device."""
        return left_pad(sequences, self.tokenizer.pad_token_id, next(self.model.parameters()).device)


class _ThinkingStop(StoppingCriteria):
    """Stops each row at its own room or when it emits the end-of-thinking marker; records where (``ends``).

    The marker is matched on decoded text, so a marker split over several tokens (a character-level tokenizer)
    is found as well as a single marker token; it must appear with the newest token, so an older marker in the
    context never triggers.
    """

    def __init__(self, engine: BudgetForcingEngine, start: int, rooms: list[int]):
        self.engine, self.start, self.rooms = engine, start, rooms
        self.ends: list[int | None] = [None] * len(rooms)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        generated = input_ids.shape[1] - self.start
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for i, tail in enumerate(input_ids[:, -(self.engine._window + 1) :].tolist()):
            if self.ends[i] is None and (
                generated >= self.rooms[i]
                or (self.engine._has_marker(tail) and not self.engine._has_marker(tail[:-1]))
            ):
                self.ends[i] = generated
            done[i] = self.ends[i] is not None
        return done
