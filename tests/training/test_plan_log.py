"""The memory plan of a run: the paper's experiments fit one and eight 80 GB GPUs, and a GPU run logs its plan
before anything else is built."""

import logging

import pytest

from lcpo.algo.memory_plan import SHAPES, plan
from lcpo.training.build import build
from lcpo.training.plan_log import run_shape

GPU_80GB = 79 * 2**30


@pytest.mark.parametrize("experiment", ["l1_exact", "l1_max"])
@pytest.mark.parametrize("gpus", [1, 8])
@pytest.mark.parametrize("trainer", ["ddp", "fsdp"])
def test_the_paper_experiments_fit_one_and_eight_80gb_gpus(compose_train, tmp_path, experiment, gpus, trainer):
    data = tmp_path / "train.parquet"  # the schema checks it exists; nothing is loaded here
    data.touch()
    cfg = compose_train(f"experiment={experiment}", f"trainer={trainer}", f"model.path={tmp_path}",
                        f"task.path={data}", output_dir=tmp_path, fast=False)
    run = run_shape(cfg, gpus, GPU_80GB)
    assert (run.strategy, run.gpus, run.compute_dtype, run.reference_dtype) == (trainer, gpus, "bfloat16", "bfloat16")
    assert run.vllm_share == cfg.rollout.vllm.gpu_memory_utilization and run.gradient_checkpointing
    result = plan(SHAPES["1.5B"], run)
    assert result.fits, result
    assert result.gpu_bytes - result.peak > 0.1 * GPU_80GB  # headroom for the allocator's fragmentation


def test_a_gpu_run_logs_its_memory_plan_first(compose_train, tmp_path, caplog):
    cfg = compose_train("trainer.accelerator=gpu", output_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="lcpo.training.plan_log"), pytest.raises(ValueError, match="trainer:"):
        build(cfg)  # no GPU here: Lightning refuses once the plan is out
    (message,) = [r.getMessage() for r in caplog.records if r.name == "lcpo.training.plan_log"]
    assert message.startswith("memory plan per GPU: auto over 1 GPU(s)") and "fits: yes" in message
