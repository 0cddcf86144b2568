"""Budget-grid evaluation: accuracy and length control of models over budgets x modes, per task.

``evaluate_models`` is the Python API (the demo calls it with its models, then once more with the s1 baseline)
and ``write_report`` turns its rows into ``report.json``, ``report.md`` and plots. ``python -m lcpo.evaluate``
(console script ``lcpo-evaluate``) is thin Hydra glue over both, configured by ``conf/evaluate.yaml``::

    lcpo-evaluate models='{base: /models/base, l1: outputs/train/x/model}' grid.budgets='[512,1024]'
    lcpo-evaluate models='[/models/base]' rollout=budget_forcing        # the s1 baseline, rows named "s1"

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
import logging
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, TextIO, Union

import hydra
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lcpo import metrics, plots
from lcpo.budgets import BudgetSpec
from lcpo.config import LoggerConfig, PromptConfig, RolloutConfig, TaskConfig
from lcpo.eval_grid import FORCED, EvalGrid
from lcpo.grading import Grader
from lcpo.models import DTYPES, load_pretrained
from lcpo.prompts import PromptBuilder
from lcpo.rollout.base import Completion, RolloutEngine, SamplingConfig
from lcpo.rollout.engines import build_engine
from lcpo.tasks import Problem, Task, build_task

log = logging.getLogger(__name__)

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


def protocol_rollout(rollout: RolloutConfig, name: str = "hf") -> RolloutConfig:
    """The training rollout settings with the evaluation protocol's sampling: temperature 0.6, top_p 0.95."""
    return replace(rollout, name=name, temperature=0.6, top_p=0.95)


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
    """One report row per (model, task, mode, budget): the metrics of :func:`lcpo.metrics.group_metrics`.

    ``models`` maps row names to transformers folders (or to already loaded ``(model, tokenizer)`` pairs); a
    list of folders is named by folder. ``rollout`` picks the engine and sampling (default: HF generate at
    temperature 0.6, top_p 0.95); with ``rollout.name == "budget_forcing"`` rows are the s1 baseline: named
    "s1" (one model) or "s1-<name>", mode "forced". ``samples_path`` appends every completion as JSON lines.
    Each cell is seeded from (seed, task, mode, budget) so every model sees the same random stream.
    """
    grid = grid or EvalGrid()
    rollout = rollout or protocol_rollout(RolloutConfig())
    prompt = prompt or PromptConfig()
    named = _name_models(models)
    forced = rollout.name == "budget_forcing"
    modes = [FORCED] if forced else list(grid.modes)
    eval_tasks = [t if isinstance(t, EvalTask) else EvalTask(t) for t in tasks]
    problem_sets = {t.name: t.task.eval_set(grid.problems, grid.seed) for t in eval_tasks}
    if len(problem_sets) != len(eval_tasks):
        raise ValueError(f"task names must be unique, got {[t.name for t in eval_tasks]}")
    total = len(named) * len(modes) * len(grid.budgets) * sum(len(p) for p in problem_sets.values())

    rows: list[dict] = []
    with _progress(progress) as bar, _sink(samples_path) as sink:
        tracker = bar.add_task("evaluate", total=total)
        for name, spec in named.items():
            label = ("s1" if len(named) == 1 else f"s1-{name}") if forced else name
            model, tokenizer = _load(spec, dtype, attn_implementation, device)
            engine = build_engine(rollout, model, tokenizer)
            build_prompt = PromptBuilder(
                prompt.template(), tokenizer, prompt.use_chat_template, prompt.response_prefix
            )
            for task in eval_tasks:
                for mode in modes:
                    for budget in grid.budgets:
                        bar.update(tracker, description=f"{label} {task.name} {mode} {budget}")
                        cell = _Cell(label, task, problem_sets[task.name], mode, budget)
                        advance = lambda k: bar.advance(tracker, k)  # noqa: E731
                        groups = _generate(engine, build_prompt, cell, grid, rollout, advance)
                        rows.append(_row(cell, groups, grid, sink))
            del model, engine
            _free_memory()
    return rows


def write_report(rows: Sequence[dict], out_dir: str | Path, make_plots: bool = True) -> dict[str, Path]:
    """Writes ``report.json`` (``{"rows": [...]}``), ``report.md`` and the PNG plots; returns their paths."""
    if not rows:
        raise ValueError("no rows to report")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report.json": out / "report.json", "report.md": out / "report.md"}
    paths["report.json"].write_text(json.dumps({"rows": list(rows)}, indent=1) + "\n")
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
    mode: str
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
    mode = grid.forced_prompt if cell.mode == FORCED else cell.mode
    spec = BudgetSpec("none", None) if mode == "none" else BudgetSpec(mode, cell.budget)
    sampling = SamplingConfig(rollout.temperature, rollout.top_p, rollout.top_k, grid.cap(cell.mode, cell.budget))
    prompts = [build_prompt(p, spec) for p in cell.problems]
    torch.manual_seed(grid.seed + cell.seed)
    step = max(1, rollout.batch_size // grid.samples)
    groups: list[list[Completion]] = []
    for start in range(0, len(prompts), step):
        chunk = prompts[start : start + step]
        extra = {"budgets": [cell.budget] * len(chunk)} if cell.mode == FORCED else {}
        groups.extend(engine.generate(chunk, grid.samples, sampling, **extra))
        advance(len(chunk))
    return groups


def _row(cell: _Cell, groups: list[list[Completion]], grid: EvalGrid, sink: TextIO | None) -> dict:
    correct = [[cell.task.grader_for(p)(c.text, p.answer) for c in g] for p, g in zip(cell.problems, groups)]
    lengths = [[c.length for c in g] for g in groups]
    if sink is not None:
        for problem, group, marks in zip(cell.problems, groups, correct):
            for c, ok in zip(group, marks):
                record = {"model": cell.model, "task": cell.task.name, "mode": cell.mode, "budget": cell.budget,
                          "problem": problem.id, "answer": problem.answer, "length": c.length, "correct": ok,
                          "finish_reason": c.finish_reason, "text": c.text}
                sink.write(json.dumps(record) + "\n")
    flat = [n for g in lengths for n in g]
    return {
        "model": cell.model, "task": cell.task.name, "mode": cell.mode, "budget": cell.budget,
        "n": len(cell.problems), "samples": grid.samples, "k": grid.k,
        **metrics.group_metrics(correct, lengths, cell.budget, grid.k),
        "truncated_share": sum(c.truncated for g in groups for c in g) / len(flat),
        "lengths": flat,
    }


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

    def advance(self, *args, **kwargs) -> None: ...


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


# --------------------------------------------------------------------------------------------------- Hydra glue


@dataclass
class EvaluateConfig:
    """``conf/evaluate.yaml``'s schema. ``task`` is the lead's task group; ``extra_files`` adds file tasks
    (JSONL/parquet, kind auto, graded like ``task``). ``logger`` reuses the training logger group (wandb only)."""

    models: Any = None
    task: TaskConfig = field(default_factory=TaskConfig)
    extra_files: list[str] = field(default_factory=list)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(temperature=0.6, top_p=0.95))
    grid: EvalGrid = field(default_factory=EvalGrid)
    logger: LoggerConfig = field(default_factory=lambda: LoggerConfig(wandb=False, csv=False))
    dtype: str = "float32"
    attn_implementation: Optional[str] = "eager"
    device: str = "auto"
    num_threads: Optional[int] = None
    progress_bar: bool = True
    plots: bool = True
    save_samples: bool = True
    output_dir: str = "outputs/evaluate"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        if self.rollout.name == "vllm" and self.device == "cpu":
            raise ValueError("rollout=vllm needs a GPU; use rollout=hf on CPU")
        if not self.models:
            raise ValueError("models is empty: pass models='{name: /path/to/model}' or models='[/path/to/model]'")


def run(cfg: EvaluateConfig) -> list[dict]:
    """Evaluates, writes the report (and per-sample ``samples.jsonl``) to ``cfg.output_dir``, logs to wandb."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    grader = Grader(kind=cfg.task.grader, require_think=cfg.task.require_think)
    tasks = [EvalTask(build_task(cfg.task), grader)]
    for path in cfg.extra_files:
        tasks.append(EvalTask(build_task(TaskConfig(name=Path(path).suffix.lstrip("."), path=path)), grader))
    out = Path(cfg.output_dir)
    rows = evaluate_models(
        cfg.models, tasks, cfg.grid, rollout=cfg.rollout, prompt=cfg.prompt, dtype=cfg.dtype,
        attn_implementation=cfg.attn_implementation, device=cfg.device, progress=cfg.progress_bar,
        samples_path=out / "samples.jsonl" if cfg.save_samples else None,
    )
    paths = write_report(rows, out, make_plots=cfg.plots)
    log.info("evaluation report: %s", paths["report.md"])
    if cfg.logger.wandb and cfg.logger.wandb_mode != "disabled":
        log_to_wandb(rows, paths, cfg.logger, out)
    return rows


def log_to_wandb(rows: Sequence[dict], paths: Mapping[str, Path], logger: LoggerConfig, out: Path) -> None:
    """Logs the rows as a table and the plots as images (offline unless ``wandb_mode=online``); wandb is
    imported here so the package works without it."""
    try:
        import wandb
    except ImportError:
        log.warning("wandb is not installed; the report is only on disk")
        return
    columns = [c for c in rows[0] if c != "lengths"]
    wb_run = wandb.init(
        project=logger.project, group=logger.group, name=logger.name, job_type="evaluate", dir=str(out),
        mode="offline" if logger.wandb_mode == "offline" else "online",
    )
    images = {name: wandb.Image(str(p)) for name, p in paths.items() if name.endswith(".png")}
    wb_run.log({"report": wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in rows]), **images})
    wb_run.finish()


ConfigStore.instance().store(name="evaluate_schema", node=EvaluateConfig)


@hydra.main(config_path="../conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """``python -m lcpo.evaluate`` / ``lcpo-evaluate``: see the module docstring."""
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, EvaluateConfig)
    run(obj)


if __name__ == "__main__":
    main()
