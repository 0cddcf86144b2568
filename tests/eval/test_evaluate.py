"""Budget-grid evaluation: real tiny models on a tiny grid write a valid report; metrics are wired correctly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from lcpo.cli import evaluate
from lcpo.eval import engines
from lcpo.config import EvalGrid, EvaluateConfig, ForcingConfig, RolloutConfig, TinyModelConfig
from lcpo.eval.report import write_report
from lcpo.eval.run import evaluate_models
from lcpo.eval.store import CellStore
from lcpo.rollout.base import Completion
from lcpo.tasks.files import load_file_task
from lcpo.tasks.synthetic import SyntheticTask
from lcpo.models.tiny import build_tiny, save_tiny

ROW_KEYS = {"model", "task", "mode", "budget", "n", "samples", "accuracy", "pass_at_k", "mean_tokens",
            "length_std", "rel_error", "over_budget_share"}
SMALL = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
SHORT_CUE = "</think>\\boxed{"  # 8 tokens with the tiny tokenizer, so budgets can stay small


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    model, tokenizer = build_tiny(SMALL)
    return save_tiny(model, tokenizer, tmp_path_factory.mktemp("models") / "tiny")


def test_tiny_models_and_s1_on_a_tiny_grid_write_a_valid_report(tiny_dir, tmp_path):
    grid = EvalGrid(budgets=[8, 16], samples=2, problems=3, max_mode_cap=12)
    rows = evaluate_models({"base": tiny_dir}, [SyntheticTask()], grid, progress=False, output_dir=tmp_path)
    assert [(r.model, r.mode, r.budget) for r in rows] == [
        ("base", "exact", 8), ("base", "exact", 16), ("base", "max", 8), ("base", "max", 16)]
    for row in rows:
        assert row.n == 3 and row.samples == 2 and len(row.lengths) == 6
        assert max(row.lengths) <= (2 * row.budget if row.mode == "exact" else 12)
        assert row.rel_error == pytest.approx((row.mean_tokens - row.budget) / row.budget)
    CellStore(tmp_path).write_samples(rows, tmp_path / "samples.jsonl")
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 4 * 6

    forced = RolloutConfig(name="budget_forcing", forcing=ForcingConfig(answer_cue=SHORT_CUE, answer_max_tokens=3))
    s1 = evaluate_models([tiny_dir], [SyntheticTask()], EvalGrid(budgets=[16, 24], samples=2, problems=2),
                         rollout=forced, progress=False)
    assert [(r.model, r.mode, r.budget) for r in s1] == [("s1", "forced", 16), ("s1", "forced", 24)]
    for row in s1:
        assert all(row.budget < n <= row.budget + 3 for n in row.lengths)  # budget + answer tokens

    paths = write_report(rows + s1, tmp_path / "report")
    report = json.loads(paths["report.json"].read_text())
    assert len(report["rows"]) == 6 and ROW_KEYS <= set(report["rows"][-1])
    markdown = paths["report.md"].read_text()
    assert "| base | synthetic | exact | 8 | 3 | 2 |" in markdown and "| s1 | synthetic | forced | 24 |" in markdown
    for name in ("accuracy_vs_tokens.png", "length_vs_budget.png", "length_distribution.png"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class ScriptedEngine:
    """Answers the first ``right`` samples of every prompt correctly, with a known length per sample."""

    def __init__(self, problems, right: int):
        self.problems, self.right = problems, right

    def generate(self, prompts, n, sampling, *, budgets=None, seed=None):
        groups = []
        for prompt in prompts:
            problem = next(p for p in self.problems if p.question in prompt)
            texts = [f"ok</think>\\boxed{{{problem.answer if i < self.right else 'Z'}}}" for i in range(n)]
            groups.append([Completion([0], [1] * (10 * (i + 1)), t, "eos") for i, t in enumerate(texts)])
        return groups

    def close(self):
        pass


def test_grading_and_metrics_are_wired_per_problem_kind(tmp_path, monkeypatch):
    lines = [{"problem": "1+1?", "answer": "2"}, {"question": "Prime?", "choices": ["4", "5"], "answer": "B"}]
    (tmp_path / "mix.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    task = load_file_task(tmp_path / "mix.jsonl")
    monkeypatch.setattr(engines, "build_engine", lambda rollout, model, tok, seed: ScriptedEngine(task.problems, right=1))
    model = build_tiny(SMALL)
    (row,) = evaluate_models({"m": model}, [task], EvalGrid(budgets=[20], modes=["max"], samples=4, pass_k=2),
                             progress=False)
    assert row.accuracy == pytest.approx(0.25)  # the letter grader accepts \boxed{B}, the math one \boxed{2}
    assert row.pass_at_k == pytest.approx(0.5)  # one correct of four: 1 - C(3,2)/C(4,2)
    assert row.lengths == [10, 20, 30, 40] * 2 and row.over_budget_share == 0.5
    assert row.mean_tokens == 25 and row.rel_error == pytest.approx(0.25)


@pytest.mark.parametrize("forced_prompt, sentence", [("none", None), ("exact", "Think for 40 tokens."),
                                                      ("max", "Think for maximum 40 tokens.")])
def test_s1_prompts_carry_the_budget_sentence_the_grid_asks_for(monkeypatch, forced_prompt, sentence):
    seen: list[tuple[str, list[int]]] = []

    class Recorder:
        def generate(self, prompts, n, sampling, *, budgets=None, seed=None):
            seen.extend(zip(prompts, budgets))
            return [[Completion([0], [1] * 41, "</think>\\boxed{0}", "eos")] * n for _ in prompts]

        def close(self):
            pass

    monkeypatch.setattr(engines, "build_engine", lambda rollout, model, tok, seed: Recorder())
    grid = EvalGrid(budgets=[40], samples=1, problems=2, forced_prompt=forced_prompt)
    evaluate_models({"m": build_tiny(SMALL)}, [SyntheticTask()], grid, rollout=RolloutConfig(name="budget_forcing"),
                    progress=False)
    assert len(seen) == 2 and all(budget == 40 for _, budget in seen)
    for prompt, _ in seen:
        assert ("Think for" not in prompt) if sentence is None else (sentence in prompt)


def test_hydra_config_composes_and_runs(tiny_dir, tmp_path):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("evaluate", overrides=[
            f"models=[{tiny_dir}]", "grid.budgets=[8]", "grid.modes=[exact]", "grid.samples=2",
            "grid.problems=2", f"output_dir={tmp_path}", "progress_bar=false", "plots=false",
        ])
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, EvaluateConfig) and obj.rollout.top_p == 0.95 and obj.grid.max_mode_cap == 8192
    rows = evaluate.run(obj)
    assert [(r.model, r.mode) for r in rows] == [("tiny", "exact")]
    assert {p.name for p in tmp_path.iterdir()} == {"report.json", "report.md", "samples.jsonl", "cells"}


def test_bad_grids_are_rejected():
    with pytest.raises(ValueError, match="modes"):
        EvalGrid(modes=["exact", "sometimes"])
    with pytest.raises(ValueError, match="pass_k"):
        EvalGrid(samples=4, pass_k=8)
    with pytest.raises(ValueError, match="forced_prompt"):
        EvalGrid(forced_prompt="sometimes")
    with pytest.raises(ValueError, match="no models"):
        evaluate_models({}, [SyntheticTask()], progress=False)


def test_wandb_logging_is_skipped_with_a_warning_when_wandb_is_missing(monkeypatch, caplog, tmp_path):
    from lcpo.config import LoggerConfig

    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    evaluate.log_to_wandb([{"model": "m"}], {}, LoggerConfig(), tmp_path)
    assert "wandb is not installed" in caplog.text


def test_a_trained_model_folder_is_evaluated_as_trained(tiny_dir, tmp_path, hydra_main):
    import shutil

    from lcpo.config import PromptConfig
    from lcpo.models.meta import ModelMeta

    folder = tmp_path / "trained"
    shutil.copytree(tiny_dir, folder)
    prompt = PromptConfig(instruction="", use_chat_template=False, response_prefix="\n")
    grid = EvalGrid(budgets=[9], modes=["max"], samples=1, max_mode_cap=12, problems=2)
    ModelMeta(prompt, (6, 12), grid).write(folder)
    out = tmp_path / "eval"
    code, err = hydra_main(evaluate.main, f"models=[{folder}]", f"output_dir={out}", f"hydra.run.dir={out}",
                           "progress_bar=false", "plots=false", "grid.samples=2")
    assert code == 0, err
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert [(r["mode"], r["budget"], r["n"], r["samples"]) for r in rows] == [("max", 9, 2, 2)]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert max(s["length"] for s in samples) <= 12  # the model's own max-mode cap, not the paper's 8192
    assert all(s["question"] and s["problem"] for s in samples)  # the problem's text, not only its id
