"""A model folder that says how it was trained is evaluated that way unless the command line says otherwise."""

from __future__ import annotations

import logging

import pytest

from lcpo.config import EvalGrid, EvaluateConfig, PromptConfig
from lcpo.eval.as_trained import as_trained, given_keys
from lcpo.models.meta import ModelMeta, read_meta

TINY_PROMPT = PromptConfig(instruction="", use_chat_template=False, response_prefix="\n")
RUN_GRID = EvalGrid(budgets=[32, 59, 95], samples=4, max_mode_cap=160, problems=64, forced_prompt="exact")


def model_folder(tmp_path, name: str, meta: ModelMeta | None):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    if meta is not None:
        meta.write(folder)
    return str(folder)


def test_meta_round_trips(tmp_path):
    meta = ModelMeta(TINY_PROMPT, (30, 99), RUN_GRID)
    assert read_meta(model_folder(tmp_path, "m", meta)) == meta
    (tmp_path / "m" / "lcpo.json").write_text("{")
    with pytest.raises(ValueError, match="lcpo.json: not a model description"):
        read_meta(tmp_path / "m")


def test_a_trained_model_is_evaluated_with_its_prompt_and_grid(tmp_path):
    folder = model_folder(tmp_path, "m", ModelMeta(TINY_PROMPT, (30, 99), RUN_GRID))
    cfg = as_trained(EvaluateConfig(models=[folder]), set())
    assert cfg.prompt == TINY_PROMPT and cfg.grid == RUN_GRID


def test_the_command_line_wins(tmp_path):
    folder = model_folder(tmp_path, "m", ModelMeta(TINY_PROMPT, (30, 99), RUN_GRID))
    cfg = EvaluateConfig(models=[folder], grid=EvalGrid(budgets=[40, 80]))
    out = as_trained(cfg, given_keys(["prompt=default", "grid.budgets=[40,80]"]))
    assert out.prompt == PromptConfig() and out.grid.budgets == [40, 80] and out.grid.max_mode_cap == 160


def test_other_folders_keep_the_papers_grid(tmp_path):
    cfg = EvaluateConfig(models=[model_folder(tmp_path, "plain", None)])
    assert as_trained(cfg, set()) == cfg


def test_a_warm_start_gets_budgets_over_its_range(tmp_path):
    folder = model_folder(tmp_path, "ws", ModelMeta(TINY_PROMPT, (30, 99)))
    grid = as_trained(EvaluateConfig(models=[folder]), set()).grid
    assert 30 <= min(grid.budgets) and max(grid.budgets) <= 99 and grid.max_mode_cap == 198


def test_budgets_far_outside_the_training_range_warn(tmp_path, caplog):
    folder = model_folder(tmp_path, "m", ModelMeta(TINY_PROMPT, (30, 99), RUN_GRID))
    cfg = EvaluateConfig(models={"lcpo": folder}, grid=EvalGrid(budgets=[64, 512, 3600]))
    with caplog.at_level(logging.WARNING):
        as_trained(cfg, {"grid.budgets"})
    assert "budgets [512, 3600] lie far outside the range lcpo was trained on (30-99)" in caplog.text
