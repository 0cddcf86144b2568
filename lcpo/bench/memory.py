"""``python -m lcpo.bench memory``: peak memory of one LCPO update at a real vocabulary and response length, on a CPU.

Builds a randomly initialised Qwen2 with Qwen2's vocabulary (151,936 tokens) but a tiny body (hidden 64, 2 layers),
so the LM head dominates as it does at scale, and runs one update of the paper's recipe (clip, k3 KL against a
frozen reference, entropy bonus, AdamW: forward, backward, optimiser step) on ``rows`` responses of
``response_tokens`` after ``prompt_tokens``-token prompts. Prints, as JSON, the process's peak resident memory
(and its resident memory before the model was built, so the difference is the update's), and, for contrast, what
one fp32 copy of the full logits would take.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Sequence

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from lcpo.training.collector import RolloutBatch
from lcpo.config import AlgoConfig
from lcpo.training.update import ppo_update

MIB = 2**20


def peak_rss_mb() -> float:
    """This process's peak resident set size so far: ``VmHWM`` of this program's own address space, not
    ``getrusage``'s ``ru_maxrss``, which Linux carries over from the parent across fork and exec (started from a
    large test runner, it would report the runner's size)."""
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def rss_mb() -> float:
    """This process's resident set size now (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / MIB


def random_batch(rows: int, prompt_tokens: int, response_tokens: int, vocab: int, seed: int = 0) -> RolloutBatch:
    """One group of ``rows`` random prompt + response rows, random advantages."""
    gen = torch.Generator().manual_seed(seed)
    width = prompt_tokens + response_tokens
    response = torch.zeros(rows, width, dtype=torch.long)
    response[:, prompt_tokens:] = 1
    return RolloutBatch(
        input_ids=torch.randint(0, vocab, (rows, width), generator=gen),
        attention_mask=torch.ones(rows, width, dtype=torch.long),
        response_mask=response,
        rewards=torch.zeros(rows),
        advantages=torch.randn(rows, generator=gen),
        correct=torch.zeros(rows),
        lengths=torch.full((rows,), float(response_tokens)),
        budgets=torch.zeros(rows),
        modes=torch.zeros(rows, dtype=torch.long),
        truncated=torch.zeros(rows, dtype=torch.bool),
        group=torch.zeros(rows, dtype=torch.long),
        rollout_seconds=0.0,
    )


def measure(
    vocab: int = 151_936,
    hidden: int = 64,
    layers: int = 2,
    rows: int = 8,
    prompt_tokens: int = 256,
    response_tokens: int = 4096,
    micro_batch_tokens: int = 32768,
    logit_chunk_mb: float = 128.0,
    threads: int = 2,
) -> dict:
    """Runs the update and returns the measurements (see the module docstring)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    start_rss = rss_mb()
    config = Qwen2Config(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=prompt_tokens + response_tokens,
    )
    config._attn_implementation = "sdpa"
    policy = Qwen2ForCausalLM(config).train()
    reference = Qwen2ForCausalLM(config).eval().requires_grad_(False)
    reference.load_state_dict(policy.state_dict())
    algo = AlgoConfig(group_size=rows, prompts_per_step=1, mini_batch_prompts=1, micro_batch_tokens=micro_batch_tokens,
                      logit_chunk_mb=logit_chunk_mb)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=algo.lr, betas=tuple(algo.betas),
                                  weight_decay=algo.weight_decay)
    batch = random_batch(rows, prompt_tokens, response_tokens, vocab)
    before = peak_rss_mb()
    start = time.perf_counter()
    stats = ppo_update(policy, reference, batch, algo, optimizer)
    seconds = time.perf_counter() - start
    response_total = rows * response_tokens
    return {
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_before_update_mb": round(before, 1),
        "rss_at_start_mb": round(start_rss, 1),
        "full_fp32_logits_mb": round(response_total * vocab * 4 / MIB, 1),
        "update_seconds": round(seconds, 1),
        "loss": float(sum(stats["loss"])),
        "parameters": sum(p.numel() for p in policy.parameters()),
        "vocab": vocab, "hidden": hidden, "layers": layers, "rows": rows, "prompt_tokens": prompt_tokens,
        "response_tokens": response_tokens, "micro_batch_tokens": micro_batch_tokens, "logit_chunk_mb": logit_chunk_mb,
        "threads": threads,
    }


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="lcpo-bench memory", description=__doc__.split("\n\n")[0])
    defaults = measure.__defaults__
    names = measure.__code__.co_varnames[: measure.__code__.co_argcount]
    for name, default in zip(names, defaults):
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    result = measure(**vars(parser.parse_args(argv)))
    print(json.dumps(result, indent=1))
    return result
