"""``python -m lcpo.evaluate`` (console script ``lcpo-evaluate``): budget-grid evaluation from ``conf/evaluate.yaml``.

    lcpo-evaluate models='{base: /models/base, l1: outputs/train/x/model}' grid.budgets='[512,1024]'
    lcpo-evaluate models='[/models/base]' rollout=budget_forcing        # the s1 baseline, rows named "s1"
    lcpo-evaluate suite=l1 data_dir=~/deepscaler/data models='{l1: /models/l1, base: /models/base}' s1=base

The protocol and the rows are described in :mod:`lcpo.eval.run`, which does the work. Each finished cell is kept
under ``<output_dir>/cells/``; the same command with the same ``output_dir`` resumes an interrupted evaluation
(finished cells are not sampled again; a folder made with another grid, sampling or model is refused).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import hydra
import torch
from omegaconf import DictConfig

from lcpo.config import CONF_DIR, EvaluateConfig, LoggerConfig, TaskConfig, to_schema
from lcpo.config.evaluate import model_names
from lcpo.errors import hydra_boundary
from lcpo.eval.as_trained import as_trained, given_keys
from lcpo.eval.plan import EvalTask
from lcpo.eval.report import write_report
from lcpo.eval.rows import EvalRow, table
from lcpo.eval.run import evaluate_models
from lcpo.eval.store import CellStore
from lcpo.eval.suite import suite_tasks
from lcpo.eval.summary import SUMMARY_COLUMNS, curve_summary
from lcpo.tasks import build_grader, build_task

log = logging.getLogger(__name__)


def run(cfg: EvaluateConfig) -> list[EvalRow]:
    """Evaluates (resuming from the cells in ``cfg.output_dir``), writes the report (and per-sample
    ``samples.jsonl``) there from every cell, logs to wandb."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    grader = build_grader(cfg.task)
    extra: dict = {}
    if cfg.suite.name is not None:
        tasks, missing = suite_tasks(cfg.data_dir, cfg.suite.datasets, grader)
        extra = {"suite": cfg.suite.name, "data_dir": cfg.data_dir, "missing": missing}
    else:
        tasks = [EvalTask(build_task(cfg.task), grader)]
        for path in cfg.extra_files:
            tasks.append(EvalTask(build_task(TaskConfig(name=Path(path).suffix.lstrip("."), path=path)), grader))
    out = Path(cfg.output_dir)
    common = dict(
        prompt=cfg.prompt, dtype=cfg.dtype, attn_implementation=cfg.attn_implementation, device=cfg.device,
        progress=cfg.progress_bar, output_dir=out,
    )
    rows = evaluate_models(cfg.models, tasks, cfg.grid, rollout=cfg.rollout, **common)
    if cfg.s1 is not None:
        base = {cfg.s1: dict(zip(model_names(cfg.models), _paths(cfg.models)))[cfg.s1]}
        rows += evaluate_models(base, tasks, cfg.grid, rollout=replace(cfg.rollout, name="budget_forcing"), **common)
    paths = write_report(rows, out, make_plots=cfg.plots, extra=extra)
    if cfg.save_samples:
        CellStore(out).write_samples(rows, out / "samples.jsonl")
    log.info("evaluation report: %s", paths["report.md"])
    if cfg.logger.wandb and cfg.logger.wandb_mode != "disabled":
        log_to_wandb(rows, paths, cfg.logger, out)
    return rows


def _paths(models: Mapping[str, str] | Sequence[str]) -> list[str]:
    return list(models.values()) if isinstance(models, Mapping) else list(models)


def log_to_wandb(rows: Sequence[EvalRow], paths: Mapping[str, Path], logger: LoggerConfig, out: Path) -> None:
    """Logs the rows as a table and the plots as images (offline unless ``wandb_mode=online``); wandb is
    imported here so the package works without it."""
    try:
        import wandb
    except ImportError:
        log.warning("wandb is not installed; the report is only on disk")
        return
    wb_run = wandb.init(
        project=logger.project, group=logger.group, name=logger.name, job_type="evaluate", dir=str(out),
        mode="offline" if logger.wandb_mode == "offline" else "online",
    )
    images = {name: wandb.Image(str(p)) for name, p in paths.items() if name.endswith(".png")}
    columns, data = table(rows)
    summary = curve_summary(rows)
    tables = {
        "report": wandb.Table(columns=columns, data=data),
        "summary": wandb.Table(columns=list(SUMMARY_COLUMNS), data=[[s[c] for c in SUMMARY_COLUMNS] for s in summary]),
    }
    wb_run.log({**tables, **images})
    wb_run.finish()


@hydra.main(config_path=str(CONF_DIR), config_name="evaluate", version_base="1.3")
@hydra_boundary("lcpo-evaluate")
def main(cfg: DictConfig) -> None:
    """``python -m lcpo.evaluate`` / ``lcpo-evaluate``: see the module docstring."""
    from hydra.core.hydra_config import HydraConfig

    given = given_keys(HydraConfig.get().overrides.task) if HydraConfig.initialized() else set()
    run(as_trained(to_schema(cfg, EvaluateConfig), given))


if __name__ == "__main__":
    main()
