"""Trains with the overrides on the command line, in this process and the peers Lightning launches for it; then each
rank saves its whole policy weights (gathered when sharded), its optimiser step count, under DDP the gradient
buckets it all-reduced, and, when the fake vLLM is in use, its call log and the process-group state its engine
saw, to ``<output_dir>/rank<k>.pt``. The distributed tests compare the ranks. ``ckpt_path`` resumes as in
``python -m lcpo.train``; with ``LCPO_TEST_WAIT_AT_ROLLOUT`` set, rollouts report as in ``tests/kill_train.py``."""

import os
import sys
from pathlib import Path

import lightning as L
import torch
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

from lcpo.config import compose_config, validate
from lcpo.models.sharding import full_state_dict
from lcpo.cli.train import build
from lcpo.training.checkpoints import resolve_ckpt_path


class CountAllReduces(L.Callback):
    """Records the index of every gradient bucket DDP all-reduces (through a comm hook doing DDP's default)."""

    def __init__(self) -> None:
        self.buckets: list[int] = []

    def on_train_start(self, trainer, pl_module) -> None:
        model = trainer.strategy.model
        if isinstance(model, DistributedDataParallel):
            model.register_comm_hook(None, self.hook)

    def hook(self, state, bucket):
        self.buckets.append(bucket.index())
        return allreduce_hook(None, bucket)


def main() -> None:
    torch.set_num_threads(1)
    if os.environ.get("LCPO_TEST_WAIT_AT_ROLLOUT"):
        import kill_train

        kill_train.install()
    cfg = validate(compose_config("train", sys.argv[1:]))
    module, datamodule, trainer = build(cfg)
    counter = CountAllReduces()
    trainer.callbacks.append(counter)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resolve_ckpt_path(cfg.ckpt_path, Path(cfg.output_dir)))
    dump = {"weights": full_state_dict(module.policy), "world_size": trainer.world_size,
            "optimizer_steps": trainer.global_step, "allreduced_buckets": counter.buckets}
    vllm = sys.modules.get("vllm")
    if vllm is not None:
        dump["vllm_calls"] = vllm.CALLS
        dump["vllm_engines"] = [{"distributed": e.distributed, "world_size": e.world_size, "env": e.env}
                                for e in vllm.ENGINES]
    torch.save(dump, f"{cfg.output_dir}/rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main()
