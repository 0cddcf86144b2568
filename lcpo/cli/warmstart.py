"""Supervised warm-start: next-token SFT of a fresh policy on generated reasoning traces, before any RL.

LCPO starts from a model that already reasons (the paper: DeepScaleR-1.5B) and whose length ignores budgets. The
tiny model starts from random weights, so this stage teaches it the task and the response format on the task's
traces (for the synthetic task: one step line per term, a random number of check lines that add nothing, under
``budget_in_trace=countdown`` the tokens the prompt's budget would leave at the end of every line, and now and then
an early stop that answers from the partial sum, more likely once the count shows that the steps left no longer
fit). The prompts carry budget sentences drawn independently of the trace's verbosity, so the model learns that
prompts hold budgets (and to write the countdown), and roughly when it runs out of room, while its length follows
them only loosely: LCPO makes it follow them. The loss covers response tokens only.

``python -m lcpo.warmstart`` runs it from ``conf/warmstart.yaml``; ``run_warmstart`` is the library entry.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import hydra
import lightning as L
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, IterableDataset

from lcpo.algo.batching import pack
from lcpo.algo.budgets import BudgetSampler, BudgetSpec, Mode
from lcpo.config import CONF_DIR, WarmstartConfig, WarmstartRunConfig, to_schema
from lcpo.errors import hydra_boundary
from lcpo.models.load import load_policy
from lcpo.models.meta import ModelMeta
from lcpo.tasks.prompts import PromptBuilder
from lcpo.tasks import build_task
from lcpo.tasks.base import Problem

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


class TraceTask(Protocol):
    """A task that can write responses for its own problems, with optional lines scattered between steps (the
    synthetic task does)."""

    def sample(self, rng: random.Random) -> Problem: ...

    def steps(self, problem: Problem) -> Sequence[object]: ...

    def trace(
        self,
        problem: Problem,
        checks: Sequence[int] = (),
        budget: BudgetSpec | None = None,
        stop_after: int | None = None,
    ) -> str: ...

    def short_lines(self, problem: Problem, checks: Sequence[int], budget: BudgetSpec | None) -> list[bool]: ...


@dataclass
class TraceStream(IterableDataset):
    """Endless padded SFT batches: budgeted prompt (no loss) + trace + EOS (loss), right-padded.

    The budget and the check lines come from separate draws, so how verbose a trace is never depends on the budget
    in its prompt. Early stops come two ways: ``stop_share`` of the traces stop at a random line whatever the budget,
    and after every line whose count shows that the steps left no longer fit (``TraceTask.short_lines``) a trace
    wraps up with probability ``stop_when_short`` (``stop_when_short_max``, when set, under a max-mode budget), the
    way a reasoning model has some sense of running out of room.
    """

    task: TraceTask
    build_prompt: Callable[[Problem, BudgetSpec], str]
    budgets: BudgetSampler
    tokenizer: object
    batch_size: int
    verbosity: tuple[int, int]
    seed: int = 0
    stop_share: float = 0.0
    stop_when_short: float = 0.0
    stop_when_short_max: float | None = None

    def example(self, rng: random.Random) -> tuple[list[int], list[int]]:
        """Token ids of one (prompt, response) pair; the response ends with EOS, which counts as a token."""
        problem = self.task.sample(rng)
        spec = self.budgets.sample(rng)
        prompt = self.build_prompt(problem, spec)
        steps = len(self.task.steps(problem))
        checks = scatter_checks(rng.randint(*self.verbosity), steps, rng)
        stop_after = None
        lines_before_last_step = steps - 1 + sum(checks[:-1])
        if rng.random() < self.stop_share and lines_before_last_step > 0:
            stop_after = rng.randint(1, lines_before_last_step)
        elif chance := self._wrap_up_chance(spec):
            stop_after = first_stop(self.task.short_lines(problem, checks, spec), chance, rng)
        response = self.task.trace(problem, checks=checks, budget=spec, stop_after=stop_after)
        return self._encode(prompt), self._encode(response) + [self.tokenizer.eos_token_id]

    def _wrap_up_chance(self, spec: BudgetSpec) -> float:
        if spec.mode is Mode.MAX and self.stop_when_short_max is not None:
            return self.stop_when_short_max
        return self.stop_when_short

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def batch(self, rng: random.Random) -> dict[str, torch.Tensor]:
        pairs = [self.example(rng) for _ in range(self.batch_size)]
        input_ids, attention, response = pack(pairs, self.tokenizer.pad_token_id)
        labels = torch.where(response.bool(), input_ids, torch.full_like(input_ids, IGNORE_INDEX))
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = random.Random(self.seed)
        while True:
            yield self.batch(rng)


def first_stop(short: Sequence[bool], chance: float, rng: random.Random) -> int | None:
    """Lines written before the trace ends its thinking: after each short line (the steps left no longer fit the
    budget) it wraps up with probability ``chance``; None if it never does."""
    for i, is_short in enumerate(short):
        if is_short and rng.random() < chance:
            return i + 1
    return None


def scatter_checks(total: int, steps: int, rng: random.Random) -> list[int]:
    """``total`` check lines spread over the gaps after ``steps`` step lines, each gap drawn uniformly."""
    counts = [0] * steps
    for _ in range(total):
        counts[rng.randrange(steps)] += 1
    return counts


class WarmstartModule(L.LightningModule):
    """Next-token cross-entropy on response tokens, AdamW with linear warm-up then cosine decay."""

    def __init__(self, model: torch.nn.Module, cfg: WarmstartConfig):
        super().__init__()
        self.model = model
        self.cfg = cfg

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.model(**batch).loss
        self.log("warmstart/loss", loss, prog_bar=True, batch_size=1)
        return loss

    def configure_optimizers(self):
        cfg = self.cfg
        opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
        return [opt], [{"scheduler": sched, "interval": "step"}]


def lr_factor(step: int, cfg: WarmstartConfig) -> float:
    """Multiplier of ``cfg.lr`` at ``step``: linear warm-up, then cosine down to ``min_lr_ratio``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def run_warmstart(
    cfg: WarmstartConfig,
    model: torch.nn.Module,
    tokenizer,
    task: TraceTask,
    build_prompt: Callable[[Problem, BudgetSpec], str],
    budgets: BudgetSampler,
    out_dir: str | Path,
) -> Path:
    """Trains ``model`` in place on ``task``'s traces and saves model + tokenizer to ``out_dir`` (returned).

    ``build_prompt`` must be the prompt builder RL will use, so the warm-started model sees the same format.
    """
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    L.seed_everything(cfg.seed, workers=False, verbose=False)
    stream = TraceStream(
        task, build_prompt, budgets, tokenizer, cfg.batch_size, (cfg.min_verbosity, cfg.max_verbosity), cfg.seed,
        cfg.stop_share, cfg.stop_when_short, cfg.stop_when_short_max,
    )
    trainer = L.Trainer(
        accelerator="cpu" if not torch.cuda.is_available() else "auto",
        devices=1,
        max_steps=cfg.steps,
        max_epochs=-1,
        gradient_clip_val=cfg.grad_clip or None,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=cfg.progress_bar,
        log_every_n_steps=10,
        default_root_dir=str(out_dir),
    )
    start = time.perf_counter()
    model.train()
    trainer.fit(WarmstartModule(model, cfg), DataLoader(stream, batch_size=None, num_workers=0))
    log.info("warm-start: %d steps in %.1f s", cfg.steps, time.perf_counter() - start)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def warmstart_from_config(cfg: WarmstartRunConfig) -> Path:
    """Builds the policy, task and prompt builder named by ``cfg`` and warm-starts into ``<output_dir>/model``."""
    task = build_task(cfg.task)
    if not hasattr(task, "trace"):
        raise ValueError(f"task={cfg.task.name} cannot write traces; warm-start needs task=synthetic")
    model, tokenizer = load_policy(cfg.model)
    build_prompt = PromptBuilder(cfg.prompt, tokenizer)
    sampler = cfg.budget.sampler()
    out = run_warmstart(cfg.warmstart, model, tokenizer, task, build_prompt, sampler, Path(cfg.output_dir) / "model")
    budgets = cfg.budget.distribution()
    ModelMeta(cfg.prompt, (budgets.smallest, budgets.largest)).write(out)
    return out


@hydra.main(config_path=str(CONF_DIR), config_name="warmstart", version_base="1.3")
@hydra_boundary("lcpo-warmstart")
def main(cfg: DictConfig) -> None:
    path = warmstart_from_config(to_schema(cfg, WarmstartRunConfig))
    log.info("warm-started model saved to %s", path)


if __name__ == "__main__":
    main()
