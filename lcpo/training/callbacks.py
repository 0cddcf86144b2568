"""Callbacks that turn training into artefacts people use and things to watch: HF exports, tables of sample
completions, a progress bar over rollout steps, and a periodic budget-grid validation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from lcpo.config import EvalGrid, PromptConfig, RolloutConfig
from lcpo.algo.metrics import pearson
from lcpo.eval.plan import EvalTask
from lcpo.eval.report import write_report
from lcpo.eval.rows import EvalRow, group_rows, table
from lcpo.eval.run import evaluate_engine
from lcpo.eval.store import CellStore
from lcpo.models.load import save_policy
from lcpo.models.meta import ModelMeta
from lcpo.models.sharding import full_state_dict

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = [
    "step", "mode", "budget", "length", "thinking_tokens", "answer_tokens", "correct", "reward", "prompt", "text",
]


def export_policy(module: L.LightningModule, path: Path, dtype: str) -> Path:
    """Saves the policy (weights in ``dtype``) and tokenizer with ``save_pretrained`` so transformers and vLLM can
    load the folder.

    Every rank calls it: a sharded policy is gathered whole first (a collective), then rank 0 writes.
    """
    state = full_state_dict(module.policy)
    if module.trainer.is_global_zero:
        save_policy(module.policy, module.tokenizer, path, dtype, state)
    return path


class HFExport(L.Callback):
    """Exports the policy and tokenizer in transformers format (for transformers and vLLM), with weights in ``dtype``
    (``model.export_dtype``), to ``<dir>/step_<k>`` every ``every_n_steps`` rollout steps and to ``final_dir`` at the
    end; each folder carries ``meta`` (``lcpo.json``: how evaluation meets the model as trained)."""

    def __init__(self, dirpath: Path, final_dir: Path, every_n_steps: int, dtype: str, meta: ModelMeta | None):
        self.dirpath, self.final_dir, self.every_n_steps = Path(dirpath), Path(final_dir), every_n_steps
        self.dtype, self.meta = dtype, meta

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.rollout_step
        if self.every_n_steps and step % self.every_n_steps == 0:
            self._export(pl_module, self.dirpath / f"step_{step}")

    def on_train_end(self, trainer, pl_module) -> None:
        self._export(pl_module, self.final_dir)

    def _export(self, pl_module: L.LightningModule, path: Path) -> None:
        export_policy(pl_module, path, self.dtype)
        if self.meta is not None and pl_module.trainer.is_global_zero:
            self.meta.write(path)


class SampleTable(L.Callback):
    """Every ``every_n_steps`` rollout steps, appends a few completions to ``samples.jsonl`` and to wandb.

    At the start of a run, rows of steps after the one it starts from are dropped: a resumed run redoes the steps
    after its checkpoint, so the rows written for them before the interruption (and a line cut short by it) go.
    """

    def __init__(self, path: Path, every_n_steps: int):
        self.path, self.every_n_steps = Path(path), every_n_steps

    @rank_zero_only
    def on_train_start(self, trainer, pl_module) -> None:
        if not self.path.is_file():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if _keep_row(line, pl_module.rollout_step)]
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text("".join(kept))
        partial.replace(self.path)

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


def _keep_row(line: str, last_step: int) -> bool:
    """Whether a ``samples.jsonl`` line is complete and belongs to a step up to ``last_step``."""
    try:
        return line.endswith("\n") and int(json.loads(line)["step"]) <= last_step
    except (ValueError, KeyError, TypeError):
        return False


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


class GridValidation(L.Callback):
    """Every ``every_n_steps`` rollout steps, evaluates the live policy over a small budget grid with the training
    engine (so a vLLM engine is reused, with the weights it was just given) and reports how well it follows its
    budgets: scalars per mode and budget, the length-vs-budget and accuracy-vs-tokens plots and a table in wandb,
    and the same files under ``<dir>/step_<k>/`` for runs without wandb.

    Every rank evaluates (the same grid, the same seeds), because generation may need them all: a sharded policy is
    gathered from every rank, and a tensor-parallel vLLM group generates together; rank 0 writes and logs. Each
    finished cell is kept under ``<dir>/step_<k>/cells``: a resumed run that comes back to a validated step (the
    weights are the same: resume is exact) loads those cells instead of sampling them again, on every rank (rank 0
    says which).
    """

    def __init__(
        self,
        task: EvalTask,
        grid: EvalGrid,
        rollout: RolloutConfig,
        prompt: PromptConfig,
        dirpath: Path,
        every_n_steps: int,
    ):
        self.task, self.grid, self.rollout, self.prompt = task, grid, rollout, prompt
        self.dirpath, self.every_n_steps = Path(dirpath), every_n_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = pl_module.rollout_step
        if not self.every_n_steps or step % self.every_n_steps:
            return
        store = CellStore(self.dirpath / f"step_{step}") if trainer.is_global_zero else None
        done = trainer.strategy.broadcast(store.finished() if store else None, src=0)
        rows = evaluate_engine(
            pl_module.collector.engine, pl_module.tokenizer, "policy", [self.task], self.grid,
            rollout=self.rollout, prompt=self.prompt, store=store, done=done,
        )
        if trainer.is_global_zero:
            self._report(trainer, rows, step)

    def _report(self, trainer, rows: list[EvalRow], step: int) -> None:
        paths = write_report(rows, self.dirpath / f"step_{step}")
        scalars = validation_scalars(rows)
        log.info("step %d validation: %s", step, validation_line(scalars))
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=step)
            if isinstance(logger, WandbLogger):
                columns, data = table(rows)
                logger.log_table("val/table", columns=columns, data=data)
                logger.log_image("val/plots", images=[str(paths[n]) for n in VALIDATION_PLOTS], caption=list(VALIDATION_PLOTS))


#: The plots validation shows in wandb (``write_report`` writes them all under the run folder).
VALIDATION_PLOTS = ("length_vs_budget.png", "accuracy_vs_tokens.png")


def validation_line(scalars: dict[str, float]) -> str:
    """The grid-level validation scalars of each mode on one line (``exact: accuracy 0.50, |rel error| 0.31``)."""
    modes = dict.fromkeys(k.split("/")[1] for k in scalars)
    return "; ".join(
        f"{m}: accuracy {scalars[f'val/{m}/accuracy']:.2f}, |rel error| {scalars[f'val/{m}/abs_rel_error']:.2f}"
        for m in modes
    )


def validation_scalars(rows: list[EvalRow]) -> dict[str, float]:
    """``val/<mode>/...`` scalars from report rows: per budget (mean tokens, accuracy, relative error) and over the
    grid (accuracy, mean |relative error|, Pearson r of mean tokens with budget, worst over-budget share)."""
    out: dict[str, float] = {}
    for mode, series in group_rows(rows, lambda r: r.mode).items():
        for r in series:
            for key in ("mean_tokens", "accuracy", "rel_error"):
                out[f"val/{mode}/b{r.budget}/{key}"] = float(getattr(r, key))
        out[f"val/{mode}/accuracy"] = sum(r.accuracy for r in series) / len(series)
        out[f"val/{mode}/abs_rel_error"] = sum(abs(r.rel_error) for r in series) / len(series)
        out[f"val/{mode}/over_budget_share"] = max(r.over_budget_share for r in series)
        if len(series) > 1:
            out[f"val/{mode}/pearson_r"] = pearson([r.budget for r in series], [r.mean_tokens for r in series])
    return out
