"""``python -m lcpo.gpu_check`` (``make gpu-check``): three LCPO steps at the size of a real run, on one CUDA GPU.

A randomly initialised Qwen2 with the shape of DeepSeek-R1-Distill-Qwen-1.5B (hidden 1536, 28 layers, 12 heads, 2
KV heads, vocabulary 151,936; nothing is downloaded), HF generate rollouts, bf16 autocast, gradient checkpointing,
8 prompts x 4 samples with responses up to 1,024 tokens (a random model rarely stops early, so nearly every
response runs to the cap). Prints one JSON object: rollout and update tokens/s, step time (each step, and the median
of the steps after the first), peak GPU memory. Without CUDA it stops at once with a message and exit code 2.

It needs only what the GPU image has plus hydra-core, omegaconf and math-verify (``make gpu-check`` installs them
from ``wheels/``): it wires the run itself rather than through ``lcpo.cli.train``, whose plotting and logging imports
the image may lack.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Sequence

import lightning as L
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from lcpo.training.collector import RolloutCollector
from lcpo.config import AlgoConfig, BudgetConfig, PromptConfig, RewardConfig, RolloutConfig, TaskConfig, TrainerConfig
from lcpo.training.datamodule import PromptDataModule
from lcpo.training.module import LCPOModule
from lcpo.tasks.prompts import PromptBuilder
from lcpo.config.reward import build_reward
from lcpo.rollout.hf import HFEngine
from lcpo.tasks import build_grader, build_task
from lcpo.models.tiny import BOS, CHARACTERS, EOS, PAD, SPECIAL_TOKENS, THINK_TOKENS, UNK

#: DeepSeek-R1-Distill-Qwen-1.5B's architecture (its config.json), with random weights.
R1_DISTILL_1_5B = dict(
    hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
    vocab_size=151_936, max_position_embeddings=131_072, rope_theta=10_000.0, rms_norm_eps=1e-6,
    tie_word_embeddings=False,
)


def wide_tokenizer(vocab_size: int):
    """The tiny character tokenizer padded with placeholder tokens to ``vocab_size``, so that every id a random
    model of that vocabulary samples decodes."""
    tokens = [*SPECIAL_TOKENS, *CHARACTERS, *THINK_TOKENS]
    tokens += [f"<x{i}>" for i in range(vocab_size - len(tokens))]
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, eos_token=EOS, bos_token=BOS,
                                   unk_token=UNK, padding_side="left")


def run(steps: int, prompts: int, samples: int, max_new_tokens: int, shape: dict = R1_DISTILL_1_5B,
        accelerator: str = "gpu") -> dict:
    """Trains ``steps`` rollout steps of a random Qwen2 of ``shape``; returns the figures :func:`main` prints
    (``accelerator="cpu"`` and a small shape check the wiring without a GPU)."""
    gpu = accelerator == "gpu"
    tokenizer = wide_tokenizer(shape["vocab_size"])
    torch.manual_seed(0)
    policy = Qwen2ForCausalLM(Qwen2Config(**shape, eos_token_id=tokenizer.eos_token_id,
                                          pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id))
    policy.generation_config.eos_token_id = tokenizer.eos_token_id
    policy.gradient_checkpointing_enable()
    policy.config.use_cache = False  # training forward passes; generate keeps its KV cache
    algo = AlgoConfig(group_size=samples, prompts_per_step=prompts, mini_batch_prompts=prompts)
    rollout = RolloutConfig(temperature=1.0, max_new_tokens=max_new_tokens, batch_size=prompts * samples)
    budgets = BudgetConfig(low=max(1, max_new_tokens // 10), high=max_new_tokens)
    task = TaskConfig()
    collector = RolloutCollector(
        engine=HFEngine(policy, tokenizer, batch_size=rollout.batch_size), grader=build_grader(task),
        reward=build_reward(RewardConfig()), sampling=rollout.sampling(), group_size=samples,
        pad_id=tokenizer.pad_token_id, seed=0, scale_std=algo.scale_std, adv_eps=algo.adv_eps,
        samples_per_table=TrainerConfig().samples_per_table,
    )
    sampler = budgets.sampler()
    module = LCPOModule(policy, tokenizer, algo, collector,
                        (sampler.distribution.smallest, sampler.distribution.largest), rollout.temperature,
                        reference_dtype=torch.bfloat16)
    datamodule = PromptDataModule(build_task(task), sampler, PromptBuilder(PromptConfig(), tokenizer), prompts,
                                  seed=0, start_step=lambda: module.rollout_step)
    timings = _Timings()
    trainer = L.Trainer(accelerator=accelerator, devices=1, precision="bf16-mixed", max_steps=steps * algo.updates_per_step,
                        max_epochs=-1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[timings], use_distributed_sampler=False)
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, datamodule=datamodule)
    later = timings.steps[1:] or timings.steps
    return {
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "torch": torch.__version__,
        "params_billion": round(sum(p.numel() for p in policy.parameters()) / 1e9, 3),
        "prompts_x_samples": f"{prompts} x {samples}",
        "max_new_tokens": max_new_tokens,
        "steps": timings.steps,
        "median_after_first": {key: statistics.median(s[key] for s in later) for key in later[0]},
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if gpu else None,
    }


class _Timings(L.Callback):
    """Collects the per-step perf metrics the module logs."""

    KEYS = {"perf/rollout_tokens_per_s": "rollout_tokens_per_s", "perf/train_tokens_per_s": "update_tokens_per_s",
            "perf/step_seconds": "step_seconds", "perf/rollout_seconds": "rollout_seconds",
            "rollout/mean_length": "mean_response_tokens"}

    def __init__(self):
        self.steps: list[dict] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        metrics = trainer.callback_metrics
        self.steps.append({name: round(float(metrics[key]), 2) for key, name in self.KEYS.items()})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lcpo.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"gpu-check needs a CUDA GPU, and torch {torch.__version__} sees none on this machine "
              f"(CUDA build: {torch.version.cuda or 'no'}); run it on a GPU machine.", file=sys.stderr)
        return 2
    start = time.perf_counter()
    result = run(args.steps, args.prompts, args.samples, args.max_new_tokens)
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
