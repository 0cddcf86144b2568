"""The memory plan of a GPU run (``lcpo.algo.memory_plan``), logged when the run starts, with a warning when it
does not fit."""

from __future__ import annotations

import logging

import torch

from lcpo.algo.memory_plan import Plan, RunShape, format_plan, plan, shape_from_config
from lcpo.config import TrainConfig

log = logging.getLogger(__name__)


def run_shape(cfg: TrainConfig, gpus: int, gpu_bytes: int) -> RunShape:
    """The plan's settings for ``cfg`` on ``gpus`` GPUs (of one node) of ``gpu_bytes`` each."""
    strategy = cfg.trainer.strategy
    return RunShape(
        strategy="fsdp" if strategy == "fsdp" else "ddp" if "ddp" in strategy else "single",
        gpus=gpus if strategy == "fsdp" or "ddp" in strategy else 1,
        gpu_bytes=gpu_bytes,
        compute_dtype=cfg.model.dtype,
        reference_dtype=cfg.model.dtype if cfg.algo.kl_coef > 0 else None,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        micro_batch_tokens=cfg.algo.micro_batch_tokens,
        logit_chunk_mb=cfg.algo.logit_chunk_mb,
        max_prompt_tokens=cfg.rollout.vllm.max_prompt_tokens,
        max_new_tokens=cfg.rollout.max_new_tokens,
        vllm_share=cfg.rollout.vllm.gpu_memory_utilization if cfg.rollout.name == "vllm" else 0.0,
    )


def log_plan(cfg: TrainConfig, model: torch.nn.Module) -> Plan | None:
    """Logs the plan of this run on this machine's GPUs (80 GB ones where none is visible) and warns when it does
    not fit; returns it (None for a model whose config the plan cannot read)."""
    try:
        shape = shape_from_config(model.config.to_dict())
    except KeyError as err:
        log.info("no memory plan for %s (its config has no %s)", type(model).__name__, err)
        return None
    visible = torch.cuda.device_count()
    devices = cfg.trainer.devices
    gpus = visible if devices in (-1, "-1", "auto") else len(devices) if isinstance(devices, list) else int(devices)
    gpu_bytes = torch.cuda.get_device_properties(0).total_memory if visible else RunShape.gpu_bytes
    run = run_shape(cfg, max(1, gpus), gpu_bytes)
    result = plan(shape, run)
    log.info("%s", format_plan(shape, run, result, title=f"{cfg.trainer.strategy} over {run.gpus} GPU(s)"))
    if not result.fits:
        log.warning(
            "the memory plan puts this run's peak at %.1f GiB per GPU, over the GPU's %.1f GiB: lower "
            "algo.micro_batch_tokens or rollout.vllm.gpu_memory_utilization, or use trainer=fsdp "
            "(python -m lcpo.bench plan sizes it)", result.peak / 2**30, result.gpu_bytes / 2**30,
        )
    return result
