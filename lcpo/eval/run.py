"""Budget-grid evaluation: accuracy and length control of models over budgets x modes, per task.

``evaluate_models`` is the Python API (the demo calls it with its models, then once more with the s1 baseline;
training calls it at the end of a run) and :func:`lcpo.eval.report.write_report` turns its rows into
``report.json``, ``report.md`` and plots; ``evaluate_engine`` evaluates through an engine that already exists (the
periodic validation inside training). ``python -m lcpo.evaluate`` is the Hydra entry point over both.

Protocol (L1 paper): each problem is sampled ``samples`` times (16, temperature 0.6, top_p 0.95); generation is
capped at ``exact_factor * N`` tokens (2N) in exact mode and ``max_mode_cap`` (8192) in max mode; accuracy is
pass@1 averaged over samples; the length error is the signed relative error of the mean length. Budget forcing
(s1) makes one row per budget with mode ``"forced"``: by default it receives no budget sentence in its prompt (the
base model was never taught one; ``grid.forced_prompt`` changes that) and is forced to think for the budget instead
(see ``lcpo.rollout.budget_forcing``).

With an output folder, every cell is written there as it finishes (``lcpo.eval.store``), and an evaluation into a
folder that holds finished cells loads them instead of sampling them again: an interrupted evaluation resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lcpo.config import EvalGrid, PromptConfig, RolloutConfig
from lcpo.eval.cells import evaluate_cell
from lcpo.eval.engines import ModelSpec, free_memory, name_models, open_engine, source
from lcpo.eval.plan import Cell, EvalTask, Plan
from lcpo.eval.rows import EvalRow
from lcpo.eval.store import CellStore, setup
from lcpo.rollout.base import RolloutEngine
from lcpo.rollout.thinking import ThinkingCounter
from lcpo.tasks import Task
from lcpo.tasks.prompts import PromptBuilder

CellKey = tuple[str, str, str, int]


def evaluate_models(
    models: Mapping[str, ModelSpec] | Sequence[str | Path],
    tasks: Sequence[Task | EvalTask],
    grid: EvalGrid | None = None,
    *,
    rollout: RolloutConfig | None = None,
    prompt: PromptConfig | None = None,
    dtype: str = "float32",
    attn_implementation: str | None = "eager",
    device: str = "auto",
    progress: bool = True,
    output_dir: str | Path | None = None,
) -> list[EvalRow]:
    """One report row per (model, task, mode, budget).

    ``models`` maps row names to transformers folders (or to already loaded ``(model, tokenizer)`` pairs); a
    list of folders is named by folder. ``rollout`` picks the engine and sampling (default: HF generate at
    temperature 0.6, top_p 0.95); with ``rollout.name == "budget_forcing"`` rows are the s1 baseline: named
    "s1" (one model) or "s1-<name>", mode "forced". Each cell is seeded from (seed, task, mode, budget) so every
    model sees the same random stream. Each model gets its own engine, released before the next model loads; with
    ``rollout.name == "vllm"`` the engine loads the folder itself (no transformers copy of the model is loaded) and
    is shut down after its rows. ``output_dir``: cells are stored there as they finish (with their samples), and
    the cells already there are loaded, not sampled (a model whose cells are all there is not even loaded); a
    folder whose cells were made with another setup is refused before anything loads (``lcpo.eval.store``).
    """
    rollout = rollout or RolloutConfig().with_protocol_sampling()
    named = name_models(models)
    forced = rollout.name == "budget_forcing"
    labels = {name: (("s1" if len(named) == 1 else f"s1-{name}") if forced else name) for name in named}
    plan = Plan.make(tasks, grid or EvalGrid(), rollout, prompt or PromptConfig())
    store = None if output_dir is None else CellStore(output_dir)
    if store is not None:
        for name, spec in named.items():
            store.claim(labels[name], setup(plan, source(spec), None if isinstance(spec, tuple) else dtype))
    done = store.finished() if store is not None else set()
    rows: list[EvalRow] = []
    columns = TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    with Progress(*columns, disable=not progress) as bar:
        tracker = bar.add_task("evaluate", total=len(named) * plan.problems_per_model)

        def advance(problems: int, description: str) -> None:
            bar.update(tracker, advance=problems, description=description)

        for name, spec in named.items():
            cells = list(plan.cells(labels[name]))
            if all(cell.key in done for cell in cells):
                rows += run_cells(plan, cells, None, None, advance, store, done)
                continue
            engine, tokenizer = open_engine(
                spec, rollout, plan.max_new_tokens, plan.grid.seed, dtype, attn_implementation, device
            )
            try:
                rows += run_cells(plan, cells, engine, tokenizer, advance, store, done)
            finally:
                engine.close()
                del engine
                free_memory()
    return rows


def evaluate_engine(
    engine: RolloutEngine,
    tokenizer: Any,
    label: str,
    tasks: Sequence[Task | EvalTask],
    grid: EvalGrid,
    *,
    rollout: RolloutConfig,
    prompt: PromptConfig,
    store: CellStore | None = None,
    done: Collection[CellKey] = (),
) -> list[EvalRow]:
    """The rows of :func:`evaluate_models` for one model behind an engine that already exists (a training run's,
    which holds the current weights), without a progress bar. ``store``: where cells are loaded from and saved to
    (on the rank that writes); ``done``: the cells not to sample (every rank gets the same, so that ranks that
    generate together stay in step); rows of done cells come back only where ``store`` is given."""
    plan = Plan.make(tasks, grid, rollout, prompt)
    if store is not None:
        store.claim(label, setup(plan, source((engine, tokenizer)), None))
    return run_cells(plan, list(plan.cells(label)), engine, tokenizer, lambda k, d: None, store, set(done))


def run_cells(
    plan: Plan,
    cells: Sequence[Cell],
    engine: RolloutEngine | None,
    tokenizer: Any,
    advance: Callable[[int, str], None],
    store: CellStore | None,
    done: Collection[CellKey],
) -> list[EvalRow]:
    """Each cell's row: loaded from ``store`` when done, else sampled through ``engine`` (and saved to ``store``)."""
    build_prompt = None if tokenizer is None else PromptBuilder(plan.prompt, tokenizer)
    count_thinking = None if tokenizer is None else ThinkingCounter(tokenizer)
    rows = []
    for cell in cells:
        description = f"{cell.model} {cell.task.name} {cell.mode} {cell.budget}"
        if cell.key in done:
            advance(len(cell.problems), description)
            if store is not None:
                rows.append(store.load(cell))
            continue
        result = evaluate_cell(
            engine, build_prompt, cell, plan.grid, plan.rollout, lambda k: advance(k, description), count_thinking
        )
        if store is not None:
            store.save(cell, result)
        rows.append(result.row)
    return rows
