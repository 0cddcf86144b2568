"""``python -m lcpo.train``: online LCPO/GRPO training composed from the config groups under ``conf/``.

Examples::

    python -m lcpo.train experiment=demo
    python -m lcpo.train reward=max reward.alpha=0.0003 budget=uniform model=tiny
    python -m lcpo.train -m reward.alpha=1e-4,3e-4,1e-3      # a multirun sweep
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path

import hydra
import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from lcpo.algo.budgets import spread_budgets
from lcpo.training.callbacks import GridValidation, HFExport, RolloutProgressBar, SampleTable
from lcpo.training.checkpoints import CHECKPOINT_DIR, AtomicCheckpointIO, StepMetricsCarry, resolve_ckpt_path
from lcpo.training.collector import RolloutCollector
from lcpo.training.console import quiet_console
from lcpo.config import CONF_DIR, TrainConfig, TrainerConfig, validate
from lcpo.config.eval import VALIDATION_DIR
from lcpo.training.datamodule import PromptDataModule
from lcpo.errors import describe, hydra_boundary
from lcpo.training.guards import LearningSignalWatch
from lcpo.models.load import load_policy, torch_dtype
from lcpo.models.meta import ModelMeta
from lcpo.training.module import LCPOModule
from lcpo.tasks.prompts import PromptBuilder
from lcpo.config.reward import build_reward
from lcpo.rollout.engines import build_engine
from lcpo.models.sharding import is_sharded
from lcpo.tasks import build_epochs, build_grader, build_task

log = logging.getLogger(__name__)

# Expected with this design, so not worth a user's attention: checkpoints are taken after the optimiser steps of a
# rollout batch, the frozen reference stays in eval mode, and the module moves only scored rollouts to the device.
for _message in (
    ".*ModelCheckpoint with manual optimization.*",
    ".*module\\(s\\) in eval mode.*",
    ".*overridden `transfer_batch_to_device`.*",
):
    warnings.filterwarnings("ignore", message=_message)


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
            loggers.append(
                L.pytorch.loggers.WandbLogger(
                    save_dir=str(out),
                    project=cfg.logger.project,
                    group=cfg.logger.group,
                    name=cfg.logger.name or sweep_job_name(),
                    offline=cfg.logger.wandb_mode != "online",
                )
            )
    return loggers


def sweep_job_name() -> str | None:
    """A multirun job's overrides (``reward.alpha=0.02``), so the runs of a sweep are told apart in wandb."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    job = HydraConfig.get().job
    return job.override_dirname or f"job{job.num}"


def build(cfg: TrainConfig) -> tuple[LCPOModule, PromptDataModule, L.Trainer]:
    """Everything a run needs, wired but not started."""
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    L.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.output_dir)
    policy, tokenizer = load_policy(cfg.model)
    budgets = cfg.budget.sampler()
    collector = RolloutCollector(
        engine=build_engine(cfg.rollout, policy, tokenizer, max_new_tokens=engine_max_new_tokens(cfg), seed=cfg.seed),
        grader=build_grader(cfg.task),
        reward=build_reward(cfg.reward),
        sampling=cfg.rollout.sampling(),
        group_size=cfg.algo.group_size,
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        seed=cfg.seed,
        scale_std=cfg.algo.scale_std,
        adv_eps=cfg.algo.adv_eps,
        samples_per_table=cfg.trainer.samples_per_table,
    )
    budget_range = (budgets.distribution.smallest, budgets.distribution.largest)
    module = LCPOModule(
        policy, tokenizer, cfg.algo, collector, budget_range, temperature=cfg.rollout.temperature,
        reference_dtype=torch_dtype(cfg.model.dtype),
    )
    task = build_task(cfg.task)
    datamodule = PromptDataModule(
        task=task,
        sampler=budgets,
        build_prompt=PromptBuilder(cfg.prompt, tokenizer),
        prompts_per_step=cfg.algo.prompts_per_step,
        seed=cfg.seed,
        start_step=lambda: module.rollout_step,
        epochs=build_epochs(cfg.task, task, cfg.seed),
    )
    updates = cfg.algo.updates_per_step
    callbacks: list = [
        ModelCheckpoint(
            dirpath=out / CHECKPOINT_DIR,
            filename="step_{step}",  # the rollout step the module logs as "step"
            every_n_train_steps=(cfg.trainer.ckpt_every_n_steps or cfg.trainer.max_steps) * updates,
            save_last=True,
            save_top_k=-1 if cfg.trainer.ckpt_every_n_steps else 1,
            auto_insert_metric_name=False,
        ),
        HFExport(out / "hf", out / "model", cfg.trainer.export_every_n_steps, dtype=cfg.model.exports_in,
                 meta=ModelMeta(cfg.prompt, budget_range, cfg.eval)),
        SampleTable(out / "samples.jsonl", cfg.trainer.samples_every_n_steps),
        LearningSignalWatch(cfg.rollout.max_new_tokens, cfg.trainer.warn_zero_signal, cfg.trainer.warn_zero_signal_steps),
        StepMetricsCarry(),
    ]
    if cfg.trainer.val_every_n_steps:
        callbacks.append(validation(cfg, out / VALIDATION_DIR))
    if cfg.trainer.progress_bar:
        callbacks.append(RolloutProgressBar())
    trainer = lightning_trainer(
        cfg.trainer,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        num_nodes=cfg.trainer.num_nodes,
        strategy=build_strategy(cfg.trainer.strategy),
        precision=cfg.trainer.precision,
        max_steps=cfg.trainer.max_steps * updates,
        max_epochs=-1,
        log_every_n_steps=max(1, cfg.trainer.log_every_n_steps),
        logger=build_loggers(cfg, out) or False,
        callbacks=callbacks,
        enable_progress_bar=cfg.trainer.progress_bar,
        enable_model_summary=False,
        default_root_dir=str(out),
        use_distributed_sampler=False,
        plugins=[AtomicCheckpointIO()],
    )
    return module, datamodule, trainer


def build_strategy(name: str) -> str | L.pytorch.strategies.Strategy:
    """Lightning's strategy by name, except ``fsdp``: PyTorch's FSDP2 through Lightning's ``ModelParallelStrategy``
    (the module shards the policy in ``configure_model``; checkpoints hold whole weights, so a run resumes on any
    number of devices)."""
    if name == "fsdp":
        return L.pytorch.strategies.ModelParallelStrategy(save_distributed_checkpoint=False)
    return name


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


def validation(cfg: TrainConfig, dirpath: Path) -> GridValidation:
    """The periodic budget-grid validation of ``cfg.val`` (budgets default to four spread over the training range)."""
    from lcpo.eval.run import EvalTask

    grid = cfg.val.grid(spread_budgets(cfg.budget.distribution()), cfg.eval)
    rollout = replace(cfg.rollout.with_protocol_sampling(cfg.rollout.name), temperature=cfg.val.temperature)
    task = EvalTask(build_task(cfg.task), build_grader(cfg.task))
    return GridValidation(task, grid, rollout, cfg.prompt, dirpath, cfg.trainer.val_every_n_steps)


def evaluate_policy(cfg: TrainConfig, module: LCPOModule, out: Path) -> list[dict]:
    """Evaluates the trained policy over ``cfg.eval`` on the training task with the protocol's sampling; a sharded
    policy through its export (only rank 0 evaluates, and it holds a shard)."""
    from lcpo.eval.run import EvalTask, evaluate_models, write_report

    policy = Path(cfg.output_dir) / "model" if is_sharded(module.policy) else (module.policy, module.tokenizer)
    rows = evaluate_models(
        {"policy": policy},
        [EvalTask(build_task(cfg.task), build_grader(cfg.task))],
        cfg.eval,
        rollout=cfg.rollout.with_protocol_sampling(),
        prompt=cfg.prompt,
        progress=cfg.trainer.progress_bar,
        samples_path=out / "samples.jsonl",
    )
    write_report(rows, out)
    return rows


def run(cfg: TrainConfig) -> dict[str, float]:
    """Trains (and evaluates if ``eval_at_end``); returns the last logged metrics (useful to sweeps and tests)."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, out)
    module, datamodule, trainer = build(cfg)
    if trainer.is_global_zero:
        OmegaConf.save(OmegaConf.structured(cfg), out / "config.yaml")
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        if cfg.eval_at_end and trainer.is_global_zero:
            evaluate_policy(cfg, module, out / "eval")
    finally:
        finish_wandb(trainer)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def finish_wandb(trainer: L.Trainer) -> None:
    """Closes this run's wandb run: otherwise the next run in the same process (a job of a multirun sweep, the
    demo's second stage) would log into it instead of starting its own."""
    if any(isinstance(logger, L.pytorch.loggers.WandbLogger) for logger in trainer.loggers):
        import wandb

        wandb.finish()


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
@hydra_boundary("lcpo-train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns the final mean reward (the value a sweeper would optimise)."""
    train_cfg = validate(cfg)
    quiet_console(train_cfg.trainer.verbose, train_cfg.logger.wandb and train_cfg.logger.wandb_mode == "online")
    metrics = run(train_cfg)
    log.info("outputs: %s", Path(train_cfg.output_dir).resolve())
    return metrics.get("reward/mean", float("nan"))


if __name__ == "__main__":
    main()
