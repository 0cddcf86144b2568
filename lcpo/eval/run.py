"""Budget-grid evaluation: accuracy and length control of models over budgets x modes, per task.

``evaluate_models`` is the Python API (the demo calls it with its models, then once more with the s1 baseline;
training calls it at the end of a run and for its periodic validation) and ``write_report`` turns its rows into
``report.json``, ``report.md`` and plots. ``python -m lcpo.evaluate`` is the Hydra entry point over both.

Protocol (L1 paper): each problem is sampled ``samples`` times (16, temperature 0.6, top_p 0.95); generation is
capped at ``exact_factor * N`` tokens (2N) in exact mode and ``max_mode_cap`` (8192) in max mode; accuracy is
pass@1 averaged over samples; the length error is the signed relative error of the mean length. Budget forcing
(s1) makes one row per budget with mode ``"forced"``: by default it receives no budget sentence in its prompt (the
base model was never taught one; ``grid.forced_prompt`` changes that) and is forced to think for the budget instead
(see ``lcpo.rollout.budget_forcing``).
"""

from __future__ import annotations

import gc
import json
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TextIO, Union

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lcpo.algo import metrics

from lcpo.eval import plots
from lcpo.algo.budgets import BudgetSpec, Mode
from lcpo.config import FORCED, EvalGrid, PromptConfig, RolloutConfig
from lcpo.algo.grading import Grader
from lcpo.models.load import load_pretrained
from lcpo.tasks.prompts import PromptBuilder
from lcpo.rollout.base import Completion, RolloutEngine
from lcpo.rollout.engines import build_engine
from lcpo.models.tiny import load_tokenizer
from lcpo.tasks import Problem, Task

PLOTS = {
    "accuracy_vs_tokens.png": plots.plot_accuracy_vs_tokens,
    "length_vs_budget.png": plots.plot_length_vs_budget,
    "length_distribution.png": plots.plot_length_distribution,
}

ModelSpec = Union[str, Path, tuple[Any, Any]]


@dataclass(frozen=True)
class EvalTask:
    """A task with the grader for its problems that are not multiple choice (those always use the letter grader)."""

    task: Task
    grader: Grader = Grader()

    @property
    def name(self) -> str:
        return self.task.name

    def grader_for(self, problem: Problem) -> Grader:
        return replace(self.grader, kind="choice") if problem.is_choice else self.grader


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
    samples_path: Path | None = None,
) -> list[dict]:
    """One report row per (model, task, mode, budget): the metrics of :func:`lcpo.algo.metrics.group_metrics`.

    ``models`` maps row names to transformers folders (or to already loaded ``(model, tokenizer)`` pairs); a
    list of folders is named by folder. ``rollout`` picks the engine and sampling (default: HF generate at
    temperature 0.6, top_p 0.95); with ``rollout.name == "budget_forcing"`` rows are the s1 baseline: named
    "s1" (one model) or "s1-<name>", mode "forced". ``samples_path`` appends every completion as JSON lines.
    Each cell is seeded from (seed, task, mode, budget) so every model sees the same random stream. Each model
    gets its own engine, released before the next model loads; with ``rollout.name == "vllm"`` the engine loads
    the folder itself (no transformers copy of the model is loaded) and is shut down after its rows.
    """
    rollout = rollout or RolloutConfig().with_protocol_sampling()
    named = _name_models(models)
    forced = rollout.name == "budget_forcing"
    plan = _Plan.make(tasks, grid or EvalGrid(), rollout, prompt or PromptConfig())
    rows: list[dict] = []
    with _progress(progress) as bar, _sink(samples_path) as sink:
        tracker = bar.add_task("evaluate", total=len(named) * plan.cells_per_model)
        for name, spec in named.items():
            label = ("s1" if len(named) == 1 else f"s1-{name}") if forced else name
            engine, tokenizer = _engine(spec, rollout, plan, dtype, attn_implementation, device)
            try:
                rows += plan.run(
                    engine, tokenizer, label, lambda k, d: bar.update(tracker, advance=k, description=d), sink
                )
            finally:
                engine.close()
                del engine
                _free_memory()
    return rows


def _engine(
    spec: ModelSpec, rollout: RolloutConfig, plan: "_Plan", dtype: str, attn_implementation: str | None, device: str
) -> tuple[RolloutEngine, Any]:
    """The engine for one model: a vLLM engine over its folder (a live model is saved to a temporary one first), or
    an engine over the transformers model loaded onto ``device``."""
    if rollout.name != "vllm":
        model, tokenizer = _load(spec, dtype, attn_implementation, device)
        return build_engine(rollout, model, tokenizer, seed=plan.grid.seed), tokenizer
    from lcpo.rollout.vllm import VLLMEngine

    with tempfile.TemporaryDirectory(prefix="lcpo-eval-") as scratch:
        if isinstance(spec, tuple):
            model, tokenizer = spec
            model.save_pretrained(scratch)
            tokenizer.save_pretrained(scratch)
            path = Path(scratch)
        else:
            path, tokenizer = Path(spec), load_tokenizer(spec)
        engine = VLLMEngine.standalone(path, tokenizer, rollout, plan.max_new_tokens, seed=plan.grid.seed)
    return engine, tokenizer


def evaluate_engine(
    engine: RolloutEngine,
    tokenizer: Any,
    label: str,
    tasks: Sequence[Task | EvalTask],
    grid: EvalGrid,
    *,
    rollout: RolloutConfig,
    prompt: PromptConfig,
) -> list[dict]:
    """The rows of :func:`evaluate_models` for one model behind an engine that already exists (a training run's,
    which holds the current weights), without a progress bar or samples file."""
    return _Plan.make(tasks, grid, rollout, prompt).run(engine, tokenizer, label, lambda k, d: None, None)


@dataclass(frozen=True)
class _Plan:
    """What one model is evaluated on: tasks with their fixed problem lists, modes, budgets and sampling."""

    tasks: list[EvalTask]
    problem_sets: dict[str, list[Problem]]
    modes: list[Mode | str]  # budget modes, or FORCED alone for s1 budget forcing
    grid: EvalGrid
    rollout: RolloutConfig
    prompt: PromptConfig

    @classmethod
    def make(cls, tasks: Sequence[Task | EvalTask], grid: EvalGrid, rollout: RolloutConfig, prompt: PromptConfig) -> "_Plan":
        eval_tasks = [t if isinstance(t, EvalTask) else EvalTask(t) for t in tasks]
        problem_sets = {t.name: t.task.eval_set(grid.problems, grid.seed) for t in eval_tasks}
        if len(problem_sets) != len(eval_tasks):
            raise ValueError(f"task names must be unique, got {[t.name for t in eval_tasks]}")
        modes = [FORCED] if rollout.name == "budget_forcing" else [Mode(m) for m in grid.modes]
        return cls(eval_tasks, problem_sets, modes, grid, rollout, prompt)

    @property
    def max_new_tokens(self) -> int:
        """The longest generation any cell asks for."""
        return max(self.grid.cap(mode, budget) for mode in self.modes for budget in self.grid.budgets)

    @property
    def cells_per_model(self) -> int:
        """Problems x modes x budgets: the progress bar's unit."""
        return len(self.modes) * len(self.grid.budgets) * sum(len(p) for p in self.problem_sets.values())

    def run(
        self, engine: RolloutEngine, tokenizer: Any, label: str, advance: Callable[[int, str], None],
        sink: TextIO | None,
    ) -> list[dict]:
        build_prompt = PromptBuilder(self.prompt, tokenizer)
        rows = []
        for task in self.tasks:
            for mode in self.modes:
                for budget in self.grid.budgets:
                    description = f"{label} {task.name} {mode} {budget}"
                    cell = _Cell(label, task, self.problem_sets[task.name], mode, budget)
                    groups = _generate(engine, build_prompt, cell, self.grid, self.rollout, lambda k: advance(k, description))
                    rows.append(_row(cell, groups, self.grid, sink))
        return rows


def write_report(
    rows: Sequence[dict], out_dir: str | Path, make_plots: bool = True, extra: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Writes ``report.json`` (``{"rows": [...]}`` plus the entries of ``extra``), ``report.md`` and the PNG plots;
    returns their paths."""
    if not rows:
        raise ValueError("no rows to report")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report.json": out / "report.json", "report.md": out / "report.md"}
    paths["report.json"].write_text(json.dumps({"rows": list(rows), **(extra or {})}, indent=1) + "\n")
    paths["report.md"].write_text(report_markdown(rows))
    if make_plots:
        paths.update({name: plot(rows, out / name) for name, plot in PLOTS.items()})
    return paths


def report_markdown(rows: Sequence[dict]) -> str:
    """The metrics table, then the correlation of length with budget per model, task and mode."""
    lines = ["# Evaluation report", "", plots.markdown_table(rows, plots.REPORT_COLUMNS)]
    correlations = []
    for (model, task, mode), series in plots.group_rows(rows, lambda r: (r["model"], r["task"], r["mode"])).items():
        budgets = [r["budget"] for r in series for _ in r["lengths"]]
        lengths = [n for r in series for n in r["lengths"]]
        r = metrics.pearson(budgets, lengths) if len(series) > 1 else float("nan")
        correlations.append({"model": model, "task": task, "mode": mode, "pearson_r(budget, tokens)": r})
    lines += ["## Length vs budget correlation (all samples)", ""]
    lines.append(plots.markdown_table(correlations, list(correlations[0])))
    return "\n".join(lines)


@dataclass(frozen=True)
class _Cell:
    model: str
    task: EvalTask
    problems: list[Problem]
    mode: Mode | str  # FORCED for s1 budget forcing
    budget: int

    @property
    def seed(self) -> int:
        return zlib.crc32(f"{self.task.name}/{self.mode}/{self.budget}".encode())


def _generate(
    engine: RolloutEngine,
    build_prompt: PromptBuilder,
    cell: _Cell,
    grid: EvalGrid,
    rollout: RolloutConfig,
    advance: Callable[[int], None],
) -> list[list[Completion]]:
    """Samples the cell's problems in chunks of about ``rollout.batch_size`` sequences (for progress updates)."""
    mode = Mode(grid.forced_prompt) if cell.mode == FORCED else cell.mode
    spec = BudgetSpec(Mode.NONE, None) if mode is Mode.NONE else BudgetSpec(mode, cell.budget)
    sampling = rollout.sampling(grid.cap(cell.mode, cell.budget))
    prompts = [build_prompt(p, spec) for p in cell.problems]
    torch.manual_seed(grid.seed + cell.seed)
    step = max(1, rollout.batch_size // grid.samples)
    groups: list[list[Completion]] = []
    for start in range(0, len(prompts), step):
        chunk = prompts[start : start + step]
        extra = {"budgets": [cell.budget] * len(chunk)} if cell.mode == FORCED else {}
        groups.extend(engine.generate(chunk, grid.samples, sampling, seed=grid.seed + cell.seed + start, **extra))
        advance(len(chunk))
    return groups


def _row(cell: _Cell, groups: list[list[Completion]], grid: EvalGrid, sink: TextIO | None) -> dict:
    correct = _grade(cell, groups)
    lengths = [[c.length for c in g] for g in groups]
    if sink is not None:
        for problem, group, marks in zip(cell.problems, groups, correct):
            for c, ok in zip(group, marks):
                record = {"model": cell.model, "task": cell.task.name, "mode": str(cell.mode), "budget": cell.budget,
                          "problem": problem.id, "question": problem.question, "answer": problem.answer,
                          "length": c.length, "correct": ok,
                          "finish_reason": c.finish_reason, "text": c.text}
                sink.write(json.dumps(record) + "\n")
    flat = [n for g in lengths for n in g]
    return {
        "model": cell.model, "task": cell.task.name, "mode": str(cell.mode), "budget": cell.budget,
        "n": len(cell.problems), "samples": grid.samples, "k": grid.k,
        **metrics.group_metrics(correct, lengths, cell.budget, grid.k),
        "truncated_share": sum(c.truncated for g in groups for c in g) / len(flat),
        "lengths": flat,
    }


def _grade(cell: _Cell, groups: list[list[Completion]]) -> list[list[bool]]:
    """Per-sample correctness, each problem by its grader; every grader's share of the cell goes in one batch."""
    by_grader: dict[Grader, list[tuple[int, int]]] = {}
    for i, problem in enumerate(cell.problems):
        by_grader.setdefault(cell.task.grader_for(problem), []).extend((i, j) for j in range(len(groups[i])))
    correct = [[False] * len(g) for g in groups]
    for grader, cells in by_grader.items():
        grades = grader.grade_many([groups[i][j].text for i, j in cells], [cell.problems[i].answer for i, _ in cells])
        for (i, j), grade in zip(cells, grades):
            correct[i][j] = grade.correct
    return correct


def _name_models(models: Mapping[str, ModelSpec] | Sequence[str | Path]) -> dict[str, ModelSpec]:
    if isinstance(models, Mapping):
        named = dict(models)
    else:
        named = {Path(p).name: p for p in models}
        if len(named) != len(models):
            named = {str(p): p for p in models}
    if not named:
        raise ValueError("no models to evaluate (set models to {name: path} or a list of paths)")
    return named


def _load(spec: ModelSpec, dtype: str, attn_implementation: str | None, device: str) -> tuple[Any, Any]:
    """A ``(model, tokenizer)`` pair: a folder is loaded onto ``device`` ("auto": CUDA when available); a pair
    passed in stays where it is unless a device is named (it may be a live policy the caller keeps using)."""
    if isinstance(spec, tuple):
        model, tokenizer = spec
        return (model if device == "auto" else model.to(device)), tokenizer
    model, tokenizer = load_pretrained(spec, dtype, attn_implementation)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device), tokenizer


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _NoBar:
    """Stands in for a rich progress bar when progress display is off."""

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def update(self, *args, **kwargs) -> None: ...


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | _NoBar]:
    """A rich progress bar over the grid (problems done, summed over cells), or a silent stand-in."""
    if not enabled:
        yield _NoBar()
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        yield bar


@contextmanager
def _sink(path: Path | None) -> Iterator[TextIO | None]:
    """An append-mode JSONL file for per-sample records, or None when no path is given."""
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        yield handle
