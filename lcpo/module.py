"""LCPOModule: the policy, its frozen reference, the rollout collector, and the GRPO update over one rollout batch.

Each training step collects a rollout batch from the current policy (``lcpo.collector``), then updates on it.
Manual optimisation, because one rollout batch feeds several optimiser steps (mini-batches x PPO epochs) that
all use the log-probs of the policy that sampled it. Lightning's ``global_step`` therefore counts optimiser
steps; ``rollout_step`` (= global_step // updates_per_step) counts rollout batches.

The rollout engine's lifecycle follows the trainer's: it starts in ``setup`` (the process group exists, the
policy is not yet on its device), receives the weights in ``on_train_start`` (after a resumed checkpoint is
restored), is offloaded while the update runs and receives the new weights after it. The weights only change in
the update, so one push after its last optimiser step serves every rollout until the next update.
Under ``trainer=fsdp`` (Lightning's ``ModelParallelStrategy``) ``configure_model`` shards the policy by decoder
layer and the reference as a model of its own (``lcpo.sharding``).
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import ModelParallelStrategy

from lcpo.collector import RolloutBatch, RolloutCollector
from lcpo.config.algo import AlgoConfig
from lcpo.guards import StepGuard
from lcpo.losses import global_token_normaliser, grpo_loss, mismatch_sums, tis_weights, token_logprobs
from lcpo.metrics import finish_sums, rollout_sums, zero_signal_sums
from lcpo.prompts import PromptBatch
from lcpo.sharding import is_sharded, shard_model, whole


class LCPOModule(L.LightningModule):
    """Owns the policy (trained), the reference (frozen; only built when ``algo.kl_coef > 0``) and the collector.

    ``budget_range`` (the budget distribution's smallest and largest) sets the quarters of the per-bucket metrics.
    """

    def __init__(
        self,
        policy: torch.nn.Module,
        tokenizer: Any,
        algo: AlgoConfig,
        collector: RolloutCollector,
        budget_range: tuple[int, int],
        temperature: float = 1.0,
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
            self.ref_model = copy.deepcopy(policy).eval().requires_grad_(False)
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
        self.collector.engine.sync_weights(self.policy)

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

    @torch.no_grad()
    def _frozen_logprobs(self, model: torch.nn.Module, rb: RolloutBatch) -> torch.Tensor:
        """Per-token log-probs of every row under ``model``, without gradient, in micro-batches."""
        out = torch.zeros(rb.input_ids.shape[0], rb.input_ids.shape[1] - 1, device=rb.input_ids.device)
        for rows in _chunks(rb.input_ids.shape[0], self.algo.micro_batch_size):
            ids, attn, width = _trim(rb.input_ids[rows], rb.attention_mask[rows])
            logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
            out[rows, : width - 1] = token_logprobs(logits, ids[:, 1:], self.temperature)
        return out

    def training_step(self, batch: PromptBatch, batch_idx: int) -> None:
        step_start = time.perf_counter()
        if batch.step != self.rollout_step:
            raise RuntimeError(f"prompt stream is at step {batch.step} but the trainer is at {self.rollout_step}")
        rb = self.collector.collect(batch, rank=self.global_rank)
        rb = self.transfer_batch_to_device(rb, self.device, 0)
        update_start = time.perf_counter()
        self.collector.engine.offload()
        stats = self._update(rb)
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

    def _update(self, rb: RolloutBatch) -> dict[str, list[torch.Tensor]]:
        """PPO epochs x mini-batches of optimiser steps on one rollout batch, against the sampling policy's log-probs.

        Mini-batches hold whole groups; each is split into micro-batches whose gradients accumulate, normalised by
        the mini-batch's token (or sequence) count so the step equals one on the whole mini-batch.
        """
        old_logp = self._frozen_logprobs(self.policy, rb)
        ref_logp = self._frozen_logprobs(self.ref_model, rb) if self.ref_model is not None else None
        opt, sched = self.optimizers(), self.lr_schedulers()
        stats: dict[str, list[torch.Tensor]] = defaultdict(list)
        tis = self._rollout_mismatch(old_logp, rb, stats)
        group_size = int((rb.group == rb.group[0]).sum())
        rows_per_mini = max(1, self.algo.mini_batch_prompts // self.trainer.world_size) * group_size
        for _ in range(self.algo.ppo_epochs):
            for mini in _chunks(rb.input_ids.shape[0], rows_per_mini):
                opt.zero_grad()
                num_tokens = self._token_normaliser(rb.response_mask[mini, 1:].sum())
                for rows in _chunks(mini.stop - mini.start, self.algo.micro_batch_size, offset=mini.start):
                    ids, attn, width = _trim(rb.input_ids[rows], rb.attention_mask[rows])
                    out = grpo_loss(
                        self.policy(input_ids=ids, attention_mask=attn).logits[:, :-1],
                        ids[:, 1:],
                        rb.response_mask[rows, 1:width],
                        old_logp[rows, : width - 1],
                        rb.advantages[rows],
                        None if ref_logp is None else ref_logp[rows, : width - 1],
                        clip_low=self.algo.clip_low,
                        clip_high=self.algo.clip_high,
                        kl_coef=self.algo.kl_coef,
                        entropy_coef=self.algo.entropy_coef,
                        temperature=self.temperature,
                        loss_agg=self.algo.loss_agg,
                        loss_constant=self.algo.loss_constant,
                        num_tokens=num_tokens,
                        num_seqs=float(mini.stop - mini.start),
                        tis_weight=None if tis is None else tis[rows, : width - 1],
                    )
                    self.manual_backward(out.loss)
                    self.step_guard.watch(out.loss)
                    for key in ("loss", "policy_loss", "kl", "entropy", "clip_fraction", "ratio"):
                        stats[key].append(getattr(out, key).detach())
                max_norm = self.algo.grad_clip if self.algo.grad_clip > 0 else float("inf")
                grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), max_norm)
                stats["grad_norm"].append(whole(grad_norm).detach())
                self.step_guard.step(self, opt, sched, stats["grad_norm"][-1])
        return stats

    def _token_normaliser(self, local_tokens: torch.Tensor) -> torch.Tensor:
        """The mini-batch's ``num_tokens`` for a token mean over every rank's tokens (``global_token_normaliser``)."""
        total = self.trainer.strategy.reduce(local_tokens.float(), reduce_op="sum")
        return global_token_normaliser(total, self.trainer.world_size)

    def _rollout_mismatch(
        self, old_logp: torch.Tensor, rb: RolloutBatch, stats: dict[str, list[torch.Tensor]]
    ) -> torch.Tensor | None:
        """Logs how far the engine's sampling log-probs are from the trainer's on the sampled tokens (mean |delta|
        and k3 KL, over every rank's tokens); returns the truncated importance-sampling weights when
        ``algo.tis_cap`` is set. Nothing to compare for engines without log-probs (HF generate)."""
        if rb.rollout_logp is None:
            return None
        mask = rb.response_mask[:, 1:]
        totals = self.trainer.strategy.reduce(mismatch_sums(old_logp, rb.rollout_logp, mask), reduce_op="sum")
        count = totals[2].clamp(min=1)
        stats["rollout_logp_abs_diff"].append(totals[0] / count)
        stats["rollout_kl"].append(totals[1] / count)
        if self.algo.tis_cap is None:
            return None
        return tis_weights(old_logp, rb.rollout_logp, self.algo.tis_cap) * mask

    def _train_metrics(self, stats: dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
        """``train/*``: each statistic's mean over this rank's micro-batches, averaged over ranks (one collective)."""
        names = list(stats)
        local = torch.stack([torch.stack(stats[k]).float().mean() for k in names]).to(self.device)
        return {f"train/{k}": v for k, v in zip(names, self.trainer.strategy.reduce(local, reduce_op="mean"))}

    def _rollout_metrics(self, rb: RolloutBatch) -> dict[str, torch.Tensor]:
        """Rollout statistics (``lcpo.metrics.rollout_sums``), reduced over all ranks as sums and counts."""
        sums = rollout_sums(rb.rewards, rb.correct, rb.lengths, rb.budgets, rb.modes, rb.truncated, self.budget_range)
        sums |= zero_signal_sums(rb.rewards, self.collector.group_size)
        totals = torch.stack([torch.stack(pair) for pair in sums.values()]).to(self.device)
        totals = self.trainer.strategy.reduce(totals, reduce_op="sum")
        return finish_sums(list(sums), totals)


def _chunks(n: int, size: int, offset: int = 0) -> list[slice]:
    return [slice(offset + i, offset + min(i + size, n)) for i in range(0, n, size)]


def _trim(ids: torch.Tensor, attn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Drops the right padding shared by every row of a micro-batch (rows are right-padded)."""
    width = int(attn.sum(-1).max())
    return ids[:, :width], attn[:, :width], width
