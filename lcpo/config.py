"""The structured config schema: one dataclass per config group, registered in Hydra's ConfigStore.

YAML files under ``conf/`` choose values; these dataclasses fix the keys and types (a typo'd key or a string for
a float fails at compose time) and their ``__post_init__`` checks ranges with messages that name the key.
``validate`` converts a composed DictConfig into these objects, which runs those checks, then checks the rules
that span groups (group size vs std scaling, generation cap vs budgets, ...).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from lcpo.budgets import (
    BudgetDistribution,
    BudgetSampler,
    ChoiceBudget,
    FixedBudget,
    LogUniformBudget,
    PromptTemplate,
    UniformBudget,
)
from lcpo.eval_grid import EvalGrid
from lcpo.losses import AGGREGATIONS
from lcpo.rewards import BUDGET_AWARE, RewardConfig
from lcpo.tasks.synthetic import SyntheticTaskConfig
from lcpo.tiny import TinyModelConfig

log = logging.getLogger(__name__)

#: The repository's config folder (the package is installed editable from the repository).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

DTYPES = ("float32", "bfloat16", "float16")


def _one_of(key: str, value: Any, options: tuple) -> None:
    if value not in options:
        raise ValueError(f"{key} must be one of {list(options)}, got {value!r}")


def _positive(key: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{key} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


@dataclass
class ModelConfig:
    """The policy: ``tiny`` is built locally from ``tiny``; ``hf`` loads a transformers folder at ``path``.

    ``attn_implementation`` applies to ``hf``; the tiny model takes its own from ``tiny.attn_implementation``.
    """

    name: str = "tiny"
    path: Optional[str] = None
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    dtype: str = "float32"
    attn_implementation: Optional[str] = "eager"
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        _one_of("model.name", self.name, ("tiny", "hf"))
        _one_of("model.dtype", self.dtype, DTYPES)
        if self.name == "hf":
            if not self.path:
                raise ValueError("model.path is required for model=hf (a local transformers model folder)")
            if not Path(self.path).expanduser().is_dir():
                raise ValueError(f"model.path does not exist or is not a folder: {self.path}")


@dataclass
class TaskConfig:
    """Where problems come from: the synthetic task, or a JSONL/parquet file of problems (or multiple choice)."""

    name: str = "synthetic"
    path: Optional[str] = None
    kind: str = "auto"
    limit: Optional[int] = None
    grader: str = "math"
    require_think: bool = True
    synthetic: SyntheticTaskConfig = field(default_factory=SyntheticTaskConfig)

    def __post_init__(self) -> None:
        _one_of("task.name", self.name, ("synthetic", "jsonl", "parquet"))
        _one_of("task.kind", self.kind, ("auto", "math", "choice"))
        _one_of("task.grader", self.grader, ("math", "choice"))
        if self.name != "synthetic":
            if not self.path:
                raise ValueError(f"task.path is required for task={self.name}")
            if not Path(self.path).expanduser().is_file():
                raise ValueError(f"task.path does not exist: {self.path}")
        if self.limit is not None:
            _positive("task.limit", self.limit)


@dataclass
class BudgetConfig:
    """Budget distribution (``name``) and the mode mixture: ``max_share`` max prompts, ``none_share`` unbudgeted."""

    name: str = "uniform"
    low: int = 100
    high: int = 4000
    low_exp: float = 8.0
    high_exp: float = 14.5
    value: int = 1024
    values: list[int] = field(default_factory=lambda: [512, 1024, 2048, 3600])
    max_share: float = 0.0
    none_share: float = 0.0

    def __post_init__(self) -> None:
        _one_of("budget.name", self.name, ("uniform", "loguniform", "fixed", "choice"))
        if self.name == "uniform" and not 1 <= self.low <= self.high:
            raise ValueError(f"budget.low must satisfy 1 <= budget.low <= budget.high, got {self.low} > {self.high}")
        self.sampler()  # the distributions check their own ranges and shares

    def distribution(self) -> BudgetDistribution:
        if self.name == "uniform":
            return UniformBudget(self.low, self.high)
        if self.name == "loguniform":
            return LogUniformBudget(self.low_exp, self.high_exp)
        if self.name == "fixed":
            return FixedBudget(self.value)
        return ChoiceBudget(tuple(self.values))

    def sampler(self) -> BudgetSampler:
        return BudgetSampler(self.distribution(), self.max_share, self.none_share)


@dataclass
class PromptConfig:
    """How the user message is worded and wrapped. The model sees ``chat(user) + response_prefix``."""

    instruction: str = "Let's think step by step and output the final answer within \\boxed{}."
    exact: str = "Think for {budget} tokens."
    max: str = "Think for maximum {budget} tokens."
    separator: str = " "
    use_chat_template: bool = True
    response_prefix: str = ""

    def __post_init__(self) -> None:
        for key in ("exact", "max"):
            if "{budget}" not in getattr(self, key):
                raise ValueError(f"prompt.{key} must contain '{{budget}}', got {getattr(self, key)!r}")

    def template(self) -> PromptTemplate:
        return PromptTemplate(self.instruction, self.exact, self.max, self.separator)


@dataclass
class RolloutConfig:
    """The rollout engine and its sampling parameters (plus s1 budget forcing's knobs for evaluation)."""

    name: str = "hf"
    temperature: float = 0.6
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 4096
    batch_size: int = 64
    max_waits: int = 100
    wait_text: str = "Wait"
    answer_cue: str = "\n</think>\n\nThe final answer is: \\boxed{"
    answer_max_tokens: int = 20
    gpu_memory_utilization: float = 0.5
    tensor_parallel_size: int = 1

    def __post_init__(self) -> None:
        _one_of("rollout.name", self.name, ("hf", "vllm", "budget_forcing"))
        _positive("rollout.temperature", self.temperature, allow_zero=True)
        if not 0 < self.top_p <= 1:
            raise ValueError(f"rollout.top_p must lie in (0, 1], got {self.top_p}")
        _positive("rollout.top_k", self.top_k, allow_zero=True)
        _positive("rollout.max_new_tokens", self.max_new_tokens)
        _positive("rollout.batch_size", self.batch_size)


@dataclass
class AlgoConfig:
    """GRPO/LCPO optimisation: group size, PPO mini-batching and clipping, KL, entropy, loss shape, AdamW."""

    group_size: int = 16
    prompts_per_step: int = 128
    mini_batch_prompts: int = 64
    micro_batch_size: int = 8
    ppo_epochs: int = 1
    clip_low: float = 0.2
    clip_high: float = 0.2
    kl_coef: float = 0.001
    entropy_coef: float = 0.001
    scale_std: bool = True
    adv_eps: float = 1e-6
    loss_agg: str = "token_mean"
    loss_constant: Optional[float] = None
    lr: float = 1e-6
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        _positive("algo.group_size", self.group_size)
        if self.scale_std and self.group_size < 2:
            raise ValueError("algo.group_size must be >= 2 when algo.scale_std is true (a std needs two samples)")
        for key in ("prompts_per_step", "mini_batch_prompts", "micro_batch_size", "ppo_epochs"):
            _positive(f"algo.{key}", getattr(self, key))
        if self.prompts_per_step % self.mini_batch_prompts:
            raise ValueError(
                f"algo.prompts_per_step ({self.prompts_per_step}) must be a multiple of "
                f"algo.mini_batch_prompts ({self.mini_batch_prompts})"
            )
        for key in ("clip_low", "clip_high", "kl_coef", "entropy_coef", "weight_decay", "grad_clip"):
            _positive(f"algo.{key}", getattr(self, key), allow_zero=True)
        _positive("algo.lr", self.lr)
        _positive("algo.warmup_steps", self.warmup_steps, allow_zero=True)
        _one_of("algo.loss_agg", self.loss_agg, AGGREGATIONS)
        if self.loss_agg == "constant" and not (self.loss_constant and self.loss_constant > 0):
            raise ValueError("algo.loss_constant must be set to a positive number when algo.loss_agg=constant")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"algo.betas must be two numbers in [0, 1), got {self.betas}")

    @property
    def updates_per_step(self) -> int:
        """Optimiser steps taken on one rollout batch."""
        return self.ppo_epochs * (self.prompts_per_step // self.mini_batch_prompts)


@dataclass
class TrainerConfig:
    """Lightning Trainer settings. ``max_steps`` and the ``*_every_n_steps`` count rollout steps."""

    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    max_steps: int = 100
    log_every_n_steps: int = 1
    ckpt_every_n_steps: int = 50
    export_every_n_steps: int = 0
    samples_every_n_steps: int = 10
    samples_per_table: int = 8
    num_threads: Optional[int] = None
    progress_bar: bool = True

    def __post_init__(self) -> None:
        _positive("trainer.max_steps", self.max_steps)
        for key in ("log_every_n_steps", "ckpt_every_n_steps", "export_every_n_steps", "samples_every_n_steps"):
            _positive(f"trainer.{key}", getattr(self, key), allow_zero=True)


@dataclass
class LoggerConfig:
    """wandb (offline unless ``wandb_mode=online``) and a CSV logger; ``group`` clusters the runs of a sweep."""

    wandb: bool = True
    wandb_mode: str = "offline"
    project: str = "lcpo"
    group: Optional[str] = None
    name: Optional[str] = None
    csv: bool = True

    def __post_init__(self) -> None:
        _one_of("logger.wandb_mode", self.wandb_mode, ("offline", "online", "disabled"))


@dataclass
class TrainConfig:
    """Everything ``python -m lcpo.train`` needs. ``output_dir`` defaults to Hydra's run folder.

    ``eval_at_end`` evaluates the final policy over the ``eval`` grid into ``<output_dir>/eval/`` (sweeps turn it
    on, so that ``lcpo.report`` can compare their jobs).
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


def register() -> None:
    """Registers ``train_schema``: ``conf/train.yaml`` lists it first, so every group merges into a typed node."""
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


def check_cross_group(cfg: TrainConfig) -> None:
    """Rules that span groups: errors for what cannot train, warnings for what trains badly."""
    if cfg.rollout.name == "budget_forcing":
        raise ValueError("rollout=budget_forcing is the s1 evaluation baseline; train with rollout=hf or rollout=vllm")
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
    mismatch = {"exact": budgets.max_share > 0, "max": exact_share > 0}.get(cfg.reward.name, False)
    if mismatch:
        log.warning(
            "reward=%s scores every budgeted prompt with its own formula, but the budget mixture also has other "
            "modes (budget.max_share=%s); reward=mixed scores each prompt by its mode",
            cfg.reward.name,
            budgets.max_share,
        )


def compose_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Composes ``conf/<name>.yaml`` with overrides, as its command line would (for code and tests)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def validate(cfg: DictConfig) -> TrainConfig:
    """Turns a composed config into a checked :class:`TrainConfig` (raises ValueError naming the bad key)."""
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, TrainConfig)
    check_cross_group(obj)
    return obj


register()
