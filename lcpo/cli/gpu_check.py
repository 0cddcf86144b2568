"""``python -m lcpo.gpu_check`` (``make gpu-check``): a few LCPO steps at the size of a real run, on one CUDA GPU.

A randomly initialised Qwen2 with the shape of DeepSeek-R1-Distill-Qwen-1.5B (``lcpo.algo.memory_plan.SHAPES``;
nothing is downloaded) trains ``--steps`` rollout steps of ``--prompts`` x ``--samples`` responses of up to
``--max-new-tokens`` tokens (a random model rarely stops early) under each of ``trainer=gpu``, ``trainer=ddp`` and
``trainer=fsdp`` on the one device, each in its own process: bf16 autocast over fp32 master weights, gradient
checkpointing, a bf16 reference (its RoPE buffers in fp32), HF generate rollouts, then an HF export of the policy.
Peak GPU memory is taken per phase (rollout, update, weight push, export) and printed next to what
``lcpo.bench plan`` predicts for the update. Where vLLM is importable, a fourth run samples with the colocated
vLLM engine (sleep mode, weight push); otherwise the output says that it was skipped and why. Prints one JSON
object. Without CUDA it stops at once with a message and exit code 2.

It needs only what the GPU image has plus hydra-core, omegaconf and math-verify (``make gpu-check`` installs them
from ``wheels/``): it builds each run's module and data module through :func:`lcpo.training.build.build_parts`, with
its own policy and a trainer without checkpoints or loggers, so none of the plotting and logging imports of a full
run (which the image may lack) are needed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, Callable, Iterator, Sequence

import torch

from lcpo.algo.memory_plan import GIB, SHAPES, ModelShape, Plan, RunShape, plan

#: The runs the check makes: (name, trainer strategy, rollout engine).
RUNS = {"gpu": ("single", "hf"), "ddp": ("ddp", "hf"), "fsdp": ("fsdp", "hf"), "vllm": ("single", "vllm")}
STRATEGY_NAMES = {"single": "auto", "ddp": "ddp", "fsdp": "fsdp"}
#: The longest prompt the synthetic task builds with the check's prompt settings, in tokens (a generous bound).
PROMPT_TOKENS = 256
#: The most one run may take before the check gives up on it.
RUN_TIMEOUT_S = 300


def shape_config(shape: ModelShape) -> dict:
    """Qwen2Config keyword arguments for ``shape``."""
    return dict(hidden_size=shape.hidden, intermediate_size=shape.intermediate, num_hidden_layers=shape.layers,
                num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads, vocab_size=shape.vocab,
                tie_word_embeddings=shape.tied, max_position_embeddings=131_072, rope_theta=10_000.0,
                rms_norm_eps=1e-6)


def wide_tokenizer(vocab_size: int):
    """The tiny character tokenizer padded with placeholder tokens to ``vocab_size``, so that every id a random
    model of that vocabulary samples decodes."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from lcpo.models.tiny import BOS, CHARACTERS, EOS, PAD, SPECIAL_TOKENS, THINK_TOKENS, UNK

    tokens = [*SPECIAL_TOKENS, *CHARACTERS, *THINK_TOKENS]
    tokens += [f"<x{i}>" for i in range(vocab_size - len(tokens))]
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, eos_token=EOS, bos_token=BOS,
                                   unk_token=UNK, padding_side="left")


class PhasePeaks:
    """Peak allocated GPU memory per named phase (over every call of it), from the allocator's counters."""

    def __init__(self):
        self.peaks: dict[str, int] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        try:
            yield
        finally:
            torch.cuda.synchronize()
            self.peaks[name] = max(self.peaks.get(name, 0), torch.cuda.max_memory_allocated())

    def wrap(self, name: str, call: Callable) -> Callable:
        def measured(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return call(*args, **kwargs)

        return measured


def check_plan(shape: ModelShape, strategy: str, micro_batch_tokens: int, max_new_tokens: int, gpu_bytes: int,
               vllm_share: float) -> Plan:
    """What ``lcpo.bench plan`` predicts for one run of the check, as the allocator counts (no CUDA context)."""
    run = RunShape(strategy=strategy, gpus=1, gpu_bytes=gpu_bytes, micro_batch_tokens=micro_batch_tokens,
                   max_prompt_tokens=PROMPT_TOKENS, max_new_tokens=max_new_tokens, vllm_share=vllm_share,
                   runtime_bytes=0)
    return plan(shape, run)


def compare(measured: dict[str, int], predicted: Plan) -> dict[str, dict[str, float | None]]:
    """Measured peaks per phase next to the plan's, in GiB (None where the plan has no figure for the phase):
    the update against its update peak, the push and the export against what it keeps."""
    kept = sum(predicted.kept.values())
    plan_by_phase = {"update": predicted.update_peak, "push": kept, "export": kept}
    return {
        phase: {"measured_gib": round(value / GIB, 2),
                "plan_gib": round(plan_by_phase[phase] / GIB, 2) if phase in plan_by_phase else None}
        for phase, value in measured.items()
    }


def format_comparison(rows: dict[str, dict[str, dict[str, float | None]]]) -> str:
    """One line per run and phase: measured peak, the plan's, and measured over planned."""
    lines = [f"{'run':6} {'phase':8} {'measured GiB':>13} {'plan GiB':>9} {'ratio':>6}"]
    for run, phases in rows.items():
        for phase, row in phases.items():
            planned, measured = row["plan_gib"], row["measured_gib"]
            ratio = f"{measured / planned:6.2f}" if planned else f"{'-':>6}"
            lines.append(f"{run:6} {phase:8} {measured:13.2f} {planned if planned is not None else '-':>9} {ratio}")
    return "\n".join(lines)


def one_run(name: str, steps: int, prompts: int, samples: int, max_new_tokens: int, shape: ModelShape,
            accelerator: str = "gpu") -> dict:
    """Trains ``steps`` rollout steps of a random Qwen2 of ``shape`` as run ``name`` of :data:`RUNS` and exports
    it; returns its figures (``accelerator="cpu"`` and a small shape check the wiring without a GPU)."""
    import lightning as L
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from lcpo.config import AlgoConfig, BudgetConfig, ModelConfig, RolloutConfig, TrainConfig, VLLMConfig
    from lcpo.models.load import save_policy
    from lcpo.models.sharding import full_state_dict
    from lcpo.training.build import build_parts
    from lcpo.training.strategies import build_strategy

    strategy, engine_name = RUNS[name]
    gpu = accelerator == "gpu"
    tokenizer = wide_tokenizer(shape.vocab)
    torch.manual_seed(0)
    config = Qwen2Config(**shape_config(shape), eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)
    with torch.device("cuda" if gpu else "cpu"):  # random init on the GPU: seconds, not a minute on the CPU
        policy = Qwen2ForCausalLM(config)
    policy.generation_config.eos_token_id = tokenizer.eos_token_id
    policy.gradient_checkpointing_enable()
    policy.config.use_cache = False  # training forward passes; the engines keep their own caches
    cfg = TrainConfig(
        model=ModelConfig(dtype="bfloat16"),
        algo=AlgoConfig(group_size=samples, prompts_per_step=prompts, mini_batch_prompts=prompts),
        rollout=RolloutConfig(name=engine_name, temperature=1.0, max_new_tokens=max_new_tokens,
                              batch_size=prompts * samples,
                              vllm=VLLMConfig(max_prompt_tokens=PROMPT_TOKENS, gpu_memory_utilization=0.3)),
        budget=BudgetConfig(low=max(1, max_new_tokens // 10), high=max_new_tokens),
    )
    algo, rollout = cfg.algo, cfg.rollout
    module, datamodule = build_parts(cfg, policy, tokenizer)
    collector, engine = module.collector, module.collector.engine
    peaks = PhasePeaks() if gpu else None
    if peaks is not None:
        collector.collect = peaks.wrap("rollout", collector.collect)
        module._update = peaks.wrap("update", module._update)
        engine.sync_weights = peaks.wrap("push", engine.sync_weights)
    timings = _Timings()
    trainer = L.Trainer(accelerator=accelerator, devices=1, strategy=build_strategy(STRATEGY_NAMES[strategy]),
                        precision="bf16-mixed", max_steps=steps * algo.updates_per_step, max_epochs=-1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[timings], use_distributed_sampler=False)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    with tempfile.TemporaryDirectory() as folder, peaks.phase("export") if peaks else _nothing():
        save_policy(policy, tokenizer, folder, "bfloat16", full_state_dict(policy))
    later = timings.steps[1:] or timings.steps
    ref = module.ref_model
    result = {
        "run": name, "strategy": strategy, "engine": engine_name, "precision": str(trainer.precision),
        "master_dtypes": sorted({str(p.dtype) for p in policy.parameters()}),
        "reference_dtypes": sorted({str(p.dtype) for p in ref.parameters()}),
        "reference_buffer_dtypes": sorted({str(b.dtype) for b in ref.buffers()}),
        "steps": timings.steps,
        "median_after_first": {key: statistics.median(s[key] for s in later) for key in later[0]},
        "seconds": round(time.perf_counter() - start, 1),
    }
    if peaks is not None:
        predicted = check_plan(shape, strategy, algo.micro_batch_tokens, max_new_tokens,
                               torch.cuda.get_device_properties(0).total_memory,
                               rollout.vllm.gpu_memory_utilization if engine_name == "vllm" else 0.0)
        result["memory"] = compare(peaks.peaks, predicted)
    return result


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class _Timings:
    """Collects the per-step perf metrics the module logs (a Lightning callback, built lazily)."""

    KEYS = {"perf/rollout_tokens_per_s": "rollout_tokens_per_s", "perf/train_tokens_per_s": "update_tokens_per_s",
            "perf/step_seconds": "step_seconds", "perf/rollout_seconds": "rollout_seconds",
            "rollout/mean_length": "mean_response_tokens"}

    def __new__(cls):
        import lightning as L

        class Timings(L.Callback):
            def __init__(self):
                self.steps: list[dict] = []

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                metrics = trainer.callback_metrics
                self.steps.append({name: round(float(metrics[key]), 2) for key, name in cls.KEYS.items()})

        return Timings()


def vllm_missing() -> str | None:
    """Why vLLM cannot run here, or None when it can be imported."""
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed in this environment"
    try:
        import vllm  # noqa: F401
    except Exception as err:  # a broken install raises anything
        return f"import vllm failed: {type(err).__name__}: {err}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lcpo.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--runs", default="gpu,ddp,fsdp,vllm", help=f"a comma-separated subset of {','.join(RUNS)}")
    parser.add_argument("--one", choices=list(RUNS), help=argparse.SUPPRESS)  # one run, in this process
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"gpu-check needs a CUDA GPU, and torch {torch.__version__} sees none on this machine "
              f"(CUDA build: {torch.version.cuda or 'no'}); run it on a GPU machine.", file=sys.stderr)
        return 2
    shape = SHAPES["1.5B"]
    if args.one:
        print(json.dumps(one_run(args.one, args.steps, args.prompts, args.samples, args.max_new_tokens, shape)))
        return 0
    start = time.perf_counter()
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                              "shape": asdict(shape), "params_billion": round(shape.params / 1e9, 3),
                              "prompts_x_samples": f"{args.prompts} x {args.samples}",
                              "max_new_tokens": args.max_new_tokens, "runs": {}, "skipped": {}, "failed": {}}
    for name in args.runs.split(","):
        if name == "vllm" and (why := vllm_missing()):
            result["skipped"]["vllm"] = why
            print(f"vLLM part skipped: {why}", file=sys.stderr)
            continue
        # each run in its own process: its own process group, CUDA context and peak counters
        command = [sys.executable, "-m", "lcpo.cli.gpu_check", "--one", name, "--steps", str(args.steps),
                   "--prompts", str(args.prompts), "--samples", str(args.samples),
                   "--max-new-tokens", str(args.max_new_tokens)]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired as err:
            result["failed"][name] = [f"no result after {RUN_TIMEOUT_S} s", *str(err.stderr or "").splitlines()[-20:]]
            continue
        if proc.returncode:
            result["failed"][name] = proc.stderr.strip().splitlines()[-20:]
            print(f"run {name} failed:\n{proc.stderr[-4000:]}", file=sys.stderr)
            continue
        result["runs"][name] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result, indent=1))
    memory = {name: run["memory"] for name, run in result["runs"].items() if "memory" in run}
    if memory:
        print(format_comparison(memory), file=sys.stderr)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
