"""The rollout collector: one rollout step's prompts in, a scored and packed batch for the update out.

generate (the engine, G samples per prompt) -> grade (the task's grader, in parallel; multiple-choice problems by
letter) -> count thinking tokens -> reward (each sample by its own mode and budget, on its total or thinking
length) -> group advantages -> pack into tensors. The LightningModule owns one and calls it at
the start of each training step, so rollouts always come from the current weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from lcpo.algo.batching import pack, pack_response_logprobs
from lcpo.algo.budgets import BudgetSpec
from lcpo.algo.answers import THINK_END
from lcpo.algo.grading import Grader
from lcpo.algo.losses import group_advantages
from lcpo.tasks.prompts import PromptBatch
from lcpo.algo.rewards import Reward, RewardInputs
from lcpo.rollout.base import Completion, RolloutEngine, SamplingConfig
from lcpo.algo.seeds import step_seed
from lcpo.tasks.base import Problem
from lcpo.tasks.choices import grade_problems


@dataclass
class RolloutBatch:
    """Scored rollouts ready for the loss: ``N = prompts x group_size`` rows, grouped contiguously.

    ``input_ids`` is prompt + response, right-padded; ``response_mask`` marks response tokens in the same layout,
    ``policy_mask`` those of them the policy gradient covers (None: all; the KL term always covers all).
    ``rollout_logp`` holds the engine's sampling log-probs in the layout of the trainer's log-probs of
    ``input_ids[:, 1:]`` (None when the engine does not return them: HF generate).
    ``samples`` holds one completion per prompt (up to the collector's ``samples_per_table``) for tables.
    ``no_think`` marks the responses without ``</think>``, which the grader cannot read an answer from under
    ``task.require_think`` (None when the grader does not require it).
    ``thinking`` holds each row's tokens before ``</think>`` (``lengths`` the total); ``source`` each row's index
    into the collector's ``sources`` (-1 for a source not listed).
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
    rollout_logp: torch.Tensor | None = None
    policy_mask: torch.Tensor | None = None
    samples: list[dict] = field(default_factory=list)
    no_think: torch.Tensor | None = None
    thinking: torch.Tensor | None = None
    source: torch.Tensor | None = None


@dataclass
class RolloutCollector:
    """Turns a :class:`PromptBatch` into a :class:`RolloutBatch` with ``engine``, ``grader`` and ``reward``.

    Sampling is seeded from (``seed``, step, rank), so a resumed run draws the same completions. ``scale_std``
    and ``adv_eps`` shape the group advantages (``algo.scale_std``, ``algo.adv_eps``). ``count_thinking`` counts a
    completion's thinking tokens (None: all of them); ``length`` is what the reward's length term reads, ``total``
    or ``thinking`` (``reward.length``). ``sources`` are the task's data sources, for per-source metrics.
    ``bookkeeping`` gives the indices of a completion's tokens that the policy gradient leaves out (a task's
    bookkeeping: :mod:`lcpo.training.bookkeeping`); they are 0 in the batch's ``policy_mask``.
    """

    engine: RolloutEngine
    grader: Grader
    reward: Reward
    sampling: SamplingConfig
    group_size: int
    pad_id: int
    seed: int
    scale_std: bool
    adv_eps: float
    samples_per_table: int
    count_thinking: Callable[[Completion], int] | None
    length: str
    sources: Sequence[str]
    bookkeeping: Callable[[Completion], list[int]] | None = None

    @torch.no_grad()
    def collect(self, batch: PromptBatch, rank: int = 0) -> RolloutBatch:
        """Generates G completions per prompt with the engine's current weights, grades, scores and packs them."""
        seed = step_seed(self.seed, batch.step, rank)
        torch.manual_seed(seed)
        start = time.perf_counter()
        groups = self.engine.generate(batch.prompts, self.group_size, self.sampling, seed=seed)
        seconds = time.perf_counter() - start
        flat: list[tuple[int, Problem, BudgetSpec, Completion]] = [
            (g, problem, spec, c)
            for g, (problem, spec, group) in enumerate(zip(batch.problems, batch.specs, groups))
            for c in group
        ]
        grades = grade_problems(self.grader, [c.text for *_, c in flat], [p for _, p, _, _ in flat])
        thinking = [c.length if self.count_thinking is None else self.count_thinking(c) for *_, c in flat]
        inputs = RewardInputs.build(
            correct=[g.correct for g in grades],
            specs=[s for _, _, s, _ in flat],
            lengths=thinking if self.length == "thinking" else [c.length for *_, c in flat],
            max_length=self.sampling.max_new_tokens,
            groups=[g for g, *_ in flat],
        )
        rewards = self.reward(inputs)
        advantages = group_advantages(
            rewards.view(-1, self.group_size), scale_std=self.scale_std, eps=self.adv_eps
        ).flatten()
        input_ids, attention_mask, response_mask = pack([(c.prompt_ids, c.token_ids) for *_, c in flat], self.pad_id)
        policy_mask = None
        if self.bookkeeping is not None:
            policy_mask = response_mask.clone()
            for row, (*_, c) in enumerate(flat):
                for j in self.bookkeeping(c):
                    policy_mask[row, len(c.prompt_ids) + j] = 0
        rollout_logp = None
        if all(c.logprobs is not None for *_, c in flat):
            rollout_logp = pack_response_logprobs([(c.prompt_ids, c.logprobs) for *_, c in flat], input_ids.shape[1])
        firsts = list(zip(flat, inputs.correct.tolist(), rewards.tolist(), thinking))[:: self.group_size]
        samples = [
            {"prompt": batch.prompts[g], "mode": s.mode.value, "budget": s.budget, "length": c.length,
             "thinking_tokens": n, "answer_tokens": c.length - n, "correct": bool(ok), "reward": r, "text": c.text}
            for (g, _, s, c), ok, r, n in firsts[: self.samples_per_table]
        ]
        sources = list(self.sources)
        source = [sources.index(p.meta["data_source"]) if p.meta.get("data_source") in sources else -1
                  for _, p, _, _ in flat]
        return RolloutBatch(
            input_ids=input_ids,
            attention_mask=attention_mask,
            response_mask=response_mask,
            policy_mask=policy_mask,
            rewards=rewards,
            advantages=advantages,
            correct=inputs.correct,
            lengths=torch.tensor([float(c.length) for *_, c in flat]),
            budgets=inputs.budget,
            modes=inputs.mode,
            truncated=torch.tensor([c.truncated for *_, c in flat]),
            group=inputs.group,
            rollout_seconds=seconds,
            rollout_logp=rollout_logp,
            samples=samples,
            no_think=torch.tensor([THINK_END not in c.text for *_, c in flat]) if self.grader.require_think else None,
            thinking=torch.tensor(thinking, dtype=torch.float32),
            source=torch.tensor(source),
        )
