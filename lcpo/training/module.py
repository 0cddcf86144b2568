"""LCPOModule: the policy, its frozen reference, the rollout collector, and the GRPO update over one rollout batch.

Each training step collects a rollout batch from the current policy (``lcpo.training.collector``), then updates on it.
Manual optimisation, because one rollout batch feeds several optimiser steps (mini-batches x PPO epochs) that
all use the log-probs of the policy that sampled it. Lightning's ``global_step`` therefore counts optimiser
steps; ``rollout_step`` (= global_step // updates_per_step) counts rollout batches.

The rollout engine's lifecycle follows the trainer's: it starts in ``setup`` (the process group exists, the
policy is not yet on its device), receives the weights in ``on_train_start`` (after a resumed checkpoint is
restored), is offloaded while the update runs and receives the new weights after it. The weights only change in
the update, so one push after its last optimiser step serves every rollout until the next update.
Under ``trainer=fsdp`` (Lightning's ``ModelParallelStrategy``) ``configure_model`` shards the policy by decoder
layer and the reference as a model of its own (``lcpo.models.sharding``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import lightning as L
import torch
from lightning.pytorch.strategies import ModelParallelStrategy

from lcpo.training.collector import RolloutBatch, RolloutCollector
from lcpo.config.algo import AlgoConfig
from lcpo.training.guards import StepGuard
from lcpo.algo.metrics import finish_sums, rollout_sums, source_sums, thinking_sums, zero_signal_sums
from lcpo.tasks.prompts import PromptBatch
from lcpo.models.reference import frozen_reference
from lcpo.models.sharding import is_sharded, shard_model
from lcpo.training.update import UpdateHooks, ppo_update


class LCPOModule(L.LightningModule):
    """Owns the policy (trained), the reference (frozen; only built when ``algo.kl_coef > 0``) and the collector.

    ``budget_range`` (the budget distribution's smallest and largest) sets the quarters of the per-bucket metrics.
    The policy's parameters stay in fp32 (the optimiser updates them; bf16 would round small steps away); the
    reference is only read, so it is stored in ``reference_dtype`` (the compute dtype) when given.
    """

    def __init__(
        self,
        policy: torch.nn.Module,
        tokenizer: Any,
        algo: AlgoConfig,
        collector: RolloutCollector,
        budget_range: tuple[int, int],
        temperature: float = 1.0,
        reference_dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        # The reference is rebuilt from the initial weights at start-up and never stored in checkpoints.
        self.strict_loading = False
        self.policy = policy.train()
        self.tokenizer = tokenizer
        self.algo = algo
        self.temperature = temperature if temperature > 0 else 1.0
        self.ref_model = None
        if algo.kl_coef > 0:
            self.ref_model = frozen_reference(policy, reference_dtype)
        self.collector = collector
        self.budget_range = budget_range
        self.last_samples: list[dict] = []
        self.step_guard = StepGuard(algo.max_skipped_steps)

    @property
    def rollout_step(self) -> int:
        return self.global_step // self.algo.updates_per_step

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.collector.engine.start(self.trainer.strategy.root_device)

    def configure_model(self) -> None:
        if isinstance(self.trainer.strategy, ModelParallelStrategy) and not is_sharded(self.policy):
            shard_model(self.policy, self.device_mesh)
            if self.ref_model is not None:
                shard_model(self.ref_model, self.device_mesh)

    def on_train_start(self) -> None:
        with self._engine_precision():
            self.collector.engine.sync_weights(self.policy)

    def _engine_precision(self) -> torch.autocast:
        """Lightning's mixed precision autocasts the whole ``training_step``; the engine's calls (sampling, the
        weight push) run outside it: vLLM and the push keep their own dtypes, and HF generate takes its own."""
        return torch.autocast(self.device.type, enabled=False)

    def teardown(self, stage: str) -> None:
        if stage == "fit":
            self.collector.engine.close()

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.policy.parameters(),
            lr=self.algo.lr,
            betas=tuple(self.algo.betas),
            weight_decay=self.algo.weight_decay,
        )
        warmup = self.algo.warmup_steps * self.algo.updates_per_step
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
        return [opt], [sched]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("ref_model.")}
        checkpoint["step_guard"] = self.step_guard.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.step_guard.load_state_dict(checkpoint.get("step_guard", {}))

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Prompt batches are text, generated from in the step; only scored rollouts hold tensors to move."""
        if isinstance(batch, PromptBatch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def training_step(self, batch: PromptBatch, batch_idx: int) -> None:
        step_start = time.perf_counter()
        if batch.step != self.rollout_step:
            raise RuntimeError(f"prompt stream is at step {batch.step} but the trainer is at {self.rollout_step}")
        with self._engine_precision():
            rb = self.collector.collect(batch, rank=self.global_rank)
        rb = self.transfer_batch_to_device(rb, self.device, 0)
        update_start = time.perf_counter()
        with self._engine_precision():
            self.collector.engine.offload()
        stats = self._update(rb)
        # the gradients and autocast's bf16 weight copies go before the engine wakes: it needs the memory they hold
        # (DDP's buckets stay)
        self.optimizers().zero_grad(set_to_none=True)
        torch.clear_autocast_cache()
        with self._engine_precision():
            self.collector.engine.sync_weights(self.policy)
        update_seconds = time.perf_counter() - update_start

        self.last_samples = rb.samples
        train_tokens = float(rb.attention_mask.sum()) * self.algo.ppo_epochs
        metrics = self._rollout_metrics(rb)
        metrics.update(self._train_metrics(stats))
        metrics.update(
            {
                "perf/rollout_tokens_per_s": rb.lengths.sum() / max(rb.rollout_seconds, 1e-9),
                "perf/train_tokens_per_s": torch.tensor(train_tokens / max(update_seconds, 1e-9)),
                "perf/step_seconds": torch.tensor(time.perf_counter() - step_start),
                "perf/rollout_seconds": torch.tensor(rb.rollout_seconds),
                "train/lr": torch.tensor(self.lr_schedulers().get_last_lr()[0]),
                "train/skipped_steps": torch.tensor(float(self.step_guard.take_skipped())),
            }
        )
        for key, value in metrics.items():
            self.log(key, value.float().to(self.device), batch_size=1)
        for key, short in (("reward/mean", "reward"), ("rollout/accuracy", "acc"), ("rollout/abs_rel_error", "len_err")):
            self.log(short, metrics[key].float().to(self.device), prog_bar=True, logger=False, batch_size=1)
        # the x axis of every logged row and the step in checkpoint names: rollout steps done, as everywhere else
        self.log("step", float(self.rollout_step), batch_size=1)

    def _update(self, rb: RolloutBatch) -> dict[str, list[torch.Tensor]]:
        """The optimiser steps on one rollout batch (``lcpo.training.update.ppo_update``) through Lightning's
        backward and the step guard, with sums and counts agreed over every rank."""
        hooks = _LightningHooks(self, self.lr_schedulers())
        return ppo_update(self.policy, self.ref_model, rb, self.algo, self.optimizers(), hooks,
                          temperature=self.temperature)

    def _train_metrics(self, stats: dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
        """``train/*``: each statistic's mean over this rank's micro-batches, averaged over ranks (one collective)."""
        names = list(stats)
        local = torch.stack([torch.stack(stats[k]).float().mean() for k in names]).to(self.device)
        return {f"train/{k}": v for k, v in zip(names, self.trainer.strategy.reduce(local, reduce_op="mean"))}

    def _rollout_metrics(self, rb: RolloutBatch) -> dict[str, torch.Tensor]:
        """Rollout statistics (``lcpo.algo.metrics.rollout_sums``), reduced over all ranks as sums and counts."""
        sums = rollout_sums(rb.rewards, rb.correct, rb.lengths, rb.budgets, rb.modes, rb.truncated, self.budget_range)
        sums |= zero_signal_sums(rb.rewards, self.collector.group_size)
        if rb.no_think is not None:
            sums["rollout/no_think_share"] = (rb.no_think.float().sum(), torch.tensor(float(rb.no_think.numel())))
        if rb.thinking is not None:
            sums |= thinking_sums(rb.thinking, rb.lengths, rb.budgets, rb.modes)
        if rb.source is not None:
            sums |= source_sums(rb.source, self.collector.sources, rb.correct, rb.lengths)
        totals = torch.stack([torch.stack(pair) for pair in sums.values()]).to(self.device)
        totals = self.trainer.strategy.reduce(totals, reduce_op="sum")
        return finish_sums(list(sums), totals)


class _LightningHooks(UpdateHooks):
    """``ppo_update``'s hooks inside a Lightning run: Lightning's backward (with DDP's gradient sync only where a
    mini-batch ends), the step guard's optimiser step, and the strategy's reductions over ranks."""

    def __init__(self, module: LCPOModule, scheduler: Any):
        self.module, self.scheduler = module, scheduler
        self.strategy = module.trainer.strategy
        self.world_size = module.trainer.world_size

    def backward(self, loss: torch.Tensor, sync: bool) -> None:
        with self._gradient_sync(sync):
            self.module.manual_backward(loss)
        self.module.step_guard.watch(loss)

    def step(self, optimizer: Any, grad_norm: torch.Tensor) -> None:
        self.module.step_guard.step(self.module, optimizer, self.scheduler, grad_norm)

    def all_sum(self, value: torch.Tensor) -> torch.Tensor:
        return self.strategy.reduce(value, reduce_op="sum")

    def all_max(self, count: int) -> int:
        if self.world_size == 1:
            return count
        total = torch.tensor(float(count), device=self.module.device)
        return int(self.strategy.reduce(total, reduce_op="max").item())

    @contextmanager
    def _gradient_sync(self, sync: bool) -> Iterator[None]:
        """Under DDP, all-reduces gradients only on a mini-batch's last backward (``no_sync``, through Lightning's
        ``block_backward_sync``, around the others), as gradient accumulation in Accelerate does: DDP holds whole
        gradients on every rank anyway. A sharded (FSDP2) policy reduce-scatters on every backward instead: skipping
        it would keep whole, unsharded gradients on every rank, the memory FSDP exists to save."""
        if sync or self.world_size == 1 or is_sharded(self.module.policy):
            yield
        else:
            with self.strategy.block_backward_sync():
                yield
