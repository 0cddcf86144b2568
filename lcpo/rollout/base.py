"""The rollout protocol: prompts in, G completions per prompt out, with token ids, lengths and finish reasons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import torch

from lcpo.config.rollout import SamplingConfig


@dataclass
class Completion:
    """One generated response.

    ``token_ids`` holds every generated token, EOS included, so ``length`` is the reference's n_y.
    ``finish_reason`` is "eos" when the model stopped by itself, "length" when cut at the cap.
    ``logprobs`` are the sampling log-probs of ``token_ids`` where the engine gets them cheaply (None otherwise).
    """

    prompt_ids: list[int]
    token_ids: list[int]
    text: str
    finish_reason: str
    logprobs: list[float] | None = None

    @property
    def length(self) -> int:
        return len(self.token_ids)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class RolloutEngine(Protocol):
    """Generates ``n`` completions for each prompt with the current policy weights.

    The lifecycle in training: :meth:`start` once the process group exists (the Lightning ``setup`` hook),
    :meth:`sync_weights` at train start (so a resumed run samples from the restored weights) and after each update,
    :meth:`offload` while the trainer updates, :meth:`close` when done (evaluation builds one engine per model).
    """

    def start(self, device: torch.device) -> None:
        """Claims resources on ``device`` (nothing for HF generate, which runs the training module itself)."""
        ...

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        sampling: SamplingConfig,
        *,
        budgets: Sequence[int] | None = None,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        """Returns one list of ``n`` completions per prompt, in prompt order.

        ``budgets`` holds each prompt's thinking budget in tokens: an engine that enforces the budget by decoding
        (s1 budget forcing) needs it; the others ignore it (a policy learns its budget from the prompt). ``seed``
        seeds this call: engines that seed each request (vLLM) derive one seed per row from it
        (:func:`lcpo.algo.seeds.row_seed`); HF generate draws from torch's global generator, which the caller seeds.
        """
        ...

    def offload(self) -> None:
        """Frees the accelerator memory the engine holds while the trainer updates (vLLM sleep mode)."""
        ...

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Makes the engine sample from ``model``'s current weights (free for HF generate, a copy for vLLM)."""
        ...

    def close(self) -> None:
        """Releases everything the engine holds; it is not used afterwards."""
        ...

