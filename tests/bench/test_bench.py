"""Benchmarks: the subcommands dispatch, the memory benchmark reports what it measured, and the race gives TRL the
same prompts and settings as lcpo; the reward's best policy scores the demo's bars, and the stop probe reads
a model's stop probability where that policy stops."""

import json

import pytest
import torch

from lcpo import bench
from lcpo.bench import optimum, race, stops
from lcpo.eval.optimum import best_lines, stop_chance
from lcpo.algo.budgets import BudgetSpec
from lcpo.config import RewardConfig, TinyModelConfig
from lcpo.config.task import SyntheticTaskConfig
from lcpo.tasks.synthetic import SyntheticTask
from lcpo.models.tiny import build_tiny, load_tiny, save_tiny


def test_memory_benchmark_reports_peak_memory(capsys):
    result = bench.main(["memory", "--vocab", "3000", "--rows", "2", "--prompt-tokens", "8", "--response-tokens", "64",
                         "--threads", "1"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == result
    assert result["peak_rss_mb"] >= result["peak_rss_before_update_mb"] > 0
    assert result["full_fp32_logits_mb"] == pytest.approx(2 * 64 * 3000 * 4 / 2**20, abs=0.1)
    assert result["vocab"] == 3000 and result["response_tokens"] == 64


def test_race_settings_come_from_the_lcpo_config(tmp_path):
    model = race.build_model(tmp_path / "model")
    cfg = race.lcpo_config(model, tmp_path / "run")
    assert (cfg.algo.prompts_per_step, cfg.algo.group_size, cfg.algo.updates_per_step) == (16, 8, 1)
    assert (cfg.rollout.max_new_tokens, cfg.rollout.temperature, cfg.algo.kl_coef, cfg.algo.lr) == (128, 1.0, 0, 1e-4)
    settings = json.loads(race.write_trl_settings(cfg, steps=2, folder=tmp_path).read_text())
    prompts = [json.loads(line) for line in (tmp_path / "prompts.jsonl").read_text().splitlines()]
    assert len(prompts) == 2 * 16 and all("Think for" in p["prompt"] for p in prompts)
    assert settings["reward"]["name"] == "exact" and settings["max_new_tokens"] == 128
    assert settings["model"] == str(model) and settings["threads"] == 2
    assert race.lcpo_config(model, tmp_path / "run", threads=1).trainer.num_threads == 1


@pytest.mark.slow
def test_trl_side_runs_and_times_its_steps(tmp_path):
    pytest.importorskip("trl")
    from lcpo.bench import trl_grpo

    model = race.build_model(tmp_path / "model")
    settings = json.loads(race.write_trl_settings(race.lcpo_config(model, tmp_path / "run"), 2, tmp_path).read_text())
    settings.update(prompts_per_step=2, group_size=2, max_new_tokens=4, steps=2, threads=1, grading_workers=0)
    (tmp_path / "small.json").write_text(json.dumps(settings))
    result = trl_grpo.main([str(tmp_path / "small.json"), str(tmp_path / "out.json")])
    assert len(result["step_seconds"]) == 2 and all(s > 0 for s in result["step_seconds"])
    assert len(result["mean_length"]) == 2 and all(1 <= n <= 4 for n in result["mean_length"])


@pytest.mark.slow
def test_step_benchmark_still_takes_base_steps_out_and_overrides(tmp_path):
    from conftest import FAST_TRAIN

    result = bench.main(["--base", str(tmp_path / "no_model"), "--steps", "2", "--out", str(tmp_path / "out"),
                         *FAST_TRAIN, "trainer.val_every_n_steps=0"])
    assert result["steps_measured"] == 1 and result["model"] == "random tiny model"
    for key in ("perf/step_seconds", "perf/rollout_seconds", "rollout/mean_length"):
        assert result[key] > 0
    assert json.loads((tmp_path / "out" / "bench.json").read_text()) == result


def test_an_early_stop_is_right_by_the_chance_that_the_terms_left_sum_to_zero():
    assert stop_chance(0, 9, 10) == 1.0
    assert stop_chance(1, 9, 10) == pytest.approx(0.1)
    assert stop_chance(3, 9, 10) == pytest.approx(0.1)
    assert stop_chance(1, 9, 3) == pytest.approx(0.4)  # 0, 3, 6, 9 of ten values
    assert stop_chance(2, 1, 2) == pytest.approx(0.5)


def _reward(**kw) -> RewardConfig:
    return RewardConfig(**{"name": "mixed", "alpha": 0.03, "max_alpha": 0.02, "delta": 0.5, **kw})


def test_the_best_line_count_trades_correctness_for_length_as_the_reward_says():
    task_cfg, grid = SyntheticTaskConfig(), (13, 10)
    best = lambda k, mode, budget, cfg=task_cfg, **kw: best_lines(k, BudgetSpec(mode, budget), 160, grid, cfg,
                                                                  _reward(**kw))
    assert best(5, "exact", 33, alpha=0.0) == 5  # length is free: solve, no check lines
    assert best(5, "exact", 93, alpha=0.03) == 8  # pad with check lines up to the budget
    assert best(5, "exact", 33, alpha=0.1) == 2  # 30 tokens over costs 3 > 1 - 0.1: stop at the budget
    assert best(5, "exact", 33, alpha=0.01) == 5  # 30 tokens over costs 0.3: solve
    assert best(3, "max", 40, max_alpha=0.02) == 3  # 3 tokens over still earns 0.44
    # a hard budget: stop; every stop under the budget earns the same, and ties go to the shortest
    assert best(3, "max", 40, max_alpha=0.5) == 1
    # one line over a max budget of 32 earns 0.45; a guess one step early, under it, 0.95 when right: one time in
    # ten with uniform digits, 0.55 of the time when half the digits are 0
    assert best(2, "max", 32, max_alpha=0.05) == 2
    assert best(2, "max", 32, cfg=SyntheticTaskConfig(zero_share=0.5), max_alpha=0.05) == 1


def test_optimum_reports_which_bars_the_reward_can_pass(capsys):
    uniform = ["eval.problems=16"]  # an early answer is right one time in ten
    paper = bench.main(["optimum", "--json", *uniform])
    assert json.loads(capsys.readouterr().out)["bars"] == paper["bars"]
    hard = bench.main(["optimum", "--json", *uniform, "reward.max_alpha=0.5"])
    zeros = bench.main(["optimum", "--json", "eval.problems=16", "task.synthetic.zero_share=0.5"])

    def worst(result: dict) -> float:
        return max(r["over_budget_share"] for r in result["rows"] if (r["model"], r["mode"]) == ("lcpo", "max"))

    # a soft max budget's best policy overruns at some budgets, unless an early answer is right often enough
    assert worst(paper) > 0.10 >= worst(hard) == worst(zeros) == 0.0
    # the max-mode bar measures a model against this policy's own shares, which it meets by definition
    assert next(b for b in paper["bars"] if b["bar"].startswith("lcpo max: over_budget"))["value"] == 0.0
    base = [r for r in paper["rows"] if r["model"] == "base"]
    assert base and all(r["accuracy"] == 1.0 for r in base)
    small = min(r["budget"] for r in paper["rows"])
    lcpo_small = next(r for r in hard["rows"] if (r["model"], r["mode"], r["budget"]) == ("lcpo", "max", small))
    assert lcpo_small["accuracy"] < 0.5 and lcpo_small["over_budget_share"] == 0.0


def test_stop_probe_reads_the_next_token_probability_at_every_decision_point(tmp_path, capsys):
    folder = save_tiny(*build_tiny(TinyModelConfig(hidden_size=16, num_layers=1, intermediate_size=32)), tmp_path / "m")
    model, tokenizer = load_tiny(folder)
    contexts = ["B3 A1 mod 10\n<think>+B3=3, 17\n", "G1 F2 E3 D4 C5 B6 A7 mod 10\n<think>+G1=1, 00\n+F2=3, 00\n"]
    close = tokenizer.convert_tokens_to_ids("</think>")
    batched = stops._next_token_prob(model, tokenizer, contexts, close)  # left-padded together
    for context, prob in zip(contexts, batched):
        ids = torch.tensor([tokenizer.encode(context, add_special_tokens=False)])
        alone = model(input_ids=ids).logits[0, -1].softmax(-1)[close]
        assert float(prob) == pytest.approx(float(alone), rel=1e-4)

    overrides = ["eval.problems=6", "eval.budgets=[32,95]"]
    rows = bench.main(["stops", str(folder), "--json", *overrides])
    assert json.loads(capsys.readouterr().out) == rows
    cfg = optimum.load_config(overrides)
    problems = SyntheticTask(cfg.task.synthetic).eval_set(6, cfg.eval.seed)
    points = 2 * sum(len(p.meta["terms"]) - 1 for p in problems)  # two budgets, every step line with steps left
    assert [r["mode"] for r in rows] == ["exact", "max"]
    for r in rows:
        assert r["where_best_stops_n"] + r["where_best_goes_on_n"] == points
        assert r["where_best_stops_n"] > 0  # at 32 tokens the best policy stops the long problems
        assert 0 < r["where_best_stops"] < 1 and 0 < r["where_best_goes_on"] < 1


def test_optimum_refuses_a_group_relative_reward():
    with pytest.raises(ValueError, match="reward=kimi"):
        optimum.main(["reward=kimi"])
