"""The ``rollout`` group: the generation engine, its sampling parameters and the engine-specific knobs."""

from __future__ import annotations

from dataclasses import dataclass, replace

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
class RolloutConfig:
    """The rollout engine and its sampling (checked by :class:`SamplingConfig`), plus s1
    budget forcing's knobs (evaluation: ``end_at_line`` places the forced end of thinking after the last complete
    line, see :mod:`lcpo.rollout.budget_forcing`) and vLLM's (GPU).

    vLLM's context is ``max_prompt_tokens + max_new_tokens`` (training drops a file task's longer prompts when it
    loads, saying how many: ``lcpo.training.prompt_lengths``), its share of the GPU
    ``gpu_memory_utilization``; ``enable_sleep_mode`` releases its weights and KV cache while the trainer updates.
    """

    name: str = "hf"
    temperature: float = 0.6
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 4096
    batch_size: int = 64
    max_waits: int = 100
    wait_text: str = "Wait"
    answer_cue: str = "\n</think>\n\nThe final answer is: \\boxed{"
    answer_max_tokens: int = 20
    end_at_line: bool = False
    gpu_memory_utilization: float = 0.5
    tensor_parallel_size: int = 1
    max_prompt_tokens: int = 1024
    enable_sleep_mode: bool = True
    dtype: str = "bfloat16"

    def __post_init__(self) -> None:
        one_of("rollout.name", self.name, ("hf", "vllm", "budget_forcing"))
        self.sampling()
        positive("rollout.batch_size", self.batch_size)
        positive("rollout.max_waits", self.max_waits, allow_zero=True)
        positive("rollout.answer_max_tokens", self.answer_max_tokens)
        in_range("rollout.gpu_memory_utilization", self.gpu_memory_utilization, 0.0, 1.0, low_open=True)
        positive("rollout.tensor_parallel_size", self.tensor_parallel_size)
        positive("rollout.max_prompt_tokens", self.max_prompt_tokens)
        one_of("rollout.dtype", self.dtype, DTYPES)

    def sampling(self, max_new_tokens: int | None = None) -> SamplingConfig:
        """The engine-level sampling parameters, optionally with another generation cap (evaluation's 2N)."""
        cap = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        return SamplingConfig(self.temperature, self.top_p, self.top_k, cap)

    def with_protocol_sampling(self, name: str = "hf") -> "RolloutConfig":
        """These settings with the L1 evaluation protocol's sampling (temperature 0.6, top_p 0.95) and engine
        ``name``."""
        return replace(self, name=name, temperature=0.6, top_p=0.95)
