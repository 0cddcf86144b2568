"""The ``model`` group: which policy to train, its shape when built locally, and how it is loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from lcpo.config.checks import one_of, positive

#: Dtypes by name; ``lcpo.models.load`` turns a name into ``getattr(torch, name)``.
DTYPES = ("float32", "bfloat16", "float16")
#: Architectures the tiny policy can take (``lcpo.models.tiny`` maps them to transformers classes).
TINY_ARCHITECTURES = ("llama", "qwen2")


@dataclass
class TinyModelConfig:
    """Shape of the locally built tiny policy. The defaults train in minutes on two CPU cores (about 0.2 M
    parameters); ``attn_implementation`` is set on the tiny model's config (``ModelConfig`` has its own for
    folders)."""

    arch: str = "llama"
    hidden_size: int = 64
    num_layers: int = 3
    num_heads: int = 2
    intermediate_size: int = 128
    max_position_embeddings: int = 512
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True
    attn_implementation: str = "sdpa"
    seed: int = 0

    def __post_init__(self) -> None:
        one_of("model.tiny.arch", self.arch, TINY_ARCHITECTURES)
        for key in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "max_position_embeddings"):
            positive(f"model.tiny.{key}", getattr(self, key))
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"model.tiny.hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})"
            )


@dataclass
class ModelConfig:
    """The policy: ``tiny`` is built locally from ``tiny``; ``hf`` loads a transformers folder at ``path``;
    ``auto`` is ``hf`` when ``path`` holds a model and refused otherwise (the laptop default: the demo's
    warm-started model; a run never falls back to random weights unasked), resolved when the config is validated.
    A ``path`` that is not a folder is an error whatever the choice.

    ``attn_implementation`` applies to ``hf``; the tiny model takes its own from ``tiny.attn_implementation``.

    ``dtype`` is the compute dtype: the policy's parameters and AdamW's state are always fp32 (at the paper's lr an
    update is far below one bf16 rounding step of a weight), and ``bfloat16`` runs forward and backward under
    autocast (``trainer.precision`` follows it: ``bf16-mixed``), with the frozen reference stored in bf16.
    ``export_dtype`` is the dtype of the exported transformers folders (null: ``dtype``, see ``exports_in``).
    """

    name: str = "tiny"
    path: Optional[str] = None
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    dtype: str = "float32"
    attn_implementation: Optional[str] = "eager"
    gradient_checkpointing: bool = False
    export_dtype: Optional[str] = None

    def __post_init__(self) -> None:
        one_of("model.name", self.name, ("tiny", "hf", "auto"))
        one_of("model.dtype", self.dtype, DTYPES)
        if self.export_dtype is not None:
            one_of("model.export_dtype", self.export_dtype, DTYPES)
        if self.name == "auto":
            if not self.path or not (Path(self.path).expanduser() / "config.json").is_file():
                raise ValueError(
                    f"model=auto: no warm-started model at {self.path} ({missing(self.path)}); run `make demo` first "
                    "(or python -m lcpo.warmstart and pass model.path=<its model folder>), or choose model=tiny to "
                    "train from random weights on purpose"
                )
            self.name = "hf"
        if self.path is not None and not Path(self.path).expanduser().is_dir():
            raise ValueError(f"model.path={self.path}: no such folder (model={self.name})")
        if self.name == "tiny" and self.path is not None:
            raise ValueError(
                f"model.path={self.path} with model=tiny, which builds random weights and reads no folder; "
                "use model=hf to train that folder"
            )
        if self.name == "hf" and not self.path:
            raise ValueError("model.path is required for model=hf (a local transformers model folder)")

    @property
    def exports_in(self) -> str:
        """The dtype of exported folders: ``export_dtype``, or the compute dtype when that is null (left null in
        the schema rather than filled in, so that a composed config keeps following ``dtype``)."""
        return self.export_dtype or self.dtype


def missing(path: str | None) -> str:
    """Why ``path`` is not a model folder, in a few words."""
    if not path:
        return "model.path is not set"
    return "no config.json there" if Path(path).expanduser().is_dir() else "no such folder"
