"""The models an evaluation compares and the engine each is sampled through: folders or live ``(model,
tokenizer)`` pairs, loaded one at a time and released before the next."""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import torch

from lcpo.config import RolloutConfig
from lcpo.models.load import load_pretrained
from lcpo.models.tiny import load_tokenizer
from lcpo.rollout.base import RolloutEngine
from lcpo.rollout.engines import build_engine

#: A model to evaluate: a transformers folder, or an already loaded ``(model, tokenizer)`` pair.
ModelSpec = Union[str, Path, tuple[Any, Any]]


def name_models(models: Mapping[str, ModelSpec] | Sequence[str | Path]) -> dict[str, ModelSpec]:
    """``{row name: model}``: a mapping as given, a list of folders named by folder (by path when names clash)."""
    if isinstance(models, Mapping):
        named = dict(models)
    else:
        named = {Path(p).name: p for p in models}
        if len(named) != len(models):
            named = {str(p): p for p in models}
    if not named:
        raise ValueError("no models to evaluate (set models to {name: path} or a list of paths)")
    return named


def source(spec: ModelSpec) -> str:
    """Where a model comes from, as a resumed evaluation checks it: a folder's resolved path."""
    return "<in memory>" if isinstance(spec, tuple) else str(Path(spec).expanduser().resolve())


def open_engine(
    spec: ModelSpec, rollout: RolloutConfig, max_new_tokens: int, seed: int, dtype: str,
    attn_implementation: str | None, device: str,
) -> tuple[RolloutEngine, Any]:
    """The engine for one model: a vLLM engine over its folder (a live model is saved to a temporary one first), or
    an engine over the transformers model loaded onto ``device``."""
    if rollout.name != "vllm":
        model, tokenizer = load(spec, dtype, attn_implementation, device)
        return build_engine(rollout, model, tokenizer, seed=seed), tokenizer
    from lcpo.rollout.vllm import VLLMEngine

    with tempfile.TemporaryDirectory(prefix="lcpo-eval-") as scratch:
        if isinstance(spec, tuple):
            model, tokenizer = spec
            model.save_pretrained(scratch)
            tokenizer.save_pretrained(scratch)
            path = Path(scratch)
        else:
            path, tokenizer = Path(spec), load_tokenizer(spec)
        engine = VLLMEngine.standalone(path, tokenizer, rollout.vllm, max_new_tokens, seed=seed)
    return engine, tokenizer


def load(spec: ModelSpec, dtype: str, attn_implementation: str | None, device: str) -> tuple[Any, Any]:
    """A ``(model, tokenizer)`` pair: a folder is loaded onto ``device`` ("auto": CUDA when available); a pair
    passed in stays where it is unless a device is named (it may be a live policy the caller keeps using)."""
    if isinstance(spec, tuple):
        model, tokenizer = spec
        return (model if device == "auto" else model.to(device)), tokenizer
    model, tokenizer = load_pretrained(spec, dtype, attn_implementation)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device), tokenizer


def free_memory() -> None:
    """Returns a released model's memory before the next one loads."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
