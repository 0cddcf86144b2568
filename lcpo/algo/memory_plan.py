"""Per-GPU memory of an LCPO run, item by item: what the trainer keeps, what one micro-batch adds, what vLLM takes.

Pure arithmetic on a model's shape and the run's settings (``lcpo.bench.plan`` prints it; a GPU run logs it at
start). The trainer's items follow what the code allocates:

- fp32 master weights, AdamW's two fp32 moments and fp32 gradients, divided over the GPUs under FSDP; under DDP the
  gradients live in its all-reduce buckets (``gradient_as_bucket_view``), which stay allocated while vLLM is awake,
  whereas a single GPU or FSDP frees them (``zero_grad(set_to_none=True)``) before the engine wakes;
- the frozen reference in its dtype (sharded under FSDP);
- under bf16 autocast, the bf16 copies of the decoder's weights that autocast caches for the whole training step,
  and the LM head's cast;
- FSDP's gathered units: the root (embeddings, head) and about two decoder layers in fp32;
- AdamW's foreach step, which makes one parameter-sized temporary;
- activations per token of the largest micro-batch: with gradient checkpointing, each layer's fp32 input plus one
  layer's saved tensors during its recomputation; without, every layer's saved tensors; and the LM head's chunks
  (``algo.logit_chunk_mb``) and fp32 gradient accumulator (``lcpo.algo.logprobs``).

The per-token constants of a layer's saved tensors were counted from the Qwen2/Llama decoder layer's autograd graph
(norms in fp32, projections and attention in the compute dtype) and checked against measured peaks on the CPU
(``tests/bench/test_plan.py``). vLLM takes ``gpu_memory_utilization`` of the GPU while it samples and, in sleep mode,
nearly nothing while the trainer updates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GIB = 2**30
MIB = 2**20
#: Bytes per element by dtype name.
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
#: The CUDA context, cuBLAS workspaces and the caching allocator's slack, per process (a measured-order guess).
RUNTIME_BYTES = 2 * GIB


@dataclass(frozen=True)
class ModelShape:
    """A decoder-only transformer (Qwen2/Llama layout: GQA attention with q/k/v biases when ``qkv_bias``, SwiGLU)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool
    qkv_bias: bool = True

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    @property
    def layer_params(self) -> int:
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        attention = h * h + 2 * h * kv + h * h + ((h + 2 * kv) if self.qkv_bias else 0)
        return attention + 3 * h * i + 2 * h

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def root_params(self) -> int:
        """Embeddings, the LM head (when untied) and the final norm: everything outside the decoder layers."""
        return self.embedding_params * (1 if self.tied else 2) + self.hidden

    @property
    def params(self) -> int:
        return self.layers * self.layer_params + self.root_params


#: Named shapes (their config.json): DeepSeek-R1-Distill-Qwen-1.5B and -7B.
SHAPES = {
    "1.5B": ModelShape(hidden=1536, layers=28, heads=12, kv_heads=2, intermediate=8960, vocab=151_936, tied=False),
    "7B": ModelShape(hidden=3584, layers=28, heads=28, kv_heads=4, intermediate=18_944, vocab=152_064, tied=False),
}


def shape_from_config(config: dict) -> ModelShape:
    """The shape a transformers ``config.json`` describes (Qwen2 and Llama keys)."""
    return ModelShape(
        hidden=config["hidden_size"],
        layers=config["num_hidden_layers"],
        heads=config["num_attention_heads"],
        kv_heads=config.get("num_key_value_heads") or config["num_attention_heads"],
        intermediate=config["intermediate_size"],
        vocab=config["vocab_size"],
        tied=bool(config.get("tie_word_embeddings", False)),
        qkv_bias=config.get("model_type") == "qwen2" or bool(config.get("attention_bias", False)),
    )


@dataclass(frozen=True)
class RunShape:
    """The settings that size memory. ``strategy``: ``single`` (one GPU, or the CPU), ``ddp`` or ``fsdp`` over
    ``gpus``; ``compute_dtype`` float32 or bfloat16 (autocast); ``reference_dtype`` None for no reference (no KL);
    ``vllm_share`` vLLM's ``gpu_memory_utilization`` (0: no vLLM); ``runtime_bytes`` the per-process overhead."""

    strategy: str = "ddp"
    gpus: int = 1
    gpu_bytes: int = 79 * GIB  # an 80 GB H100 as torch reports it
    compute_dtype: str = "bfloat16"
    reference_dtype: str | None = "bfloat16"
    gradient_checkpointing: bool = True
    micro_batch_tokens: int = 32_768
    logit_chunk_mb: float = 128.0
    max_prompt_tokens: int = 1024
    max_new_tokens: int = 4096
    vllm_share: float = 0.5
    runtime_bytes: int = RUNTIME_BYTES
    foreach_adam: bool = True

    def __post_init__(self) -> None:
        if self.strategy not in ("single", "ddp", "fsdp"):
            raise ValueError(f"strategy must be single, ddp or fsdp, got {self.strategy!r}")
        if self.gpus < 1 or (self.strategy == "single" and self.gpus != 1):
            raise ValueError(f"gpus must be >= 1 (1 for strategy=single), got {self.gpus}")


@dataclass
class Plan:
    """Items in bytes per GPU: ``kept`` (held all run long, rollouts included), ``update`` (the peak of one
    micro-batch's forward and backward, or of the optimiser step), ``rollout`` (vLLM awake)."""

    kept: dict[str, int] = field(default_factory=dict)
    update: dict[str, int] = field(default_factory=dict)
    rollout: dict[str, int] = field(default_factory=dict)
    gpu_bytes: int = 0

    @property
    def update_peak(self) -> int:
        return sum(self.kept.values()) + sum(self.update.values())

    @property
    def rollout_peak(self) -> int:
        return sum(self.kept.values()) + sum(self.rollout.values())

    @property
    def peak(self) -> int:
        return max(self.update_peak, self.rollout_peak)

    @property
    def fits(self) -> bool:
        return self.peak <= self.gpu_bytes


def activation_bytes_per_token(shape: ModelShape, compute_dtype: str) -> int:
    """Bytes one decoder layer saves for backward per token. Each RMSNorm keeps its fp32 input and normalised input
    (4 bytes x 2 hidden); the projections keep their inputs: under autocast one cast per projection (q, k, v, gate,
    up: 5 hidden-sized), in fp32 the two norm outputs themselves; attention keeps q, k, v, its output and o_proj's
    input (3 hidden- and 2 k/v-sized); the MLP its gate, up, activation and product (4 intermediate-sized)."""
    c = BYTES[compute_dtype]
    h, kv, i = shape.hidden, shape.kv_dim, shape.intermediate
    projection_inputs = 2 * 4 * h if c == 4 else 5 * c * h
    return 2 * 2 * 4 * h + projection_inputs + c * (3 * h + 2 * kv) + 4 * c * i


def lm_head_bytes(shape: ModelShape, tokens: int, compute_dtype: str, logit_chunk_mb: float) -> int:
    """The LM head's peak extra memory over one micro-batch: the response positions' hidden states, two fp32
    chunks of logits, the fp32 gradient accumulator of the head and its cast to the compute dtype."""
    c = BYTES[compute_dtype]
    chunk = min(int(logit_chunk_mb * MIB), tokens * shape.vocab * 4)
    cast = shape.embedding_params * c if c != 4 else 0
    return tokens * shape.hidden * (4 + c) + 2 * chunk + 4 * shape.embedding_params + cast


def micro_batch_bytes(shape: ModelShape, run: RunShape, tokens: int) -> dict[str, int]:
    """Activations of a micro-batch of ``tokens`` tokens (see the module docstring)."""
    per_layer = activation_bytes_per_token(shape, run.compute_dtype) * tokens
    if run.gradient_checkpointing:
        body = {"checkpointed layer inputs (fp32)": shape.layers * tokens * shape.hidden * 4,
                "one layer recomputed": per_layer}
    else:
        body = {"activations": shape.layers * per_layer}
    return body | {"LM head chunks": lm_head_bytes(shape, tokens, run.compute_dtype, run.logit_chunk_mb)}


def plan(shape: ModelShape, run: RunShape, tokens: int | None = None) -> Plan:
    """The per-GPU plan for ``shape`` under ``run`` with micro-batches of ``tokens`` (default: the micro-batch
    budget, or one whole row when that is longer)."""
    if tokens is None:  # a row longer than the micro-batch budget goes alone
        tokens = max(run.micro_batch_tokens, run.max_prompt_tokens + run.max_new_tokens)
    shards = run.gpus if run.strategy == "fsdp" else 1
    p = shape.params
    out = Plan(gpu_bytes=run.gpu_bytes)
    out.kept["weights (fp32 masters)"] = 4 * p // shards
    out.kept["AdamW moments (fp32)"] = 8 * p // shards
    gradients = 4 * p // shards
    if run.strategy == "ddp":
        out.kept["gradients (DDP buckets, fp32)"] = gradients
    else:
        out.update["gradients (fp32)"] = gradients
    if run.reference_dtype is not None:
        out.kept[f"reference ({run.reference_dtype})"] = BYTES[run.reference_dtype] * p // shards
    out.kept["CUDA context and runtime"] = run.runtime_bytes
    if run.compute_dtype != "float32":
        out.update["autocast weight copies"] = BYTES[run.compute_dtype] * shape.layers * shape.layer_params
    if run.strategy == "fsdp":
        out.update["FSDP gathered units (fp32)"] = 4 * (shape.root_params + 2 * shape.layer_params)
    activations = micro_batch_bytes(shape, run, tokens)
    # foreach AdamW (CUDA's default) makes a parameter-sized temporary; the per-tensor loop one of the largest tensor
    step = 4 * p // shards if run.foreach_adam else 4 * shape.embedding_params
    if step > sum(activations.values()):
        out.update["AdamW step temporaries"] = step
    else:
        out.update.update(activations)
    if run.vllm_share > 0:
        out.rollout["vLLM (gpu_memory_utilization)"] = int(run.vllm_share * run.gpu_bytes)
    return out


def largest_micro_batch(shape: ModelShape, run: RunShape, multiple: int = 1024) -> int:
    """The most tokens per micro-batch (a multiple of ``multiple``) whose update peak fits the GPU; 0 if none."""
    if plan(shape, run, multiple).update_peak > run.gpu_bytes:
        return 0
    low, high = 1, 1
    while plan(shape, run, high * 2 * multiple).update_peak <= run.gpu_bytes and high < 2**20:
        high *= 2
    high *= 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if plan(shape, run, mid * multiple).update_peak <= run.gpu_bytes else (low, mid)
    return low * multiple


def format_plan(shape: ModelShape, run: RunShape, result: Plan, title: str = "") -> str:
    """The plan as a table in GiB: each item, the peaks of the update and of the rollout, the largest micro-batch
    that fits, and whether the run fits."""
    gib = lambda n: f"{n / GIB:8.2f}"  # noqa: E731
    lines = [f"memory plan per GPU{': ' + title if title else ''} ({shape.params / 1e9:.2f} B parameters, "
             f"{run.compute_dtype} compute, micro-batches of {max(run.micro_batch_tokens, run.max_prompt_tokens + run.max_new_tokens)} "
             f"tokens{', gradient checkpointing' if run.gradient_checkpointing else ''})"]
    for phase, items in (("kept", result.kept), ("update", result.update), ("rollout", result.rollout)):
        lines += [f"  {phase:8} {name:40} {gib(size)} GiB" for name, size in items.items()]
    largest = largest_micro_batch(shape, run)
    lines += [
        f"  {'peak':8} {'update':40} {gib(result.update_peak)} GiB",
        f"  {'peak':8} {'rollout (vLLM awake)':40} {gib(result.rollout_peak)} GiB",
        f"  {'GPU':8} {'':40} {gib(result.gpu_bytes)} GiB",
        f"  largest micro-batch whose update fits: {largest} tokens" if largest else "  no micro-batch fits",
        f"  fits: {'yes' if result.fits else 'NO'} (peak {result.peak / GIB:.2f} of {result.gpu_bytes / GIB:.2f} GiB)",
    ]
    return "\n".join(lines)
