"""The GPU check: a clear, quick refusal without CUDA, and its training wiring on a small shape on the CPU."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lcpo.cli.gpu_check import R1_DISTILL_1_5B, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_check_without_cuda_fails_fast_and_says_why():
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lcpo.cli.gpu_check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "needs a CUDA GPU" in proc.stderr
    assert time.perf_counter() - start < 60


def test_gpu_check_wiring_on_a_small_shape():
    shape = {**R1_DISTILL_1_5B, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512}
    result = run(steps=2, prompts=2, samples=2, max_new_tokens=16, shape=shape, accelerator="cpu")
    assert len(result["steps"]) == 2 and result["prompts_x_samples"] == "2 x 2"
    assert set(result["median_after_first"]) == {"rollout_tokens_per_s", "update_tokens_per_s", "step_seconds",
                                                 "rollout_seconds", "mean_response_tokens"}
    assert result["median_after_first"]["update_tokens_per_s"] > 0
