"""The online data side: a seeded stream of budgeted prompt batches, and their conversion into scored rollouts.

Lightning fetches batches ahead of time, so the loader yields *prompts* (pure data, safe to prefetch) and the
rollouts are drawn from the current policy inside the training step through :meth:`RolloutDataModule.collect`.
Batch ``s`` on rank ``r`` depends only on (seed, s, r): a resumed run sees exactly the prompts, and with the same
sampling seeds the completions, that an uninterrupted run would have seen, and the G samples of a prompt always
stay together on one rank, so advantages need no communication.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

from lcpo.budgets import BudgetSampler, BudgetSpec
from lcpo.losses import group_advantages
from lcpo.prompts import PromptBuilder
from lcpo.rewards import MODE_CODES, Reward, RewardInputs
from lcpo.rollout.base import Completion, RolloutEngine, SamplingConfig
from lcpo.tasks.base import Problem, Task


def step_seed(seed: int, step: int, rank: int) -> int:
    """A distinct, reproducible seed per (run seed, rollout step, rank)."""
    return (seed * 1_000_003 + step) * 1_009 + rank


@dataclass
class PromptBatch:
    """The prompts of one rollout step on one rank, with their budget specs."""

    step: int
    problems: list[Problem]
    specs: list[BudgetSpec]
    prompts: list[str]


@dataclass
class RolloutBatch:
    """Scored rollouts ready for the loss: ``N = prompts x group_size`` rows, grouped contiguously.

    ``input_ids`` is prompt + response, right-padded; ``response_mask`` marks response tokens in the same layout.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    correct: torch.Tensor
    lengths: torch.Tensor
    budgets: torch.Tensor
    modes: torch.Tensor
    truncated: torch.Tensor
    group: torch.Tensor
    rollout_seconds: float
    samples: list[dict] = field(default_factory=list)


class PromptStream(IterableDataset):
    """Endless prompt batches starting at ``start_step()``; each batch is drawn from its own seeded generator."""

    def __init__(
        self,
        task: Task,
        sampler: BudgetSampler,
        build_prompt: PromptBuilder,
        prompts_per_rank: int,
        seed: int,
        rank: int,
        start_step: Callable[[], int],
    ):
        self.task, self.sampler, self.build_prompt = task, sampler, build_prompt
        self.prompts_per_rank, self.seed, self.rank, self.start_step = prompts_per_rank, seed, rank, start_step

    def batch(self, step: int) -> PromptBatch:
        rng = random.Random(step_seed(self.seed, step, self.rank))
        problems = [self.task.sample(rng) for _ in range(self.prompts_per_rank)]
        specs = [self.sampler.sample(rng) for _ in problems]
        prompts = [self.build_prompt(p, s) for p, s in zip(problems, specs)]
        return PromptBatch(step, problems, specs, prompts)

    def __iter__(self) -> Iterator[PromptBatch]:
        step = self.start_step()
        while True:
            yield self.batch(step)
            step += 1


class RolloutDataModule(L.LightningDataModule):
    """Prompts from ``task`` with budgets from ``sampler``; rollouts graded by ``grader`` and scored by ``reward``."""

    def __init__(
        self,
        task: Task,
        sampler: BudgetSampler,
        build_prompt: PromptBuilder,
        grader: Callable[[str, str], bool],
        reward: Reward,
        sampling: SamplingConfig,
        group_size: int,
        prompts_per_step: int,
        seed: int = 0,
        scale_std: bool = True,
        adv_eps: float = 1e-6,
        samples_per_table: int = 8,
    ):
        super().__init__()
        self.task, self.sampler, self.build_prompt = task, sampler, build_prompt
        self.grader, self.reward, self.sampling = grader, reward, sampling
        self.group_size, self.prompts_per_step, self.seed = group_size, prompts_per_step, seed
        self.scale_std, self.adv_eps, self.samples_per_table = scale_std, adv_eps, samples_per_table
        self.start_step: Callable[[], int] = lambda: 0

    def prompts_per_rank(self) -> int:
        world = self.trainer.world_size if self.trainer is not None else 1
        if self.prompts_per_step % world:
            raise ValueError(
                f"algo.prompts_per_step ({self.prompts_per_step}) must be divisible by the number of processes ({world})"
            )
        return self.prompts_per_step // world

    def train_dataloader(self) -> DataLoader:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        stream = PromptStream(
            self.task, self.sampler, self.build_prompt, self.prompts_per_rank(), self.seed, rank, self.start_step
        )
        return DataLoader(stream, batch_size=None, num_workers=0)

    @torch.no_grad()
    def collect(self, engine: RolloutEngine, batch: PromptBatch, rank: int = 0) -> RolloutBatch:
        """Generates G completions per prompt with the current policy, grades and scores them."""
        torch.manual_seed(step_seed(self.seed, batch.step, rank))
        start = time.perf_counter()
        groups = engine.generate(batch.prompts, self.group_size, self.sampling)
        seconds = time.perf_counter() - start
        flat: list[tuple[int, Problem, BudgetSpec, Completion]] = [
            (g, problem, spec, c)
            for g, (problem, spec, group) in enumerate(zip(batch.problems, batch.specs, groups))
            for c in group
        ]
        correct = [self.grader(c.text, p.answer) for _, p, _, c in flat]
        inputs = RewardInputs.build(
            correct=correct,
            modes=[s.mode for _, _, s, _ in flat],
            budgets=[s.budget for _, _, s, _ in flat],
            lengths=[c.length for *_, c in flat],
            max_length=self.sampling.max_new_tokens,
            groups=[g for g, *_ in flat],
        )
        rewards = self.reward(inputs).float()
        advantages = group_advantages(
            rewards.view(-1, self.group_size), scale_std=self.scale_std, eps=self.adv_eps
        ).flatten()
        input_ids, attention_mask, response_mask = pack([(c.prompt_ids, c.token_ids) for *_, c in flat], pad_id=_pad_id(engine))
        samples = [
            {
                "prompt": batch.prompts[g],
                "mode": s.mode,
                "budget": s.budget,
                "length": c.length,
                "correct": ok,
                "reward": float(r),
                "text": c.text,
            }
            for (g, _, s, c), ok, r in list(zip(flat, correct, rewards))[:: self.group_size][: self.samples_per_table]
        ]
        return RolloutBatch(
            input_ids=input_ids,
            attention_mask=attention_mask,
            response_mask=response_mask,
            rewards=rewards,
            advantages=advantages,
            correct=inputs.correct,
            lengths=inputs.length,
            budgets=inputs.budget,
            modes=inputs.mode,
            truncated=torch.tensor([c.truncated for *_, c in flat]),
            group=inputs.group,
            rollout_seconds=seconds,
            samples=samples,
        )


def _pad_id(engine: RolloutEngine) -> int:
    tokenizer = getattr(engine, "tokenizer", None)
    pad = getattr(tokenizer, "pad_token_id", None)
    return 0 if pad is None else int(pad)


def pack(pairs: Sequence[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded prompt+response ids of (prompt, response) pairs, with attention and response masks."""
    width = max(len(p) + len(r) for p, r in pairs)
    input_ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(pairs), width), dtype=torch.long)
    response = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, (prompt, completion) in enumerate(pairs):
        n = len(prompt) + len(completion)
        input_ids[i, :n] = torch.tensor(prompt + completion)
        attention[i, :n] = 1
        response[i, len(prompt) : n] = 1
    return input_ids, attention, response


def mode_mask(modes: torch.Tensor, mode: str) -> torch.Tensor:
    """Rows of a batch in the given budget mode."""
    return modes == MODE_CODES[mode]
