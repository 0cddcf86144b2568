"""Loading the policy and its tokenizer (the locally built tiny model, or a transformers folder on disk) and saving
it in a chosen dtype.

Nothing here downloads: ``model=hf`` takes a local folder, and loading runs with ``local_files_only``.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from lcpo.config.model import ModelConfig
from lcpo.models.tiny import build_tiny, load_tokenizer


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype a config names (``lcpo.config.model.DTYPES``)."""
    return getattr(torch, name)


def load_pretrained(
    path: str | Path, dtype: str, attn_implementation: str | None
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
    """The policy named by a :class:`lcpo.config.ModelConfig` in fp32 whatever the folder's dtype (the optimiser
    updates these weights; ``cfg.dtype`` is the compute dtype), with gradient checkpointing if asked."""
    if cfg.name == "tiny":
        model, tokenizer = build_tiny(cfg.tiny)
    else:
        model, tokenizer = load_pretrained(cfg.path, "float32", cfg.attn_implementation)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    return model, tokenizer


def save_policy(
    model: PreTrainedModel, tokenizer: object, path: str | Path, dtype: str, state: dict | None = None
) -> Path:
    """Saves ``model`` (or its whole ``state`` dict, e.g. gathered from shards) and ``tokenizer`` with
    ``save_pretrained``, the weights cast to ``dtype`` (the model itself is left as it is); tied weights stay tied,
    and ``config.json`` records ``dtype``.

    The folder is written as ``<path>.partial`` and moved into place once complete (:func:`_replace_folder`), so a
    run killed or out of disk while exporting never leaves a half-written model where a complete one was.
    """
    final = Path(path)
    path = final.with_name(final.name + ".partial")  # everything below writes here
    shutil.rmtree(path, ignore_errors=True)  # what an interrupted export left
    path.mkdir(parents=True)
    target = torch_dtype(dtype)
    cast: dict[int, torch.Tensor] = {}  # by data pointer, so tied weights map to one tensor
    weights = {}
    for key, value in (model.state_dict() if state is None else state).items():
        if value.is_floating_point():
            if value.data_ptr() not in cast:
                cast[value.data_ptr()] = value.to(target)
            value = cast[value.data_ptr()]
        weights[key] = value
    model.save_pretrained(path, state_dict=weights)
    config = copy.deepcopy(model.config)
    config.dtype = dtype
    config.save_pretrained(path)
    tokenizer.save_pretrained(path)
    _replace_folder(path, final)
    return final


def _replace_folder(new: Path, target: Path) -> None:
    """Moves the complete folder ``new`` to ``target``. A previous ``target`` is renamed aside first and removed
    last: whenever the process dies, a whole export sits at ``target`` or, between the two renames, at
    ``<target>.old``."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
