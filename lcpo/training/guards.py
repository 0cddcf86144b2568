"""Guards against updates that cannot help: a non-finite loss or gradient never reaches the weights, and a run
whose rollouts carry no learning signal says so.

:class:`StepGuard` sits at the optimiser step of the update: a step whose loss or gradient norm is NaN or infinite
is skipped, leaving weights and optimiser state as they were, and ``algo.max_skipped_steps`` skips in a row stop
the run with a message naming the step. :class:`LearningSignalWatch` reads each step's rollout metrics and warns once when
every response hit the generation cap, or when most groups have equal rewards (no advantage, so nothing trains)
for several steps in a row: a cap that truncates every completion gives every sample the same zero reward, and the
run would otherwise burn its budget looking healthy.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from lcpo.errors import LcpoError

log = logging.getLogger(__name__)


class NonFiniteUpdates(LcpoError):
    """Too many optimiser steps in a row had a non-finite loss or gradient."""


class StepGuard:
    """Skips optimiser steps whose loss or gradient is not finite; ``max_skipped`` skips in a row stop the run.

    ``watch`` each micro-batch loss, then call ``step`` where the update would call ``opt.step()`` and
    ``sched.step()``. The decision is taken over all ranks (any rank's non-finite value skips the step everywhere),
    so DDP replicas stay identical. The count of skips in a row is part of the checkpoint (``state_dict``).
    """

    def __init__(self, max_skipped: int):
        self.max_skipped = max_skipped
        self.in_a_row = 0
        self.skipped = 0  # since the last ``take_skipped``
        self._nonfinite_loss: torch.Tensor | None = None

    def watch(self, loss: torch.Tensor) -> None:
        """Records whether a micro-batch loss is finite (as a tensor: no device sync until the step)."""
        bad = ~torch.isfinite(loss.detach()).all()
        self._nonfinite_loss = bad if self._nonfinite_loss is None else self._nonfinite_loss | bad

    def step(self, module: L.LightningModule, opt: Any, sched: Any, grad_norm: torch.Tensor) -> bool:
        """Steps ``opt`` and ``sched`` if the watched losses and ``grad_norm`` are finite; returns whether it did.

        A skipped step still calls ``opt.step()`` with every gradient set to None: AdamW leaves parameters without
        a gradient (and their state) untouched, and Lightning, which counts optimiser steps through that call,
        stays on the step the rollout stream expects. The scheduler does not advance.
        """
        bad = ~torch.isfinite(grad_norm.detach())
        if self._nonfinite_loss is not None:
            bad = bad | self._nonfinite_loss
        self._nonfinite_loss = None
        skip = module.trainer.strategy.reduce_boolean_decision(bool(bad), all=False)
        if not skip:
            opt.step()
            sched.step()
            self.in_a_row = 0
            return True
        where = f"optimiser step {module.global_step + 1} (rollout step {module.rollout_step + 1})"
        opt.zero_grad(set_to_none=True)
        opt.step()
        self.in_a_row += 1
        self.skipped += 1
        if self.in_a_row >= self.max_skipped:
            raise NonFiniteUpdates(
                f"stopping at {where}: {self.in_a_row} optimiser steps in a row had a non-finite loss or gradient "
                f"(algo.max_skipped_steps={self.max_skipped}); lower algo.lr, check algo.grad_clip and the "
                "rewards, or resume from an earlier checkpoint"
            )
        log.warning("skipped %s: non-finite loss or gradient (%d in a row)", where, self.in_a_row)
        return False

    def take_skipped(self) -> int:
        """Skipped steps since the last call (one rollout step's count, for ``train/skipped_steps``)."""
        count, self.skipped = self.skipped, 0
        return count

    def state_dict(self) -> dict[str, int]:
        return {"in_a_row": self.in_a_row}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.in_a_row = int(state.get("in_a_row", 0))


class LearningSignalWatch(L.Callback):
    """Warns once when every response of a rollout step hit the generation cap (``max_new_tokens``), and once when
    more than ``threshold`` of the groups had equal rewards for ``patience`` steps in a row.

    Reads ``rollout/truncated_share`` and ``rollout/zero_signal_share`` (reduced over ranks) as the module logs them.
    """

    def __init__(self, max_new_tokens: int, threshold: float, patience: int):
        self.max_new_tokens, self.threshold, self.patience = max_new_tokens, threshold, patience
        self.streak = 0
        self.warned_truncated = self.warned_zero_signal = False

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        metrics = trainer.callback_metrics
        step = pl_module.rollout_step
        truncated = metrics.get("rollout/truncated_share")
        if truncated is not None and float(truncated) >= 1.0 and not self.warned_truncated:
            self.warned_truncated = True
            log.warning(
                "NO LEARNING SIGNAL? every response of rollout step %d hit rollout.max_new_tokens=%d: truncated "
                "answers are scored as unfinished, so rewards barely differ within a group. Raise "
                "rollout.max_new_tokens or lower the budgets.",
                step, self.max_new_tokens,
            )
        zero = metrics.get("rollout/zero_signal_share")
        if zero is None:
            return
        self.streak = self.streak + 1 if float(zero) > self.threshold else 0
        if self.streak >= self.patience and not self.warned_zero_signal:
            self.warned_zero_signal = True
            log.warning(
                "NO LEARNING SIGNAL? for %d rollout steps up to step %d, more than %.0f%% of the groups "
                "(trainer.warn_zero_signal=%s) had the same reward for every sample: their advantages are zero and "
                "they do not train. Check rollout.max_new_tokens, the reward and the task's difficulty for this model.",
                self.streak, step, 100 * self.threshold, self.threshold,
            )
