"""The memory plan: its parameter count is the model's, its trainer-side items match peaks measured on the CPU
(within 15%), and ``python -m lcpo.bench plan`` prints the items, the largest micro-batch and whether it fits."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from transformers import Qwen2Config, Qwen2ForCausalLM

from lcpo.algo.memory_plan import GIB, SHAPES, RunShape, largest_micro_batch, plan
from lcpo.bench.plan import cpu_plan, load_shape, main

ROOT = Path(__file__).resolve().parents[2]
SMALL = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=1000)


@pytest.mark.parametrize("tied", [True, False])
def test_the_parameter_count_is_the_models(tied, tmp_path):
    model = Qwen2ForCausalLM(Qwen2Config(**SMALL, tie_word_embeddings=tied))
    model.config.save_pretrained(tmp_path)
    shape = load_shape(str(tmp_path))
    assert shape.params == sum(p.numel() for p in model.parameters()) and shape.tied == tied


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        # the LM head dominates: a 32k vocabulary, 128 MiB logit chunks
        ["--vocab", "32768", "--hidden", "64", "--layers", "2", "--rows", "4", "--prompt-tokens", "64",
         "--response-tokens", "448"],
        # the decoder dominates, in two micro-batches
        ["--vocab", "8192", "--hidden", "256", "--layers", "4", "--rows", "8", "--prompt-tokens", "64",
         "--response-tokens", "448", "--micro-batch-tokens", "2048", "--logit-chunk-mb", "16"],
    ],
)
def test_the_trainer_side_formulas_match_peaks_measured_on_the_cpu(args):
    # a fixed mmap threshold makes the allocator hand freed tensors back, so resident memory follows live tensors
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_MMAP_THRESHOLD_": "65536"}
    proc = subprocess.run([sys.executable, "-m", "lcpo.bench", "memory", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    measurement = json.loads(proc.stdout[proc.stdout.index("{"):])
    measured = (measurement["peak_rss_mb"] - measurement["rss_at_start_mb"]) * 2**20
    predicted, _ = cpu_plan(measurement)
    assert abs(predicted.update_peak / measured - 1) < 0.15, (predicted, measured)


def test_fsdp_shards_the_state_and_ddp_keeps_its_buckets_through_the_rollout():
    shape = SHAPES["1.5B"]
    ddp, fsdp = plan(shape, RunShape(strategy="ddp", gpus=8)), plan(shape, RunShape(strategy="fsdp", gpus=8))
    assert fsdp.kept["AdamW moments (fp32)"] * 8 == ddp.kept["AdamW moments (fp32)"] == 8 * shape.params
    assert "gradients (DDP buckets, fp32)" in ddp.kept and "gradients (fp32)" in fsdp.update
    assert fsdp.rollout_peak < ddp.rollout_peak


def test_the_largest_micro_batch_is_the_edge_of_what_fits():
    run = RunShape(strategy="ddp", gpus=1, vllm_share=0.5, max_prompt_tokens=0, max_new_tokens=1)
    shape = SHAPES["1.5B"]
    tokens = largest_micro_batch(shape, run)
    assert tokens > 0
    assert plan(shape, run, tokens).update_peak <= run.gpu_bytes < plan(shape, run, tokens + 1024).update_peak
    assert largest_micro_batch(shape, replace(run, gpu_bytes=20 * GIB)) == 0  # the state alone is too big
    assert largest_micro_batch(SHAPES["7B"], run) == 0 < largest_micro_batch(SHAPES["7B"], replace(run, strategy="fsdp",
                                                                                                   gpus=8))


def test_the_cli_prints_every_item_and_the_verdict(capsys):
    result = main(["--model", "1.5B", "--strategy", "ddp", "--gpus", "8"])
    out = capsys.readouterr().out
    for item in (*result.kept, *result.update, *result.rollout):
        assert item in out
    assert "largest micro-batch whose update fits:" in out and f"fits: {'yes' if result.fits else 'NO'}" in out
