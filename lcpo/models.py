"""Loading the policy and its tokenizer: the locally built tiny model, or a transformers folder on disk.

Nothing here downloads: ``model=hf`` takes a local folder, and loading runs with ``local_files_only``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from lcpo.config.model import ModelConfig
from lcpo.tiny import build_tiny, load_tokenizer


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype a config names (``lcpo.config.model.DTYPES``)."""
    return getattr(torch, name)


def load_pretrained(
    path: str | Path, dtype: str = "float32", attn_implementation: str | None = "eager"
) -> tuple[PreTrainedModel, object]:
    """A causal LM and its tokenizer from a transformers-format folder (offline)."""
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no transformers model at {path} (config.json missing)")
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(dtype), local_files_only=True, **kwargs)
        tokenizer = load_tokenizer(path)
    except Exception as err:  # transformers and safetensors raise many unrelated types for a damaged folder
        raise OSError(f"{path}: cannot load the model ({type(err).__name__}: {err})") from err
    return model, tokenizer


def load_policy(cfg: ModelConfig) -> tuple[PreTrainedModel, object]:
    """The policy named by a :class:`lcpo.config.ModelConfig`, with gradient checkpointing if asked."""
    if cfg.name == "tiny":
        model, tokenizer = build_tiny(cfg.tiny)
        model = model.to(torch_dtype(cfg.dtype))
    else:
        model, tokenizer = load_pretrained(cfg.path, cfg.dtype, cfg.attn_implementation)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    return model, tokenizer
