"""``conf/evaluate.yaml``'s schema: which models are evaluated, on which tasks, over which budget grid."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from lcpo.config.checks import one_of, positive
from lcpo.config.eval import EvalGrid
from lcpo.config.logger import LoggerConfig
from lcpo.config.model import DTYPES
from lcpo.config.prompt import PromptConfig
from lcpo.config.rollout import RolloutConfig
from lcpo.config.task import TaskConfig


@dataclass
class EvaluateConfig:
    """``task`` is the lead task; ``extra_files`` adds file tasks (JSONL/parquet, kind auto, graded like ``task``).
    ``logger`` reuses the training logger group (wandb only; ``conf/evaluate.yaml`` picks ``logger: none``).
    ``rollout`` samples as the L1 evaluation protocol does (temperature 0.6, top_p 0.95)."""

    models: Any = None
    task: TaskConfig = field(default_factory=TaskConfig)
    extra_files: list[str] = field(default_factory=list)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(temperature=0.6, top_p=0.95))
    grid: EvalGrid = field(default_factory=EvalGrid)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    dtype: str = "float32"
    attn_implementation: Optional[str] = "eager"
    device: str = "auto"
    num_threads: Optional[int] = None
    progress_bar: bool = True
    plots: bool = True
    save_samples: bool = True
    output_dir: str = "outputs/evaluate"

    def __post_init__(self) -> None:
        one_of("dtype", self.dtype, DTYPES)
        if self.rollout.name == "vllm" and self.device == "cpu":
            raise ValueError("rollout=vllm needs a GPU; use rollout=hf on CPU")
        if not self.models:
            raise ValueError("models is empty: pass models='{name: /path/to/model}' or models='[/path/to/model]'")
        check_models(self.models)
        for path in self.extra_files:
            if not Path(path).expanduser().is_file() or Path(path).suffix.lower() not in (".jsonl", ".parquet"):
                raise ValueError(f"extra_files: {path} is not a .jsonl or .parquet file")
        if self.num_threads is not None:
            positive("num_threads", self.num_threads)


def check_models(models: Any) -> None:
    """``models`` must be a list of transformers folders or a ``{name: folder}`` mapping, every folder holding a
    ``config.json``: checked before the first model loads, so that a typo in the last path does not surface after
    hours of evaluating the others."""
    if isinstance(models, dict):
        named = {f"models.{name}": path for name, path in models.items()}
    elif isinstance(models, (list, tuple)):
        named = {f"models[{i}]": path for i, path in enumerate(models)}
    else:
        hint = f" (write models='[{models}]')" if isinstance(models, str) else ""
        raise ValueError(f"models must be a list of model folders or a {{name: folder}} mapping, got {models!r}{hint}")
    for key, path in named.items():
        if not isinstance(path, str) or not (Path(path).expanduser() / "config.json").is_file():
            raise ValueError(f"{key}: no transformers model at {path} (config.json missing)")
