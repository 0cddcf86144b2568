"""Lightning's training strategy by the name ``trainer.strategy`` gives."""

from __future__ import annotations

import lightning as L


def build_strategy(name: str) -> str | L.pytorch.strategies.Strategy:
    """Lightning's strategy by name, except ``fsdp``: PyTorch's FSDP2 through Lightning's ``ModelParallelStrategy``
    (the module shards the policy in ``configure_model``; checkpoints hold whole weights, so a run resumes on any
    number of devices), and ``ddp``, whose gradients are views of its all-reduce buckets rather than a second copy
    beside them."""
    if name == "fsdp":
        return L.pytorch.strategies.ModelParallelStrategy(save_distributed_checkpoint=False)
    if name == "ddp":
        return L.pytorch.strategies.DDPStrategy(gradient_as_bucket_view=True)
    return name
