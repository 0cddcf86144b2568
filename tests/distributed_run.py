"""Trains with the overrides on the command line, in this process and the peers Lightning launches for it; then each
rank saves its whole policy weights (gathered when sharded) and, when the fake vLLM is in use, its call log and
the process-group state its engine saw, to ``<output_dir>/rank<k>.pt``. The distributed tests compare the ranks."""

import sys

import torch

from lcpo.config import compose_config, validate
from lcpo.sharding import full_state_dict
from lcpo.train import build


def main() -> None:
    torch.set_num_threads(1)
    cfg = validate(compose_config("train", sys.argv[1:]))
    module, datamodule, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    dump = {"weights": full_state_dict(module.policy), "world_size": trainer.world_size}
    vllm = sys.modules.get("vllm")
    if vllm is not None:
        dump["vllm_calls"] = vllm.CALLS
        dump["vllm_engines"] = [{"distributed": e.distributed, "world_size": e.world_size, "env": e.env}
                                for e in vllm.ENGINES]
    torch.save(dump, f"{cfg.output_dir}/rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main()
