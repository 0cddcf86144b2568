"""vLLM rollouts on GPU, colocated with the trainer: the policy's weights are pushed into vLLM after each update.

vLLM is an optional extra (``pip install -c constraints.txt -e ".[vllm]"``) imported only when this engine is
built. The engine runs in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so that it can reach the loaded model and
call its ``load_weights`` with the policy's state dict: the same colocated scheme TRL uses.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Sequence

import torch

from lcpo.rollout.base import Completion, SamplingConfig


class VLLMEngine:
    """Samples with ``vllm.LLM.generate``; :meth:`sync_weights` copies the current policy weights into vLLM."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, cfg: Any):
        if not torch.cuda.is_available():
            raise RuntimeError("rollout=vllm needs a CUDA GPU; use rollout=hf on this machine")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        try:
            from vllm import LLM
        except ImportError as err:
            raise ImportError('rollout=vllm needs vLLM: pip install -c constraints.txt -e ".[vllm]"') from err
        self.tokenizer = tokenizer
        # vLLM loads from a folder: start it from the policy as it is now.
        self._dir = tempfile.TemporaryDirectory(prefix="lcpo-vllm-")
        model.save_pretrained(self._dir.name)
        tokenizer.save_pretrained(self._dir.name)
        self.llm = LLM(
            model=self._dir.name,
            tensor_parallel_size=cfg.tensor_parallel_size,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
            enable_prefix_caching=True,
        )

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Streams the policy's parameters into the vLLM model (no disk round trip)."""
        state = model.state_dict()
        runner_model = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        runner_model.load_weights(state.items())
        self.llm.reset_prefix_cache()

    def generate(self, prompts: Sequence[str], n: int, sampling: SamplingConfig) -> list[list[Completion]]:
        from vllm import SamplingParams

        params = SamplingParams(
            n=n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k > 0 else -1,
            max_tokens=sampling.max_new_tokens,
            logprobs=0,
        )
        outputs = self.llm.generate(list(prompts), params, use_tqdm=False)
        groups = []
        for out in outputs:
            group = []
            for c in out.outputs:
                tokens = list(c.token_ids)
                logprobs = [next(iter(lp.values())).logprob for lp in c.logprobs] if c.logprobs else None
                group.append(
                    Completion(
                        prompt_ids=list(out.prompt_token_ids),
                        token_ids=tokens,
                        text=c.text,
                        finish_reason="length" if c.finish_reason == "length" else "eos",
                        logprobs=logprobs,
                    )
                )
            groups.append(group)
        return groups
