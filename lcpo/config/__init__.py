"""The structured config schema: one dataclass per config group, registered in Hydra's ConfigStore.

YAML files under ``conf/`` choose values; these dataclasses fix the keys and types (a typo'd key or a string for
a float fails at compose time) and their ``__post_init__`` checks ranges with messages that name the key.
``validate`` converts a composed DictConfig into these objects, which runs those checks, then checks the rules
that span groups. The package depends only on the algo layer (``lcpo.algo``), so anything above may import it
without a cycle.
"""

from __future__ import annotations

import difflib
from dataclasses import is_dataclass
from pathlib import Path
from typing import Sequence, TypeVar

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from lcpo.config.algo import AlgoConfig
from lcpo.config.budget import BudgetConfig
from lcpo.config.eval import FORCED, EvalGrid, ValidationConfig
from lcpo.config.evaluate import EvaluateConfig
from lcpo.config.logger import LoggerConfig
from lcpo.config.model import DTYPES, ModelConfig, TinyModelConfig
from lcpo.config.prompt import PromptConfig
from lcpo.config.reward import BUDGET_AWARE, REWARD_NAMES, RewardConfig
from lcpo.config.rollout import ForcingConfig, RolloutConfig, VLLMConfig
from lcpo.config.task import BUDGET_IN_TRACE, SyntheticTaskConfig, TaskConfig
from lcpo.config.train import TrainConfig, check_cross_group
from lcpo.config.trainer import TrainerConfig
from lcpo.config.warmstart import WarmstartConfig, WarmstartRunConfig

T = TypeVar("T")

#: The repository's config folder (the package is installed editable from the repository).
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

#: The schema each top-level config file lists first in its defaults.
SCHEMAS = {"train_schema": TrainConfig, "warmstart_schema": WarmstartRunConfig, "evaluate_schema": EvaluateConfig}


def register() -> None:
    """Registers the top-level schemas, so every group of ``conf/<name>.yaml`` merges into a typed node."""
    for name, node in SCHEMAS.items():
        ConfigStore.instance().store(name=name, node=node)


def compose_config(name: str, overrides: Sequence[str] = (), return_hydra: bool = False) -> DictConfig:
    """Composes ``conf/<name>.yaml`` with overrides, as its command line would (for code and tests); with
    ``return_hydra`` the result keeps Hydra's own node (``hydra.runtime.choices``: the option of each group)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=return_hydra)


def validate(cfg: DictConfig) -> TrainConfig:
    """Turns a composed training config into a checked :class:`TrainConfig` (raises ValueError naming the key)."""
    obj = to_schema(cfg, TrainConfig)
    check_cross_group(obj)
    return obj


def to_schema(cfg: DictConfig, schema: type[T]) -> T:
    """``cfg`` as its schema's dataclass, which runs the range checks; keys the schema lacks are refused first."""
    check_known_keys(cfg, OmegaConf.structured(schema))
    obj = OmegaConf.to_object(cfg)
    if not isinstance(obj, schema):
        raise TypeError(f"expected a {schema.__name__}, got {type(obj).__name__}")
    return obj


def check_known_keys(cfg: DictConfig, reference: DictConfig, prefix: str = "") -> None:
    """Raises ValueError for a key of ``cfg`` that ``reference`` (the schema's defaults) does not have.

    OmegaConf refuses unknown keys, except those added with ``+key=value``, which it keeps without a word: a typo
    there (``+trainer.max_step=10``) would otherwise run with the default. Nodes typed ``Any`` are not checked.
    """
    for key in cfg:
        name = f"{prefix}{key}"
        if key not in reference:
            close = difflib.get_close_matches(str(key), [str(k) for k in reference], n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ValueError(f"unknown config key {name}{hint}")
        if any(OmegaConf.is_missing(c, key) or OmegaConf.is_interpolation(c, key) for c in (cfg, reference)):
            continue
        value, expected = cfg[key], reference[key]
        nested = isinstance(value, DictConfig) and isinstance(expected, DictConfig)
        if nested and is_dataclass(OmegaConf.get_type(expected)):
            check_known_keys(value, expected, f"{name}.")


register()

__all__ = [
    "AlgoConfig", "BUDGET_AWARE", "BUDGET_IN_TRACE", "BudgetConfig", "CONF_DIR", "DTYPES", "EvalGrid",
    "EvaluateConfig", "FORCED", "ForcingConfig", "LoggerConfig", "ModelConfig", "PromptConfig", "REWARD_NAMES",
    "RewardConfig", "RolloutConfig", "SyntheticTaskConfig", "TaskConfig", "TinyModelConfig", "TrainConfig",
    "TrainerConfig", "VLLMConfig", "ValidationConfig", "WarmstartConfig", "WarmstartRunConfig", "check_known_keys",
    "compose_config", "register", "to_schema", "validate",
]
