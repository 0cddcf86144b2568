"""``python -m lcpo.bench plan``: per-GPU memory of a run, item by item, and the largest micro-batch that fits.

The model is a named shape (``1.5B``, ``7B``: DeepSeek-R1-Distill-Qwen) or a folder with a ``config.json``; the
run is its strategy over N GPUs, dtypes, whether a reference is kept, sequence lengths and vLLM's share. The
formulas are ``lcpo.algo.memory_plan``'s; :func:`cpu_plan` restates a ``lcpo.bench memory`` measurement as a plan,
which is how the formulas are checked against peaks measured on the CPU.

Example::

    python -m lcpo.bench plan --model 1.5B --strategy ddp --gpus 8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from lcpo.algo.memory_plan import SHAPES, ModelShape, Plan, RunShape, format_plan, plan, shape_from_config


def load_shape(model: str) -> ModelShape:
    """A named shape, or the one a folder's (or a file's) ``config.json`` describes."""
    if model in SHAPES:
        return SHAPES[model]
    path = Path(model).expanduser()
    path = path / "config.json" if path.is_dir() else path
    if not path.is_file():
        raise ValueError(f"--model {model}: neither a named shape ({', '.join(SHAPES)}) nor a config.json")
    return shape_from_config(json.loads(path.read_text()))


def cpu_plan(measurement: dict) -> tuple[Plan, int]:
    """The plan of the update ``lcpo.bench memory`` measured (its JSON output), and the tokens of its largest
    micro-batch: one CPU process, fp32 compute, an fp32 reference, no checkpointing, AdamW's per-tensor loop."""
    m = measurement
    shape = ModelShape(hidden=m["hidden"], layers=m["layers"], heads=2, kv_heads=2, intermediate=4 * m["hidden"],
                       vocab=m["vocab"], tied=False)
    width = m["prompt_tokens"] + m["response_tokens"]
    rows = max(1, min(m["rows"], m["micro_batch_tokens"] // width))
    run = RunShape(strategy="single", gpus=1, compute_dtype="float32", reference_dtype="float32",
                   gradient_checkpointing=False, micro_batch_tokens=rows * width, logit_chunk_mb=m["logit_chunk_mb"],
                   vllm_share=0.0, runtime_bytes=0, foreach_adam=False)
    return plan(shape, run, rows * width), rows * width


def main(argv: Sequence[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(prog="lcpo-bench plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="1.5B", help=f"a named shape ({', '.join(SHAPES)}) or a model folder")
    parser.add_argument("--strategy", default="ddp", choices=("single", "ddp", "fsdp"))
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--gpu-gib", type=float, default=79.0,
                        help="memory per GPU in GiB, as torch reports it (an 80 GB H100 or A100: 79-80 GiB)")
    parser.add_argument("--compute-dtype", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument("--reference-dtype", default="bfloat16", choices=("bfloat16", "float32", "none"))
    parser.add_argument("--no-gradient-checkpointing", action="store_true")
    parser.add_argument("--micro-batch-tokens", type=int, default=RunShape.micro_batch_tokens)
    parser.add_argument("--logit-chunk-mb", type=float, default=RunShape.logit_chunk_mb)
    parser.add_argument("--max-prompt-tokens", type=int, default=RunShape.max_prompt_tokens)
    parser.add_argument("--max-new-tokens", type=int, default=RunShape.max_new_tokens)
    parser.add_argument("--vllm-share", type=float, default=RunShape.vllm_share, help="0: no vLLM")
    args = parser.parse_args(argv)
    run = RunShape(
        strategy=args.strategy, gpus=args.gpus, gpu_bytes=int(args.gpu_gib * 2**30), compute_dtype=args.compute_dtype,
        reference_dtype=None if args.reference_dtype == "none" else args.reference_dtype,
        gradient_checkpointing=not args.no_gradient_checkpointing, micro_batch_tokens=args.micro_batch_tokens,
        logit_chunk_mb=args.logit_chunk_mb, max_prompt_tokens=args.max_prompt_tokens,
        max_new_tokens=args.max_new_tokens, vllm_share=args.vllm_share,
    )
    shape = load_shape(args.model)
    result = plan(shape, run)
    print(format_plan(shape, run, result, title=f"{args.model}, {args.strategy} over {args.gpus} x {args.gpu_gib:g} GiB"))
    return result
