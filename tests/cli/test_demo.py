"""The demo pipeline end to end at toy size: warm-start, LCPO, evaluation of base/lcpo/s1, report and plots."""

import json

import pytest

from lcpo.cli import demo


@pytest.mark.slow
def test_fast_demo_writes_a_valid_report(tmp_path, capfd):
    out = tmp_path / "demo"
    demo.main(["--out", str(out), "warmstart.steps=3", "warmstart.progress_bar=false", "model.tiny.hidden_size=32",
               "model.tiny.intermediate_size=64", "trainer.max_steps=2",
               "trainer.progress_bar=false", "trainer.num_threads=1", "logger=csv", "eval.problems=4",
               "eval.samples=1", "eval.max_mode_cap=40", "rollout.max_new_tokens=40"])
    console = "".join(capfd.readouterr())
    assert "GPU available" not in console and "Tip" not in console, console  # as quiet as lcpo.train
    report = json.loads((out / "report.json").read_text())
    rows = report["rows"]
    assert {r["model"] for r in rows} == {"base", "lcpo-exact", "lcpo-max", "s1"}
    # the paper's protocol: L1-Exact in exact mode, L1-Max in max mode, the base in both
    for model, mode in (("base", "exact"), ("base", "max"), ("lcpo-exact", "exact"), ("lcpo-max", "max")):
        budgets = sorted(r["budget"] for r in rows if r["model"] == model and r["mode"] == mode)
        assert budgets == [32, 41, 50, 59, 68, 77, 86, 95]
    assert not any((r["model"], r["mode"]) in {("lcpo-exact", "max"), ("lcpo-max", "exact")} for r in rows)
    keys = {"model", "mode", "budget", "n", "accuracy", "mean_tokens", "rel_error", "over_budget_share"}
    assert all(keys <= set(r) and r["n"] == 4 for r in rows)
    over = "lcpo max: over_budget_share - the best policy's, worst budget"
    assert {b["bar"] for b in report["bars"]} >= {"lcpo exact: mean |rel_error|", over}
    assert [b["bar"] for b in report["base_bars"]] == [b["bar"] for b in report["bars"]]  # the base, bar by bar
    assert any(b["bar"].startswith("budget 32: lcpo exact - s1") for b in report["bars"])
    best = {b["bar"]: b for b in report["best_policy_bars"]}  # the reward's own optimum, for comparison
    assert best["lcpo exact: mean |rel_error|"]["value"] < 0.2 and not any(k.startswith("budget 32") for k in best)
    assert (out / "train" / "exact" / "model").is_dir() and (out / "train" / "max" / "model").is_dir()
    for stage in ("exact", "max"):  # both stages start from the warm-started model
        assert f"path: {out / 'base'}\n" in (out / "train" / stage / "config.yaml").read_text()
    for name in ("length_vs_budget.png", "accuracy_vs_tokens.png", "report.md"):
        assert (out / name).stat().st_size > 0
    assert (out / "model" / "config.json").is_file() and (out / "base" / "config.json").is_file()
    assert json.loads((out / "model" / "config.json").read_text())["hidden_size"] == 32  # model.tiny.* built it


@pytest.mark.slow
def test_demo_from_a_given_base_skips_the_warm_start(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    tiny = ["warmstart.steps=3", "warmstart.progress_bar=false", "model.tiny.hidden_size=32",
            "model.tiny.intermediate_size=64", "trainer.max_steps=1", "trainer.progress_bar=false",
            "trainer.num_threads=1", "logger=csv", "eval.problems=2", "eval.samples=1", "eval.budgets=[32,41]",
            "eval.max_mode_cap=40", "rollout.max_new_tokens=40"]
    demo.main(["--out", str(first), "--no-s1", *tiny])
    report = demo.main(["--out", str(second), "--no-s1", "--base", str(first / "base"), *tiny])
    assert "warm-start" not in report["wall_seconds"] and not (second / "warmstart").exists()
    assert (second / "base" / "config.json").read_text() == (first / "base" / "config.json").read_text()


@pytest.mark.parametrize("inside", [False, True])
def test_a_base_that_is_no_model_folder_or_lies_in_the_output_is_refused(tmp_path, capsys, inside):
    out = tmp_path / "demo"
    base = out / "base" if inside else tmp_path / "nothing"
    if inside:
        base.mkdir(parents=True)
        (base / "config.json").write_text("{}")
    with pytest.raises(SystemExit):
        demo.main(["--out", str(out), "--base", str(base)])
    assert f"--base {base}" in capsys.readouterr().err
    assert base.exists() == inside  # nothing was replaced
