"""Bad input gets one clear error: a non-zero exit and a message naming the key, the file and line, or the path, with
no Python traceback (unless HYDRA_FULL_ERROR=1). The entry points run as users run them: in this process for most
cases, as ``python -m`` subprocesses for a few."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from lcpo.cli import demo, evaluate, report, train, warmstart
from lcpo.config import TinyModelConfig
from lcpo.models.tiny import build_tiny

ROOT = Path(__file__).resolve().parents[2]
GOOD_ROW = {"problem": "1 + 1 = ?", "answer": "2"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Every bad file of the corpus, plus a few good ones to misuse."""
    d = tmp_path_factory.mktemp("inputs")
    good = json.dumps(GOOD_ROW) + "\n"
    (d / "good.jsonl").write_text(good)
    (d / "empty.jsonl").write_bytes(b"")
    (d / "blank.jsonl").write_text("\n\n  \n")
    (d / "truncated.jsonl").write_text(good + good[:20])
    (d / "latin1.jsonl").write_bytes(good.encode() + '{"problem": "café", "answer": "2"}\n'.encode("latin-1"))
    (d / "nofield.jsonl").write_text(good + json.dumps({"problem": "2 + 2 = ?"}) + "\n")
    (d / "csv.jsonl").write_text("problem,answer\n1 + 1,2\n")
    (d / "list.jsonl").write_text("[1, 2]\n")
    pq.write_table(pa.table({k: [v] for k, v in GOOD_ROW.items()}), d / "good.parquet")
    pq.write_table(pa.table({"problem": ["1 + 1"]}), d / "nofield.parquet")
    (d / "parquet.jsonl").write_bytes((d / "good.parquet").read_bytes())
    (d / "jsonl.parquet").write_text(good)
    (d / "empty.parquet").write_bytes(b"")
    (d / "data.csv").write_text("problem,answer\n")
    (d / "folder.jsonl").mkdir()
    (d / "empty_dir").mkdir()
    (d / "no_model_type").mkdir()
    (d / "no_model_type" / "config.json").write_text('{"hidden_size": 8}')
    model, tokenizer = build_tiny(TinyModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32))
    for name in ("model", "cut_weights"):
        model.save_pretrained(d / name)
        tokenizer.save_pretrained(d / name)
    weights = d / "cut_weights" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "global_step": 1}, d / "full.ckpt")
    (d / "truncated.ckpt").write_bytes((d / "full.ckpt").read_bytes()[:2000])
    (d / "garbage.ckpt").write_bytes(b"\x00\x01 not a checkpoint" * 50)
    torch.save({"weights": torch.zeros(2)}, d / "foreign.ckpt")
    (d / "sweep" / "0" / ".hydra").mkdir(parents=True)
    (d / "sweep" / "0" / ".hydra" / "overrides.yaml").write_text("- reward.alpha=0.1\n")
    (d / "sweep" / "0" / "eval").mkdir()
    (d / "sweep" / "0" / "eval" / "report.json").write_text('{"rows": [{"model": "policy", ')
    (d / "not_a_demo").mkdir()
    (d / "not_a_demo" / "thesis.tex").write_text("years of work")
    return d


# (entry point, arguments with {d} for the inputs folder, what the message must say)
CASES = [
    # numbers out of range, of the wrong type, not finite
    ("train", ["reward.alpha=-1"], "reward.alpha must be >= 0, got -1.0"),
    ("train", ["reward.alpha=abc"], "full_key: reward.alpha"),
    ("train", ["reward.alpha=nan"], "reward.alpha must be >= 0, got nan"),
    ("train", ["reward.max_alpha=inf"], "reward.max_alpha must be >= 0, got inf"),
    ("train", ["reward.delta=2"], "reward.delta must lie in [0.0, 1.0], got 2.0"),
    ("train", ["budget.low=100", "budget.high=50"], "budget.low must satisfy 1 <= budget.low <= budget.high"),
    ("train", ["budget.low=0"], "budget.low must satisfy 1 <= budget.low"),
    ("train", ["budget.max_share=1.5"], "budget.max_share must lie in [0, 1], got 1.5"),
    ("train", ["budget.none_share=-0.1"], "budget.none_share must lie in [0, 1], got -0.1"),
    ("train", ["budget.max_share=0.7", "budget.none_share=0.7"], "budget.max_share + budget.none_share must be <= 1"),
    ("train", ["budget=fixed", "budget.value=0"], "budget.value"),
    ("train", ["algo.group_size=1"], "algo.group_size must be >= 2 when algo.scale_std is true"),
    ("train", ["algo.clip_low=-0.1"], "algo.clip_low must be >= 0, got -0.1"),
    ("train", ["algo.clip_high=inf"], "algo.clip_high must be >= 0, got inf"),
    ("train", ["algo.kl_coef=-1"], "algo.kl_coef must be >= 0"),
    ("train", ["algo.lr=nan"], "algo.lr must be > 0, got nan"),
    ("train", ["algo.lr=0"], "algo.lr must be > 0, got 0.0"),
    ("train", ["algo.prompts_per_step=0"], "algo.prompts_per_step must be > 0, got 0"),
    ("train", ["algo.mini_batch_prompts=3"], "algo.prompts_per_step (4) must be a multiple of algo.mini_batch_prompts (3)"),
    ("train", ["algo.micro_batch_tokens=0"], "algo.micro_batch_tokens must be > 0"),
    ("train", ["algo.ppo_epochs=0"], "algo.ppo_epochs must be > 0"),
    ("train", ["algo.betas=[0.9]"], "algo.betas must be two numbers in [0, 1)"),
    ("train", ["algo.max_skipped_steps=0"], "algo.max_skipped_steps must be > 0"),
    ("train", ["algo.loss_agg=constant"], "algo.loss_constant must be set to a positive number"),
    ("train", ["rollout.temperature=-1"], "rollout.temperature must be >= 0, got -1.0"),
    ("train", ["rollout.top_p=0"], "rollout.top_p must lie in (0, 1]"),
    ("train", ["rollout.max_new_tokens=0"], "rollout.max_new_tokens must be >= 1, got 0"),
    ("train", ["trainer.max_steps=1.5"], "full_key: trainer.max_steps"),
    ("train", ["trainer.max_steps=0"], "trainer.max_steps must be > 0"),
    ("train", ["trainer.warn_zero_signal=2"], "trainer.warn_zero_signal must lie in [0.0, 1.0], got 2.0"),
    ("train", ["seed=abc"], "full_key: seed"),
    ("train", ["trainer.devices=abc"], "trainer.devices=abc"),
    ("train", ["trainer.precision=99"], "trainer.precision=99"),
    ("train", ["trainer.precision=16-mixed"], "trainer.precision=16-mixed: fp16 loss scaling is not supported"),
    ("train", ["trainer.accelerator=tpuu"], "trainer.accelerator=tpuu"),
    # unknown keys and options
    ("train", ["algo.foo=1"], "Key 'foo' not in 'AlgoConfig'"),
    ("train", ["+foo=1"], "lcpo-train: error: unknown config key foo"),
    ("train", ["+trainer.max_step=3"], "unknown config key trainer.max_step (did you mean trainer.max_steps?)"),
    ("train", ["+model.tiny.hiden_size=8"], "unknown config key model.tiny.hiden_size (did you mean model.tiny.hidden_size?)"),
    ("train", ["reward=nonexistent"], "Could not find 'reward/nonexistent'"),
    ("train", ["budget.name=gauss"], "budget.name must be one of ['uniform', 'loguniform', 'fixed', 'choice', 'from_file']"),
    ("train", ["rollout=budget_forcing"], "rollout=budget_forcing is the s1 evaluation baseline"),
    # model folders
    ("train", ["model=hf", "model.path={d}/missing"], "model.path={d}/missing: no such folder (model=hf)"),
    ("train", ["model=hf", "model.path={d}/empty_dir"], "no transformers model at {d}/empty_dir (config.json missing)"),
    ("train", ["model=hf", "model.path={d}/no_model_type"], "{d}/no_model_type: cannot load the model"),
    ("train", ["model=hf", "model.path={d}/cut_weights"], "{d}/cut_weights: cannot load the model"),
    # data files
    ("train", ["task=jsonl", "task.path={d}/missing.jsonl"], "task.path does not exist: {d}/missing.jsonl"),
    ("train", ["task=jsonl", "task.path={d}/folder.jsonl"], "task.path does not exist: {d}/folder.jsonl"),
    ("train", ["task=jsonl", "task.path={d}/empty.jsonl"], "{d}/empty.jsonl: no problems in the file"),
    ("train", ["task=jsonl", "task.path={d}/blank.jsonl"], "{d}/blank.jsonl: no problems in the file"),
    ("train", ["task=jsonl", "task.path={d}/truncated.jsonl"], "{d}/truncated.jsonl, line 2: invalid JSON"),
    ("train", ["task=jsonl", "task.path={d}/latin1.jsonl"], "{d}/latin1.jsonl, line 2: not UTF-8"),
    ("train", ["task=jsonl", "task.path={d}/nofield.jsonl"], "{d}/nofield.jsonl, line 2: missing field 'answer'"),
    ("train", ["task=jsonl", "task.path={d}/csv.jsonl"], "{d}/csv.jsonl, line 1: invalid JSON"),
    ("train", ["task=jsonl", "task.path={d}/list.jsonl"], "{d}/list.jsonl, line 1: expected a JSON object, got list"),
    ("train", ["task=jsonl", "task.path={d}/parquet.jsonl"], "{d}/parquet.jsonl: this is a parquet file"),
    ("train", ["task=parquet", "task.path={d}/jsonl.parquet"], "{d}/jsonl.parquet: not a readable parquet file"),
    ("train", ["task=parquet", "task.path={d}/empty.parquet"], "{d}/empty.parquet: not a readable parquet file"),
    ("train", ["task=parquet", "task.path={d}/nofield.parquet"], "{d}/nofield.parquet, row 0: missing field 'answer'"),
    ("train", ["task=jsonl", "task.path={d}/good.parquet"], "task=jsonl reads .jsonl files, but task.path is "
                                                            "{d}/good.parquet: use task=parquet"),
    ("train", ["task=parquet", "task.path={d}/good.jsonl"], "task=parquet reads .parquet files, but task.path is "
                                                            "{d}/good.jsonl: use task=jsonl"),
    # checkpoints
    ("train", ["ckpt_path={d}/missing.ckpt"], "ckpt_path: no checkpoint at {d}/missing.ckpt"),
    ("train", ["ckpt_path={d}/truncated.ckpt"], "ckpt_path: {d}/truncated.ckpt: not a complete checkpoint"),
    ("train", ["ckpt_path={d}/garbage.ckpt"], "ckpt_path: {d}/garbage.ckpt: not a complete checkpoint"),
    ("train", ["ckpt_path={d}/foreign.ckpt"], "{d}/foreign.ckpt: not a Lightning training checkpoint"),
    # evaluation
    ("evaluate", [], "lcpo-evaluate: error: models is empty"),
    ("evaluate", ["models=[{d}/missing]"], "models[0]: no transformers model at {d}/missing (config.json missing)"),
    ("evaluate", ["models={{a: {d}/model, b: {d}/empty_dir}}"], "models.b: no transformers model at {d}/empty_dir"),
    ("evaluate", ["models=5"], "models must be a list of model folders or a {{name: folder}} mapping, got 5"),
    ("evaluate", ["models={d}/model"], "models must be a list of model folders or a {{name: folder}} mapping, got "
                                       "'{d}/model' (write models='[{d}/model]')"),
    ("evaluate", ["models=[{d}/cut_weights]", "grid.budgets=[8]", "grid.samples=1", "grid.problems=1"],
     "{d}/cut_weights: cannot load the model"),
    ("evaluate", ["models=[{d}/model]", "grid.budgets=[]"], "grid.budgets must be a non-empty list of positive budgets"),
    ("evaluate", ["models=[{d}/model]", "grid.budgets=[0]"], "grid.budgets must be a non-empty list of positive budgets"),
    ("evaluate", ["models=[{d}/model]", "grid.samples=0"], "grid.samples, grid.exact_factor and grid.max_mode_cap"),
    ("evaluate", ["models=[{d}/model]", "grid.modes=[short]"], "grid.modes must be a non-empty subset"),
    ("evaluate", ["models=[{d}/model]", "grid.pass_k=9", "grid.samples=4"], "grid.pass_k must lie in [1, grid.samples=4]"),
    ("evaluate", ["models=[{d}/model]", "rollout.temperature=-1"], "rollout.temperature must be >= 0"),
    ("evaluate", ["models=[{d}/model]", "dtype=float8"], "dtype must be one of"),
    ("evaluate", ["models=[{d}/model]", "foo=1"], "Key 'foo' not in 'EvaluateConfig'"),
    ("evaluate", ["models=[{d}/model]", "+grid.budget=[8]"], "unknown config key grid.budget (did you mean grid.budgets?)"),
    ("evaluate", ["models=[{d}/model]", "extra_files=[{d}/missing.jsonl]"], "extra_files: {d}/missing.jsonl is not a"),
    ("evaluate", ["models=[{d}/model]", "extra_files=[{d}/data.csv]"], "extra_files: {d}/data.csv is not a .jsonl"),
    ("evaluate", ["models=[{d}/model]", "task=jsonl", "task.path={d}/truncated.jsonl"],
     "{d}/truncated.jsonl, line 2: invalid JSON"),
    ("evaluate", ["models=[{d}/model]", "extra_files=[{d}/nofield.jsonl]"], "{d}/nofield.jsonl, line 2: missing field"),
    # warm-start
    ("warmstart", ["warmstart.lr=-1"], "warmstart.lr must be > 0, got -1.0"),
    ("warmstart", ["+warmstart.step=3"], "unknown config key warmstart.step (did you mean warmstart.steps?)"),
    ("warmstart", ["warmstart.min_verbosity=5", "warmstart.max_verbosity=2"], "warmstart needs 0 <= min_verbosity"),
    ("warmstart", ["task=jsonl", "task.path={d}/good.jsonl"], "task=jsonl cannot write traces"),
    ("warmstart", ["task=jsonl", "task.path={d}/latin1.jsonl"], "{d}/latin1.jsonl, line 2: not UTF-8"),
    # sweep reports and the demo
    ("report", ["{d}/missing"], "lcpo-report: error: {d}/missing: no such folder"),
    ("report", ["{d}/empty_dir"], "{d}/empty_dir: no Hydra jobs found"),
    ("report", ["{d}/sweep"], "{d}/sweep/0/eval/report.json: not an evaluation report"),
    ("demo", ["--out", "{d}/demo_out", "reward.alpha=-1"], "lcpo-demo: error: reward.alpha must be >= 0"),
    ("demo", ["--out", "{d}/demo_out", "warmstart.lr=0"], "warmstart.lr must be > 0"),
    ("demo", ["--out", "{d}/not_a_demo"], "--out {d}/not_a_demo: exists and is not a demo output folder"),
]
HYDRA_ENTRIES = {"train": train.main, "evaluate": evaluate.main, "warmstart": warmstart.main}
ARGV_ENTRIES = {"report": report.main, "demo": demo.main}


def _id(case) -> str:
    return f"{case[0]}:{' '.join(case[1])}".replace("{d}/", "")


@pytest.mark.parametrize("entry, args, message", CASES, ids=[_id(c) for c in CASES])
def test_bad_input_gets_one_clear_error(entry, args, message, inputs, tmp_path, hydra_main, capsys):
    from conftest import FAST_TRAIN

    args = [a.format(d=inputs) for a in args]
    if entry in HYDRA_ENTRIES:
        run_dir = [f"output_dir={tmp_path}", f"hydra.run.dir={tmp_path}"]
        fast = {"train": [*FAST_TRAIN, "task.grading_workers=0"], "warmstart": ["warmstart.steps=1"]}.get(entry, [])
        code, err = hydra_main(HYDRA_ENTRIES[entry], *fast, *run_dir, *args)
    else:
        with pytest.raises(SystemExit) as exit_info:
            ARGV_ENTRIES[entry](args)
        code, err = exit_info.value.code, capsys.readouterr().err
    assert code == 1, err
    assert message.format(d=inputs) in err
    assert "Traceback" not in err and err.count(": error:") <= 1, err
    assert not (inputs / "not_a_demo").exists() or (inputs / "not_a_demo" / "thesis.tex").is_file()


def test_hydra_full_error_shows_the_traceback(hydra_main, tmp_path, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ValueError, match="reward.alpha must be >= 0"):
        hydra_main(train.main, "model=tiny", "reward.alpha=-1", f"output_dir={tmp_path}", f"hydra.run.dir={tmp_path}")


def test_a_bad_job_of_a_sweep_lets_the_others_run(hydra_main, tmp_path):
    from conftest import FAST_TRAIN

    code, err = hydra_main(train.main, "-m", *FAST_TRAIN, "task.grading_workers=0", "trainer.max_steps=1",
                           "reward.alpha=-1,0.01", f"hydra.sweep.dir={tmp_path}", "output_dir=${hydra:runtime.output_dir}")
    assert code == 1 and "Traceback" not in err
    # Hydra names the job, prints the message, and a hint about HYDRA_FULL_ERROR
    assert "Error executing job with overrides: [" in err and "reward.alpha=-1" in err
    assert "\nlcpo-train: error: reward.alpha must be >= 0, got -1.0\n" in err
    assert (tmp_path / "1" / "model" / "config.json").is_file() and not (tmp_path / "0" / "model").exists()


@pytest.mark.slow
@pytest.mark.parametrize("module, args, message", [
    ("lcpo.cli.train", ["model=tiny", "reward.alpha=-1"], "lcpo-train: error: reward.alpha must be >= 0, got -1.0"),
    ("lcpo.cli.evaluate", ["models=[/no/such/model]"], "lcpo-evaluate: error: models[0]: no transformers model at "
                                                   "/no/such/model (config.json missing)"),
])
def test_the_command_line_prints_one_line(module, args, message, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", module, *args, f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == message and "Traceback" not in proc.stderr, proc.stderr
