"""One place that wires a training run from a :class:`TrainConfig`: the policy, its rollout collector, the
Lightning module and data module, the callbacks, loggers and trainer, and :func:`run`, which trains (and evaluates).

``python -m lcpo.train``, the demo, the GPU check and the benchmarks all build their runs here; they differ only in
the config they pass (the GPU check also passes its own policy and trainer).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import OmegaConf

from lcpo.algo.budgets import spread_budgets
from lcpo.config import TrainConfig, TrainerConfig
from lcpo.config.eval import VALIDATION_DIR
from lcpo.config.reward import build_reward
from lcpo.errors import describe
from lcpo.models.load import load_policy, torch_dtype
from lcpo.models.meta import ModelMeta
from lcpo.models.sharding import is_sharded
from lcpo.rollout.engines import build_engine
from lcpo.rollout.thinking import ThinkingCounter
from lcpo.tasks import Task, build_epochs, build_grader, build_task, data_sources
from lcpo.tasks.prompts import PromptBuilder
from lcpo.tasks.verl import check_row_budgets
from lcpo.training.checkpoints import CHECKPOINT_DIR, AtomicCheckpointIO, StepMetricsCarry, resolve_ckpt_path
from lcpo.training.collector import RolloutCollector
from lcpo.training.bookkeeping import BookkeepingTokens
from lcpo.training.datamodule import PromptDataModule
from lcpo.training.guards import LearningSignalWatch
from lcpo.training.module import LCPOModule
from lcpo.training.plan_log import log_plan
from lcpo.training.preemption import StopOnSignal
from lcpo.training.prompt_lengths import fit_prompts
from lcpo.training.strategies import build_strategy
from lcpo.training.think_watch import ThinkWatch
from lcpo.training.tokenizer_check import check_tokenizer

log = logging.getLogger(__name__)

#: Written into the run folder when a run has trained (and evaluated, with ``eval_at_end``) to the end: the last
#: logged metrics. A sweep job whose folder holds it is not run again.
FINISHED = "finished.json"

# Expected with this design, so not worth a user's attention: checkpoints are taken after the optimiser steps of a
# rollout batch, the frozen reference stays in eval mode, and the module moves only scored rollouts to the device.
for _message in (
    ".*ModelCheckpoint with manual optimization.*",
    ".*module\\(s\\) in eval mode.*",
    ".*overridden `transfer_batch_to_device`.*",
):
    warnings.filterwarnings("ignore", message=_message)


def build_collector(cfg: TrainConfig, policy: torch.nn.Module, tokenizer: Any, task: Task) -> RolloutCollector:
    """The rollout engine over the live policy, with the grader, reward and sampling of ``cfg``; ``task``'s data
    sources (per-source metrics) and its bookkeeping spans, left out of the policy gradient, if it has any."""
    spans = getattr(task, "bookkeeping_spans", None)
    return RolloutCollector(
        engine=build_engine(cfg.rollout, policy, tokenizer, max_new_tokens=engine_max_new_tokens(cfg), seed=cfg.seed,
                            compute_dtype=torch_dtype(cfg.model.dtype)),
        grader=build_grader(cfg.task),
        reward=build_reward(cfg.reward),
        sampling=cfg.rollout.sampling(),
        group_size=cfg.algo.group_size,
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        seed=cfg.seed,
        scale_std=cfg.algo.scale_std,
        adv_eps=cfg.algo.adv_eps,
        samples_per_table=cfg.trainer.samples_per_table,
        count_thinking=ThinkingCounter(tokenizer),
        length=cfg.reward.length,
        sources=data_sources(task),
        bookkeeping=None if spans is None else BookkeepingTokens(tokenizer, spans),
    )


def build_module(cfg: TrainConfig, policy: torch.nn.Module, tokenizer: Any, task: Task) -> LCPOModule:
    """The Lightning module over ``policy`` with its collector; the reference is stored in ``model.dtype``."""
    return LCPOModule(
        policy, tokenizer, cfg.algo, build_collector(cfg, policy, tokenizer, task), budget_range(cfg),
        temperature=cfg.rollout.temperature,
        reference_dtype=torch_dtype(cfg.model.dtype),
    )


def budget_range(cfg: TrainConfig) -> tuple[int, int]:
    """The smallest and largest budget ``cfg`` trains on."""
    distribution = cfg.budget.sampler().distribution
    return distribution.smallest, distribution.largest


def build_training_task(cfg: TrainConfig) -> Task:
    """``cfg``'s task; under ``budget=from_file`` every problem's own budget is checked against ``budget.low`` and
    ``budget.high`` here, before training starts."""
    task = build_task(cfg.task)
    if cfg.budget.from_file:
        check_row_budgets(task.problems, cfg.budget.low, cfg.budget.high)
    return task


def build_datamodule(cfg: TrainConfig, tokenizer: Any, start_step: Callable[[], int],
                     task: Task | None = None) -> PromptDataModule:
    """The prompt stream of ``task`` (built from ``cfg`` when not given) and ``cfg``'s budgets, which starts at
    ``start_step()`` (in a run, the module's rollout step, so a resumed run continues)."""
    sampler, build_prompt = cfg.budget.sampler(), PromptBuilder(cfg.prompt, tokenizer)
    task = build_training_task(cfg) if task is None else task
    task = fit_prompts(task, build_prompt, tokenizer, cfg.rollout.vllm.max_prompt_tokens, sampler)
    return PromptDataModule(
        task=task,
        sampler=sampler,
        build_prompt=build_prompt,
        prompts_per_step=cfg.algo.prompts_per_step,
        seed=cfg.seed,
        start_step=start_step,
        epochs=build_epochs(cfg.task, task, cfg.seed),
        from_file=cfg.budget.from_file,
    )


def build_parts(cfg: TrainConfig, policy: torch.nn.Module | None = None,
                tokenizer: Any = None) -> tuple[LCPOModule, PromptDataModule]:
    """The module and data module of a run: over ``cfg.model`` (loaded here) unless a policy is given."""
    if policy is None:
        policy, tokenizer = load_policy(cfg.model)
    if cfg.model.name == "hf":
        check_tokenizer(policy, tokenizer, PromptBuilder(cfg.prompt, tokenizer), f"model.path={cfg.model.path}")
    if cfg.trainer.accelerator != "cpu":
        log_plan(cfg, policy)
    task = build_training_task(cfg)
    module = build_module(cfg, policy, tokenizer, task)
    return module, build_datamodule(cfg, tokenizer, lambda: module.rollout_step, task)


def build_callbacks(cfg: TrainConfig, out: Path) -> list[L.Callback]:
    """Checkpoints, HF exports, the samples table, the learning-signal watch, the metrics carry over resumes, the
    periodic validation and the progress bar, as ``cfg.trainer`` asks."""
    from lcpo.training.callbacks import HFExport, RolloutProgressBar, SampleTable

    updates = cfg.algo.updates_per_step
    callbacks: list[L.Callback] = [
        ModelCheckpoint(
            dirpath=out / CHECKPOINT_DIR,
            filename="step_{step}",  # the rollout step the module logs as "step"
            every_n_train_steps=(cfg.trainer.ckpt_every_n_steps or cfg.trainer.max_steps) * updates,
            save_last=True,
            save_top_k=-1 if cfg.trainer.ckpt_every_n_steps else 1,
            auto_insert_metric_name=False,
        ),
        HFExport(out / "hf", out / "model", cfg.trainer.export_every_n_steps, dtype=cfg.model.exports_in,
                 meta=ModelMeta(cfg.prompt, budget_range(cfg), cfg.eval)),
        SampleTable(out / "samples.jsonl", cfg.trainer.samples_every_n_steps),
        LearningSignalWatch(
            cfg.rollout.max_new_tokens, cfg.trainer.warn_zero_signal, cfg.trainer.warn_zero_signal_steps
        ),
        StepMetricsCarry(),
        StopOnSignal(cfg.trainer.stop_signals, out),
    ]
    if cfg.task.require_think:
        callbacks.append(ThinkWatch())
    if cfg.trainer.val_every_n_steps:
        callbacks.append(build_validation(cfg, out / VALIDATION_DIR))
    if cfg.trainer.progress_bar:
        callbacks.append(RolloutProgressBar())
    return callbacks


def build_validation(cfg: TrainConfig, dirpath: Path) -> L.Callback:
    """The periodic budget-grid validation of ``cfg.val`` (budgets default to four spread over the training range)."""
    from lcpo.eval.plan import EvalTask
    from lcpo.training.callbacks import GridValidation

    grid = cfg.val.grid(spread_budgets(cfg.budget.distribution()), cfg.eval)
    rollout = replace(cfg.rollout.with_protocol_sampling(cfg.rollout.name), temperature=cfg.val.temperature)
    task = EvalTask(build_task(cfg.task), build_grader(cfg.task))
    return GridValidation(task, grid, rollout, cfg.prompt, dirpath, cfg.trainer.val_every_n_steps)


def build_loggers(cfg: TrainConfig, out: Path) -> list:
    """CSV always works; wandb is offline unless asked, and skipped with a warning when not installed.

    Each start writes a new ``csv/version_<k>`` folder: Lightning's CSV writer deletes an existing metrics file, so
    a resumed run appending to the old folder would lose the metrics logged before the interruption.
    """
    loggers: list = []
    if cfg.logger.csv:
        loggers.append(L.pytorch.loggers.CSVLogger(save_dir=str(out), name="csv", flush_logs_every_n_steps=1))
    if cfg.logger.wandb and cfg.logger.wandb_mode != "disabled":
        try:
            import wandb  # noqa: F401
        except ImportError:
            log.warning("wandb is not installed; logging to CSV only")
        else:
            wandb_logger = L.pytorch.loggers.WandbLogger(
                save_dir=str(out),
                project=cfg.logger.project,
                group=cfg.logger.group,
                name=cfg.logger.name,
                offline=cfg.logger.wandb_mode != "online",
            )
            # Lightning always passes anonymous=None, which wandb warns has no effect on every run: leave it out.
            wandb_logger._wandb_init.pop("anonymous", None)
            loggers.append(wandb_logger)
    return loggers


def build_trainer(cfg: TrainConfig, callbacks: list[L.Callback], loggers: list) -> L.Trainer:
    """The Lightning trainer of ``cfg.trainer``: ``max_steps`` counts optimiser steps (rollout steps x updates)."""
    return lightning_trainer(
        cfg.trainer,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        num_nodes=cfg.trainer.num_nodes,
        strategy=build_strategy(cfg.trainer.strategy),
        precision=cfg.trainer.precision,
        max_steps=cfg.trainer.max_steps * cfg.algo.updates_per_step,
        max_epochs=-1,
        log_every_n_steps=max(1, cfg.trainer.log_every_n_steps),
        logger=loggers or False,
        callbacks=callbacks,
        enable_progress_bar=cfg.trainer.progress_bar,
        enable_model_summary=False,
        default_root_dir=cfg.output_dir,
        use_distributed_sampler=False,
        plugins=[AtomicCheckpointIO()],
    )


def build(cfg: TrainConfig) -> tuple[LCPOModule, PromptDataModule, L.Trainer]:
    """Everything a run needs, wired but not started."""
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    L.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.output_dir)
    module, datamodule = build_parts(cfg)
    return module, datamodule, build_trainer(cfg, build_callbacks(cfg, out), build_loggers(cfg, out))


def engine_max_new_tokens(cfg: TrainConfig) -> int:
    """The longest response the training engine must produce: rollouts, and the periodic validation (which reuses
    the engine) when it is on."""
    caps = [cfg.rollout.max_new_tokens]
    if cfg.trainer.val_every_n_steps:
        grid = cfg.val.grid(spread_budgets(cfg.budget.distribution()), cfg.eval)
        caps += [grid.cap(mode, budget) for mode in grid.modes for budget in grid.budgets]
    return max(caps)


def lightning_trainer(trainer_cfg: TrainerConfig, **kwargs) -> L.Trainer:
    """``L.Trainer(**kwargs)``; Lightning's complaints about the ``trainer`` group (an unknown accelerator, devices
    that are not there, a precision it does not know) come back naming the group's keys."""
    try:
        return L.Trainer(**kwargs)
    except (ValueError, TypeError, MisconfigurationException) as err:
        t = trainer_cfg
        raise ValueError(
            f"trainer: {describe(err)} (trainer.accelerator={t.accelerator}, trainer.devices={t.devices}, "
            f"trainer.strategy={t.strategy}, trainer.precision={t.precision}, trainer.num_nodes={t.num_nodes})"
        ) from err


def evaluate_policy(cfg: TrainConfig, module: LCPOModule, out: Path) -> list:
    """Evaluates the trained policy over ``cfg.eval`` on the training task with the protocol's sampling, into
    ``out`` (cells kept as they finish, so an interrupted evaluation resumes there); a sharded policy through its
    export (only rank 0 evaluates, and it holds a shard)."""
    from lcpo.eval.plan import EvalTask
    from lcpo.eval.report import write_report
    from lcpo.eval.run import evaluate_models
    from lcpo.eval.store import CellStore

    policy = Path(cfg.output_dir) / "model" if is_sharded(module.policy) else (module.policy, module.tokenizer)
    rows = evaluate_models(
        {"policy": policy},
        [EvalTask(build_task(cfg.task), build_grader(cfg.task))],
        cfg.eval,
        rollout=cfg.rollout.with_protocol_sampling(),
        prompt=cfg.prompt,
        progress=cfg.trainer.progress_bar,
        output_dir=out,
    )
    write_report(rows, out)
    CellStore(out).write_samples(rows, out / "samples.jsonl")
    return rows


def run(cfg: TrainConfig) -> dict[str, float]:
    """Trains (and evaluates if ``eval_at_end``); returns the last logged metrics (useful to sweeps and tests),
    which it also writes to ``<output_dir>/finished.json`` once everything is done."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, out)
    module, datamodule, trainer = build(cfg)
    if trainer.is_global_zero:
        OmegaConf.save(OmegaConf.structured(cfg), out / "config.yaml")
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        trained = trainer.global_step >= trainer.max_steps  # not stopped early
        if trained and cfg.eval_at_end and trainer.is_global_zero:
            evaluate_policy(cfg, module, out / "eval")
    finally:
        finish_wandb(trainer)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trained and trainer.is_global_zero:
        (out / FINISHED).write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def finish_wandb(trainer: L.Trainer) -> None:
    """Closes this run's wandb run: otherwise the next run in the same process (a job of a multirun sweep, the
    demo's second stage) would log into it instead of starting its own."""
    if any(isinstance(logger, L.pytorch.loggers.WandbLogger) for logger in trainer.loggers):
        import wandb

        wandb.finish()
