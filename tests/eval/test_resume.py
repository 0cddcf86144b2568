"""An evaluation interrupted after some cells resumes in its folder: the finished cells are loaded, not sampled
again, and the report is the one an uninterrupted evaluation writes; a folder made with another setup is refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lcpo.cli import evaluate
from lcpo.config import EvalGrid, EvaluateConfig, RolloutConfig, TinyModelConfig
from lcpo.eval import run as evaluation
from lcpo.eval.report import write_report
from lcpo.eval.run import evaluate_models
from lcpo.eval.store import CellStore
from lcpo.models.tiny import build_tiny, save_tiny
from lcpo.tasks.synthetic import SyntheticTask

SMALL = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
GRID = EvalGrid(budgets=[8, 16], samples=2, problems=3, max_mode_cap=12)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {name: save_tiny(*build_tiny(replace(SMALL, seed=seed)), root / name)
            for name, seed in (("a", 0), ("b", 1))}


class Interrupted(Exception):
    pass


def count_cells(monkeypatch, stop_after: int | None = None) -> list[tuple]:
    """Counts the cells sampled (``evaluate_cell`` calls); raises after ``stop_after`` of them."""
    sampled: list[tuple] = []
    real = evaluation.evaluate_cell

    def counted(engine, build_prompt, cell, *args):
        if stop_after is not None and len(sampled) == stop_after:
            raise Interrupted
        sampled.append(cell.key)
        return real(engine, build_prompt, cell, *args)

    monkeypatch.setattr(evaluation, "evaluate_cell", counted)
    return sampled


def report(rows, folder: Path) -> tuple[list[dict], str]:
    paths = write_report(rows, folder, make_plots=False)
    samples = CellStore(folder).write_samples(rows, folder / "samples.jsonl")
    return json.loads(paths["report.json"].read_text())["rows"], samples.read_text()


def test_an_interrupted_evaluation_resumes_and_reports_as_an_uninterrupted_one(models, tmp_path, monkeypatch):
    whole = report(evaluate_models(models, [SyntheticTask()], GRID, progress=False, output_dir=tmp_path / "whole"),
                   tmp_path / "whole")

    folder = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        first = count_cells(patch, stop_after=5)  # model a's four cells, then one of b's
        with pytest.raises(Interrupted):
            evaluate_models(models, [SyntheticTask()], GRID, progress=False, output_dir=folder)
    assert len(CellStore(folder).finished()) == 5
    calls = []
    original = evaluation.open_engine
    monkeypatch.setattr(evaluation, "open_engine", lambda spec, *a: calls.append(spec) or original(spec, *a))
    second = count_cells(monkeypatch)
    rows = evaluate_models(models, [SyntheticTask()], GRID, progress=False, output_dir=folder)

    assert second == [key for key in [("b", "synthetic", m, b) for m in ("exact", "max") for b in (8, 16)]
                      if key not in first]
    assert calls == [models["b"]]  # model a's cells were all there: it is not even loaded
    assert report(rows, folder) == whole


def test_a_folder_made_with_another_setup_is_refused_naming_the_keys(models, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:  # a run that finished no cell leaves nothing that blocks another setup
        count_cells(patch, stop_after=0)
        with pytest.raises(Interrupted):
            evaluate_models({"a": models["a"]}, [SyntheticTask()], replace(GRID, samples=1), progress=False,
                            output_dir=tmp_path)
    evaluate_models({"a": models["a"]}, [SyntheticTask()], GRID, progress=False, output_dir=tmp_path)
    cases = [
        (dict(grid=replace(GRID, budgets=[8, 24])), "grid.budgets"),
        (dict(grid=GRID, rollout=RolloutConfig(temperature=0.9, top_p=0.95)), "rollout.temperature"),
    ]
    for kwargs, key in cases:
        with pytest.raises(ValueError, match=key) as err:
            evaluate_models({"a": models["a"]}, [SyntheticTask()], progress=False, output_dir=tmp_path, **kwargs)
        assert str(tmp_path) in str(err.value)
    with pytest.raises(ValueError, match="model: "):
        evaluate_models({"a": models["b"]}, [SyntheticTask()], GRID, progress=False, output_dir=tmp_path)


def test_the_command_resumes_in_its_output_folder(models, tmp_path, monkeypatch):
    cfg = EvaluateConfig(models=[str(models["a"])], grid=GRID, output_dir=str(tmp_path), progress_bar=False,
                         plots=False)
    first = evaluate.run(cfg)
    report_text = (tmp_path / "report.json").read_text()
    samples = (tmp_path / "samples.jsonl").read_text()
    sampled = count_cells(monkeypatch)
    again = evaluate.run(cfg)
    assert sampled == [] and again == first
    assert (tmp_path / "report.json").read_text() == report_text and (tmp_path / "samples.jsonl").read_text() == samples
