"""The GPU check: a clear, quick refusal without CUDA, its per-run wiring on a small shape on the CPU, and the
table that sets measured peaks beside the plan."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lcpo.algo.memory_plan import GIB, ModelShape, RunShape, plan
from lcpo.cli.gpu_check import compare, format_comparison, one_run

ROOT = Path(__file__).resolve().parents[2]
SMALL = ModelShape(hidden=32, layers=2, heads=4, kv_heads=2, intermediate=64, vocab=512, tied=False)
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_check_without_cuda_fails_fast_and_says_why():
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lcpo.cli.gpu_check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert proc.returncode == 2 and "needs a CUDA GPU" in proc.stderr
    assert time.perf_counter() - start < 60


def test_gpu_check_run_wiring_on_a_small_shape():
    result = one_run("gpu", steps=2, prompts=2, samples=2, max_new_tokens=16, shape=SMALL, accelerator="cpu")
    assert len(result["steps"]) == 2 and result["precision"] == "bf16-mixed"
    assert result["master_dtypes"] == ["torch.float32"] and result["reference_dtypes"] == ["torch.bfloat16"]
    assert result["reference_buffer_dtypes"] == ["torch.float32"]
    assert result["median_after_first"]["update_tokens_per_s"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ddp", "fsdp"])
def test_gpu_check_distributed_runs_on_one_device(name):
    # its own process, as the check runs it: the run's process group outlives its trainer
    code = ("import json; from lcpo.cli.gpu_check import one_run; from tests.cli.test_gpu_check import SMALL; "
            f"print(json.dumps(one_run({name!r}, 2, 2, 2, 16, SMALL, accelerator='cpu')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["strategy"] == name and len(result["steps"]) == 2


def test_measured_peaks_are_set_beside_the_plan():
    predicted = plan(SMALL, RunShape(strategy="single", vllm_share=0.0, runtime_bytes=0))
    measured = {"rollout": 3 * GIB, "update": int(predicted.update_peak * 1.1), "push": 2 * GIB}
    rows = compare(measured, predicted)
    assert rows["rollout"] == {"measured_gib": 3.0, "plan_gib": None}
    assert rows["update"]["plan_gib"] == round(predicted.update_peak / GIB, 2)
    table = format_comparison({"gpu": rows}).splitlines()
    assert table[0].split() == ["run", "phase", "measured", "GiB", "plan", "GiB", "ratio"]
    update = next(line.split() for line in table if line.split()[1] == "update")
    assert update[0] == "gpu" and float(update[4]) == pytest.approx(1.1, abs=0.02)
    assert next(line.split() for line in table if line.split()[1] == "rollout")[3:] == ["-", "-"]
