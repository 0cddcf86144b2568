"""The supervised warm-start: traces drawn blind to budgets, response-only loss, the export reloads offline."""

import random
import re

import pytest
import torch

from lcpo.algo.budgets import BudgetSampler, UniformBudget
from lcpo.config import PromptConfig, SyntheticTaskConfig, TinyModelConfig, WarmstartConfig
from lcpo.tasks.prompts import PromptBuilder
from lcpo.tasks.synthetic import SyntheticTask
from lcpo.models.tiny import build_tiny, build_tokenizer, load_tiny
from lcpo.cli.warmstart import IGNORE_INDEX, TraceStream, first_stop, lr_factor, run_warmstart, scatter_checks

TEMPLATE = PromptConfig(instruction="")


def build_prompt(problem, spec) -> str:
    return TEMPLATE.render(problem.question, spec) + "\n"


def stream(tokenizer, batch_size: int = 8) -> TraceStream:
    task = SyntheticTask(SyntheticTaskConfig(min_terms=2, max_terms=3))
    return TraceStream(task, build_prompt, BudgetSampler(UniformBudget(20, 60), 0.0, 0.0), tokenizer, batch_size, (0, 2))


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
    out = run_warmstart(cfg, model, tok, task, build_prompt, BudgetSampler(UniformBudget(20, 60), 0.0, 0.0), tmp_path / "ws")
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
    from lcpo.cli.warmstart import WarmstartRunConfig

    cfg = compose_config("warmstart", [f"output_dir={tmp_path}", "warmstart.steps=3"])
    run = OmegaConf.to_object(cfg)
    assert isinstance(run, WarmstartRunConfig)
    assert run.warmstart.steps == 3 and run.model.name == "tiny" and run.task.name == "synthetic"
    assert run.prompt.use_chat_template is False


@pytest.mark.parametrize("key", ["stop_share", "stop_when_short", "stop_when_short_max"])
def test_stop_chances_are_probabilities(key):
    with pytest.raises(ValueError, match=f"warmstart.{key}"):
        WarmstartConfig(**{key: 1.5})


def test_a_trace_wraps_up_after_short_lines_only():
    """``first_stop`` ends the thinking after a short line with the given chance, never after one that fits."""
    rng = random.Random(0)
    assert all(first_stop([False] * 5, 1.0, rng) is None for _ in range(50))
    assert first_stop([False, False, True, True], 1.0, rng) == 3
    draws = [first_stop([False, True, True, False], 0.5, rng) for _ in range(2000)]
    assert set(draws) == {None, 2, 3}
    assert abs(draws.count(2) / 2000 - 0.5) < 0.05 and abs(draws.count(None) / 2000 - 0.25) < 0.05


def traces(n: int, budgets: BudgetSampler, **stops) -> list[tuple[str, str, int]]:
    """``n`` warm-start examples on the synthetic task (0-6 check lines, ``stops`` as ``TraceStream``'s): the prompt
    and the response decoded, and the response's length in tokens."""
    tok = build_tokenizer()
    build = PromptBuilder(PromptConfig(instruction="", use_chat_template=False, response_prefix="\n"), tok)
    stream = TraceStream(SyntheticTask(), build, budgets, tok, batch_size=1, verbosity=(0, 6), **stops)
    rng = random.Random(0)
    return [(tok.decode(prompt), tok.decode(response), len(response))
            for prompt, response in (stream.example(rng) for _ in range(n))]


def budget_of(prompt: str) -> int:
    return int(re.search(r"Think for (?:maximum )?(\d+)", prompt).group(1))


def test_the_warm_start_stops_more_often_when_the_budget_is_tight():
    """With ``stop_when_short`` the traces stop early mostly on prompts whose budget the full solution overruns."""
    early = {"tight": [], "loose": []}
    for prompt, response, _ in traces(1000, BudgetSampler(UniformBudget(30, 99), 0.0, 0.0), stop_when_short=0.3):
        budget = budget_of(prompt)
        if budget < 45 or budget >= 85:
            early["tight" if budget < 45 else "loose"].append("+A" not in response)
    tight, loose = (sum(early[k]) / len(early[k]) for k in ("tight", "loose"))
    assert tight > 0.6 and loose < tight / 2, (tight, loose)


def test_the_warm_start_wraps_up_under_a_maximum_with_its_own_chance():
    """``stop_when_short_max`` is the chance under max prompts and ``stop_when_short`` under the rest: with the exact
    chance at 0 only max prompts stop early, and they do on most tight budgets."""
    early = {"max": [], "exact": []}
    for prompt, response, _ in traces(600, BudgetSampler(UniformBudget(30, 44), 0.5, 0.0), stop_when_short=0.0,
                                      stop_when_short_max=0.5):
        early["max" if "maximum" in prompt else "exact"].append("+A" not in response)
    assert len(early["max"]) > 200 and len(early["exact"]) > 200
    assert not any(early["exact"]) and sum(early["max"]) / len(early["max"]) > 0.6, early


def test_scatter_checks_spreads_the_total_over_every_gap():
    rng = random.Random(0)
    draws = [scatter_checks(6, 3, rng) for _ in range(600)]
    assert all(sum(d) == 6 and len(d) == 3 for d in draws)
    per_gap = [sum(d[i] for d in draws) / len(draws) for i in range(3)]
    assert all(abs(g - 2) < 0.2 for g in per_gap)


def test_warmstart_trace_length_ignores_the_prompt_budget():
    """With random stops only (``stop_share``), the budget sentence, the check lines and the stops are separate draws."""
    budgets, lengths, early = [], [], 0
    for prompt, response, length in traces(600, BudgetSampler(UniformBudget(30, 99), 0.0, 0.0), stop_share=0.1):
        budgets.append(budget_of(prompt))
        lengths.append(length)
        early += "+A" not in response
    n = len(budgets)
    mb, ml = sum(budgets) / n, sum(lengths) / n
    cov = sum((b - mb) * (x - ml) for b, x in zip(budgets, lengths))
    var = (sum((b - mb) ** 2 for b in budgets) * sum((x - ml) ** 2 for x in lengths)) ** 0.5
    assert abs(cov / var) < 0.12
    assert 0.05 < early / n < 0.15
    assert min(lengths) == 23 and max(lengths) >= 123  # 1 to 13 lines of 10 tokens: a wide spread for RL
