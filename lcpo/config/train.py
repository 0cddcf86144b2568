"""``conf/train.yaml``'s schema: every group of a training run, and the rules that span groups."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

from lcpo.config.algo import AlgoConfig
from lcpo.config.budget import BudgetConfig
from lcpo.config.eval import EvalGrid, ValidationConfig
from lcpo.config.logger import LoggerConfig
from lcpo.config.model import ModelConfig
from lcpo.config.prompt import PromptConfig
from lcpo.config.reward import BUDGET_AWARE, RewardConfig
from lcpo.config.rollout import RolloutConfig
from lcpo.config.task import TaskConfig
from lcpo.config.trainer import TrainerConfig

log = logging.getLogger(__name__)

#: The Lightning precision that runs each compute dtype (``model.dtype``) over fp32 parameters.
PRECISIONS = {"float32": "32-true", "bfloat16": "bf16-mixed"}


@dataclass
class TrainConfig:
    """Everything ``python -m lcpo.train`` needs. ``output_dir`` defaults to Hydra's run folder.

    ``eval_at_end`` evaluates the final policy over the ``eval`` grid into ``<output_dir>/eval/`` (sweeps turn it
    on, so that ``lcpo.cli.report`` can compare their jobs); ``val`` is the small grid run every
    ``trainer.val_every_n_steps`` rollout steps.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 0
    output_dir: str = "outputs/train"
    ckpt_path: Optional[str] = None
    eval_at_end: bool = False
    eval: EvalGrid = field(default_factory=lambda: EvalGrid(samples=4, problems=64))
    val: ValidationConfig = field(default_factory=ValidationConfig)


def check_cross_group(cfg: TrainConfig) -> None:
    """Rules that span groups: errors for what cannot train, warnings for what trains badly."""
    check_precision(cfg)
    if cfg.rollout.name == "budget_forcing":
        raise ValueError("rollout=budget_forcing is the s1 evaluation baseline; train with rollout=hf or rollout=vllm")
    if cfg.algo.tis_cap is not None and cfg.rollout.name != "vllm":
        raise ValueError("algo.tis_cap corrects for vLLM's sampling log-probs; it needs rollout=vllm (set it to null)")
    budgets = cfg.budget.sampler()
    if cfg.reward.name in BUDGET_AWARE and budgets.none_share == 1.0:
        raise ValueError(f"reward={cfg.reward.name} needs budgets, but budget.none_share is 1.0")
    exact_share = 1.0 - budgets.max_share - budgets.none_share
    largest = budgets.distribution.largest
    if exact_share > 0 and cfg.rollout.max_new_tokens < largest:
        log.warning(
            "rollout.max_new_tokens (%d) is smaller than the largest budget (%d): exact-mode prompts with large "
            "budgets cannot be met",
            cfg.rollout.max_new_tokens,
            largest,
        )
    if cfg.budget.from_file and cfg.task.name == "synthetic":
        raise ValueError("budget=from_file takes each problem's budget from its file row; the synthetic task has none")
    mismatch = {"exact": budgets.max_share > 0, "max": exact_share > 0}.get(cfg.reward.name, False)
    mismatch = mismatch and not cfg.budget.from_file  # a file's modes are only known once it loads
    if mismatch:
        log.warning(
            "reward=%s scores every budgeted prompt with its own formula, but the budget mixture also has other "
            "modes (budget.max_share=%s); reward=mixed scores each prompt by its mode",
            cfg.reward.name,
            budgets.max_share,
        )


def check_precision(cfg: TrainConfig) -> None:
    """Sets ``trainer.precision`` from ``model.dtype`` when null; refuses a precision that disagrees with it."""
    if cfg.model.dtype not in PRECISIONS:
        raise ValueError(
            f"model.dtype={cfg.model.dtype} cannot train: fp16 needs loss scaling, which the update does not do; "
            f"use one of {list(PRECISIONS)}"
        )
    expected = PRECISIONS[cfg.model.dtype]
    if cfg.trainer.precision is None:
        cfg.trainer.precision = expected
    elif cfg.trainer.precision != expected:
        raise ValueError(
            f"trainer.precision={cfg.trainer.precision} disagrees with model.dtype={cfg.model.dtype}: parameters "
            f"stay fp32 and model.dtype sets the compute dtype, so use trainer.precision={expected} or leave it null"
        )
