"""The supervised warm-start: response-only loss, a few steps lower it, the export reloads offline."""

import random

import torch

from lcpo.budgets import BudgetSampler, UniformBudget
from lcpo.config import PromptConfig, SyntheticTaskConfig, TinyModelConfig, WarmstartConfig
from lcpo.tasks.synthetic import SyntheticTask
from lcpo.tiny import build_tiny, load_tiny
from lcpo.warmstart import IGNORE_INDEX, TraceStream, lr_factor, run_warmstart

TEMPLATE = PromptConfig(instruction="")


def build_prompt(problem, spec) -> str:
    return TEMPLATE.render(problem.question, spec) + "\n"


def stream(tokenizer, batch_size: int = 8) -> TraceStream:
    task = SyntheticTask(SyntheticTaskConfig(min_terms=2, max_terms=3))
    return TraceStream(task, build_prompt, BudgetSampler(UniformBudget(20, 60)), tokenizer, batch_size, (0, 2))


def test_loss_covers_the_response_and_eos_only():
    _, tok = build_tiny(TinyModelConfig(hidden_size=16, num_layers=1, intermediate_size=32))
    batch = stream(tok).batch(random.Random(0))
    row_ids, row_labels = batch["input_ids"][0], batch["labels"][0]
    supervised = tok.decode(row_labels[row_labels != IGNORE_INDEX].tolist())
    assert supervised.startswith("<think>") and "Think for" not in supervised
    assert row_labels[row_labels != IGNORE_INDEX][-1] == tok.eos_token_id
    assert (row_labels[batch["attention_mask"][0] == 0] == IGNORE_INDEX).all()
    assert torch.equal(row_ids[row_labels != IGNORE_INDEX], row_labels[row_labels != IGNORE_INDEX])


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = WarmstartConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, cfg) == 0.1 and lr_factor(9, cfg) == 1.0
    assert abs(lr_factor(100, cfg) - 0.1) < 1e-9


def test_a_few_steps_lower_the_loss_and_the_export_reloads(tmp_path):
    model, tok = build_tiny(TinyModelConfig(hidden_size=32, num_layers=2, intermediate_size=64))
    probe = stream(tok, batch_size=16).batch(random.Random(123))
    with torch.no_grad():
        before = model(**probe).loss.item()
    cfg = WarmstartConfig(steps=30, batch_size=16, lr=3e-3, warmup_steps=5, max_verbosity=2, progress_bar=False)
    task = SyntheticTask(SyntheticTaskConfig(min_terms=2, max_terms=3))
    out = run_warmstart(cfg, model, tok, task, build_prompt, BudgetSampler(UniformBudget(20, 60)), tmp_path / "ws")
    with torch.no_grad():
        after = model(**probe).loss.item()
    assert after < before - 1.0
    reloaded, tok2 = load_tiny(out)
    with torch.no_grad():
        assert abs(reloaded(**probe).loss.item() - after) < 1e-4
    assert tok2.decode(probe["input_ids"][0].tolist()).startswith(tok.decode(probe["input_ids"][0].tolist())[:5])


def test_hydra_entry_composes(tmp_path):
    from omegaconf import OmegaConf

    from lcpo.config import compose_config
    from lcpo.warmstart import WarmstartRunConfig

    cfg = compose_config("warmstart", [f"output_dir={tmp_path}", "warmstart.steps=3"])
    run = OmegaConf.to_object(cfg)
    assert isinstance(run, WarmstartRunConfig)
    assert run.warmstart.steps == 3 and run.model.name == "tiny" and run.task.name == "synthetic"
    assert run.prompt.use_chat_template is False


def test_more_verbosity_than_a_trace_holds_is_rejected_before_training(tmp_path):
    import pytest
    from omegaconf import OmegaConf

    from lcpo.config import compose_config
    from lcpo.warmstart import warmstart_from_config

    cfg = OmegaConf.to_object(compose_config("warmstart", ["warmstart.max_verbosity=10", f"output_dir={tmp_path}"]))
    with pytest.raises(ValueError, match="max_verbosity=10 exceeds the 9 check lines"):
        warmstart_from_config(cfg)
    assert not any(tmp_path.iterdir())
