"""Callbacks that turn training into artefacts people use: HF exports and tables of sample completions."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

SAMPLE_COLUMNS = ["step", "mode", "budget", "length", "correct", "reward", "prompt", "text"]


def export_policy(module: L.LightningModule, path: Path) -> Path:
    """Saves the policy and tokenizer with ``save_pretrained`` so transformers and vLLM can load the folder."""
    path.mkdir(parents=True, exist_ok=True)
    module.policy.save_pretrained(path)
    module.tokenizer.save_pretrained(path)
    return path


class HFExport(L.Callback):
    """Exports to ``<dir>/step_<k>`` every ``every_n_steps`` rollout steps and to ``final_dir`` at the end."""

    def __init__(self, dirpath: Path, final_dir: Path, every_n_steps: int = 0):
        self.dirpath, self.final_dir, self.every_n_steps = Path(dirpath), Path(final_dir), every_n_steps

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.rollout_step
        if self.every_n_steps and step % self.every_n_steps == 0:
            export_policy(pl_module, self.dirpath / f"step_{step}")

    @rank_zero_only
    def on_train_end(self, trainer, pl_module) -> None:
        export_policy(pl_module, self.final_dir)


class SampleTable(L.Callback):
    """Every ``every_n_steps`` rollout steps, appends a few completions to ``samples.jsonl`` and to wandb."""

    def __init__(self, path: Path, every_n_steps: int = 10):
        self.path, self.every_n_steps = Path(path), every_n_steps

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.rollout_step
        if not self.every_n_steps or (step - 1) % self.every_n_steps:
            return
        rows = [{"step": step, **s} for s in pl_module.last_samples]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_text("samples", columns=SAMPLE_COLUMNS, data=[[r[c] for c in SAMPLE_COLUMNS] for r in rows])


class RolloutProgressBar(RichProgressBar):
    """A rich bar over rollout steps (Lightning counts optimiser steps) showing reward, accuracy and length error."""

    @property
    def total_train_batches(self) -> int:
        return self.trainer.max_steps // self.trainer.lightning_module.algo.updates_per_step

    def _get_train_description(self, current_epoch: int) -> str:
        return "LCPO"

    def get_metrics(self, trainer, pl_module) -> dict:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items

