"""Benchmarks: the subcommands dispatch, the memory benchmark reports what it measured, and the race gives TRL the
same prompts and settings as lcpo."""

import json

import pytest

from lcpo import bench
from lcpo.bench import memory, race


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
