"""The online data side: a seeded, resumable stream of budgeted prompt batches, and nothing else.

Lightning fetches batches ahead of time, so the loader yields *prompts* (pure data, safe to prefetch); the
module's rollout collector samples from the current policy inside the training step. Batch ``s`` on rank ``r``
depends only on (seed, s, r): a resumed run sees exactly the prompts an uninterrupted run would have seen, and the
G samples of a prompt always stay together on one rank, so advantages need no communication. Problems of a fixed
list are taken in shuffled epochs (``lcpo.tasks.order``) when ``epochs`` is given, else drawn with replacement;
budgets are drawn for every prompt.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator, Optional

import lightning as L
from torch.utils.data import DataLoader, IterableDataset

from lcpo.algo.budgets import BudgetSampler
from lcpo.tasks.prompts import PromptBatch, PromptBuilder
from lcpo.algo.seeds import step_seed
from lcpo.tasks.base import Task
from lcpo.tasks.order import ShuffledEpochs


class PromptStream(IterableDataset):
    """Endless prompt batches starting at ``start_step()``; each batch is drawn from its own seeded generator.

    With ``epochs``, step ``s`` on rank ``r`` of ``world_size`` takes positions
    ``(s * world_size + r) * prompts_per_rank`` onwards of the epoch walk.
    """

    def __init__(
        self,
        task: Task,
        sampler: BudgetSampler,
        build_prompt: PromptBuilder,
        prompts_per_rank: int,
        seed: int,
        rank: int,
        start_step: Callable[[], int],
        epochs: Optional[ShuffledEpochs] = None,
        world_size: int = 1,
    ):
        self.task, self.sampler, self.build_prompt = task, sampler, build_prompt
        self.prompts_per_rank, self.seed, self.rank, self.start_step = prompts_per_rank, seed, rank, start_step
        self.epochs, self.world_size = epochs, world_size

    def batch(self, step: int) -> PromptBatch:
        rng = random.Random(step_seed(self.seed, step, self.rank))
        if self.epochs is not None:
            first = (step * self.world_size + self.rank) * self.prompts_per_rank
            problems = self.epochs.take(first, self.prompts_per_rank)
        else:
            problems = [self.task.sample(rng) for _ in range(self.prompts_per_rank)]
        specs = [self.sampler.sample(rng) for _ in problems]
        prompts = [self.build_prompt(p, s) for p, s in zip(problems, specs)]
        return PromptBatch(step, problems, specs, prompts)

    def __iter__(self) -> Iterator[PromptBatch]:
        step = self.start_step()
        while True:
            yield self.batch(step)
            step += 1


class PromptDataModule(L.LightningDataModule):
    """Prompts from ``task`` with budgets from ``sampler``, ``prompts_per_step`` per step split over the ranks.

    ``start_step`` tells the stream where to begin (the module's rollout step, so a resumed run continues);
    ``epochs`` walks a fixed problem list in shuffled epochs instead of drawing with replacement.
    """

    def __init__(
        self,
        task: Task,
        sampler: BudgetSampler,
        build_prompt: PromptBuilder,
        prompts_per_step: int,
        seed: int,
        start_step: Callable[[], int] = lambda: 0,
        epochs: Optional[ShuffledEpochs] = None,
    ):
        super().__init__()
        self.task, self.sampler, self.build_prompt = task, sampler, build_prompt
        self.prompts_per_step, self.seed, self.start_step = prompts_per_step, seed, start_step
        self.epochs = epochs

    def world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def prompts_per_rank(self) -> int:
        world = self.world_size()
        if self.prompts_per_step % world:
            raise ValueError(
                f"algo.prompts_per_step ({self.prompts_per_step}) must be divisible by the number of processes ({world})"
            )
        return self.prompts_per_step // world

    def stream(self, rank: int = 0) -> PromptStream:
        return PromptStream(
            self.task, self.sampler, self.build_prompt, self.prompts_per_rank(), self.seed, rank, self.start_step,
            self.epochs, self.world_size(),
        )

    def train_dataloader(self) -> DataLoader:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        return DataLoader(self.stream(rank), batch_size=None, num_workers=0)
