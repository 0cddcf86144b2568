"""A loud warning when a run's first rollouts never close their thinking.

Under ``task.require_think`` the grader only reads an answer after ``</think>``. A model that never writes it (a
model that does not think, a chat template or prompt that already closed the thinking, a tokenizer that decodes the
marker away) earns no correctness reward at all: the run trains on the length term alone and looks healthy.
"""

from __future__ import annotations

import logging

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)


class ThinkWatch(L.Callback):
    """Warns once when no response of each of the first ``steps`` rollout steps held ``</think>``.

    Reads ``rollout/no_think_share`` (reduced over ranks) as the module logs it.
    """

    def __init__(self, steps: int = 3):
        self.steps = steps
        self.seen = 0

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        share = trainer.callback_metrics.get("rollout/no_think_share")
        if share is None or self.seen >= self.steps:
            return
        if float(share) < 1.0:  # a response closed its thinking: the grader can read answers
            self.seen = self.steps
            return
        self.seen += 1
        if self.seen == self.steps:
            log.warning(
                "NO </think> IN ANY RESPONSE of the first %d rollout steps: with task.require_think=true the grader "
                "only reads an answer after </think>, so no response can earn the correctness reward. Set "
                "task.require_think=false for a model that does not think, or check the prompt (prompt.*) and the "
                "tokenizer (does decoding keep </think>?).",
                self.steps,
            )
