"""Fully sharded training (PyTorch FSDP2, ``fully_shard``) of a transformers causal LM, and reading it back whole.

``trainer=fsdp`` runs Lightning's ``ModelParallelStrategy``; the module calls :func:`shard_model` from its
``configure_model`` hook. Every decoder layer becomes its own unit (its parameters are gathered just for its
forward and backward), then the model itself, which holds the embeddings, the final norm and the head. FSDP2 changes
the model's class in place, so ``model.generate`` and ``model(...)`` keep working and parameter names stay those of
transformers (what ``save_pretrained`` and vLLM's ``load_weights`` expect).

Gradients are reduce-scattered after every backward pass, so several micro-batches per optimiser step accumulate
sharded gradients (no unsharded gradient is kept between them), and every rank must run the same number of forward
and backward passes: the collector gives each rank the same number of rows.

Anything that reads whole weights (the vLLM push, the HF export) gathers them with collectives, so every rank must
call it, in the same order.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules transformers never splits across devices (``_no_split_modules``: the decoder layers)."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(f"{type(model).__name__} names no decoder layer class (_no_split_modules) to shard by")
    return layers


def shard_model(model: torch.nn.Module, mesh) -> torch.nn.Module:
    """Shards ``model`` over ``mesh``: one FSDP unit per decoder layer, then the rest as the root unit.

    A 2-D mesh (Lightning's ``(data_parallel, tensor_parallel)``: nodes x devices per node) shards within a node and
    replicates across nodes (HSDP); on one node that is plain FSDP over its devices.
    """
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def is_sharded(model: torch.nn.Module) -> bool:
    return isinstance(model, FSDPModule)


def whole(tensor: torch.Tensor) -> torch.Tensor:
    """A plain tensor for a DTensor (gathered; e.g. the replicated norm ``clip_grad_norm_`` returns under FSDP)."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def full_weights(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, whole tensor)`` for every parameter name, a tied one under each of its names (``lm_head.weight``
    and ``model.embed_tokens.weight``), gathered one at a time from their shards (a collective on every rank) so
    that at most one whole parameter is materialised at once."""
    for name, param in model.named_parameters(remove_duplicate=False):
        yield name, whole(param.detach())


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole state dict on the CPU, for ``save_pretrained``, built there one tensor at a time: an export never
    holds a second copy of the weights (or of their cast) on the accelerator, where a colocated engine may be awake.
    Tensors that share memory (tied weights) share their copy too. A sharded model is gathered (every rank calls)."""
    copies: dict[tuple, torch.Tensor] = {}
    out = {}
    for name, value in model.state_dict().items():
        local = value.to_local() if isinstance(value, DTensor) else value
        key = (local.device, local.data_ptr(), tuple(local.shape), tuple(local.stride()))
        if key not in copies:
            copies[key] = whole(value.detach()).cpu()
        out[name] = copies[key]
    return out


@contextmanager
def gathered(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Whole weights on every rank for the duration, with no collective inside: HF ``generate`` may then run a
    different number of decoding steps on each rank. Nothing to do for a model that is not sharded."""
    units = [m for m in model.modules() if isinstance(m, FSDPModule)]
    if not units:
        yield model
        return
    for unit in units:
        unit.unshard()
        unit.set_reshard_after_forward(False, recurse=False)
    try:
        yield model
    finally:
        for unit in units:
            # the root unit never reshards after forward (its backward follows at once); the layers do
            if unit is not model:
                unit.set_reshard_after_forward(True, recurse=False)
            unit.reshard()
