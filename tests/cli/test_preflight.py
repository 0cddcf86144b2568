"""A refused start is one line, before the training stack imports and before a run folder exists; resumes continue
in their run's folder. Most checks run in this process; a few run ``python -m lcpo.train`` as a user would."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lcpo.cli.preflight import check_command_line
from lcpo.cli.resume import resume_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name, args, message",
    [
        ("train", ["model=tiny", "trainer.max_step=10"],
         "unknown config key trainer.max_step (did you mean trainer.max_steps?)"),
        ("train", ["model=tiny", "rewad=max"], "unknown config key or group rewad (did you mean reward?)"),
        ("train", ["model=tiny", "reward=maxx"], "reward=maxx: no such choice (did you mean max?)"),
        ("train", ["model=tiny", "-m", "reward=exact,maxx"], "reward=maxx: no such choice"),
        ("train", ["model=tiny", "+model.tiny.hiden_size=8"], "did you mean model.tiny.hidden_size?"),
        ("train", ["model=tiny", "reward.alpha=-1"], "reward.alpha must be >= 0"),
        ("train", ["model=tiny", "rollout=vllm"], "rollout=vllm needs vllm, which is not installed"),
        ("evaluate", ["models=[x]", "experiment=cpu"], "evaluate has no experiment group"),
        ("evaluate", ["models=[x]", "grid.budget=[8]"], "unknown config key grid.budget (did you mean grid.budgets?)"),
    ],
)
def test_refused_command_lines_name_the_fix(name, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    find_spec = importlib.util.find_spec  # vLLM may be installed here: the check must see it missing
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else find_spec(name, *a))
    with pytest.raises(ValueError) as info:
        check_command_line(name, args)
    assert message in str(info.value)
    assert not (tmp_path / "outputs").exists()


def test_a_group_the_config_leaves_out_gets_its_plus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_command_line("train", ["-m", "sweep=alpha", "model=tiny"]) == ["-m", "+sweep=alpha", "model=tiny"]
    assert check_command_line("train", ["-m", "+sweep=alpha"]) == ["-m", "+sweep=alpha"]


def fake_run(root: Path, name: str, overrides: list[str], checkpoint: bool = True) -> Path:
    run = root / "outputs" / "train" / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if checkpoint:
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    return run


def test_ckpt_path_auto_finds_the_newest_run_with_the_same_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    older = fake_run(tmp_path, "a", ["model=tiny", "trainer.max_steps=5"])
    fake_run(tmp_path, "b", ["model=tiny", "trainer.max_steps=9"])
    fake_run(tmp_path, "c", ["model=tiny", "trainer.max_steps=5"], checkpoint=False)
    args = ["trainer.max_steps=5", "model=tiny", "ckpt_path=auto"]
    assert resume_args(args, multirun=False) == [*args, f"hydra.run.dir={Path('outputs/train/a')}"]
    assert older.is_dir()
    assert resume_args(["model=tiny", "ckpt_path=auto"], multirun=False) == ["model=tiny", "ckpt_path=auto"]
    ckpt = "outputs/train/b/checkpoints/last.ckpt"
    assert resume_args([f"ckpt_path={ckpt}"], multirun=False)[-1] == f"hydra.run.dir={Path('outputs/train/b')}"


def test_resume_takes_the_runs_own_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = fake_run(tmp_path, "a", ["model=tiny", "trainer.max_steps=5", "ckpt_path=auto"])
    assert resume_args([f"resume={run}", "trainer.max_steps=8"], multirun=False) == [
        "model=tiny", "trainer.max_steps=8", "ckpt_path=auto", f"hydra.run.dir={run}"
    ]
    with pytest.raises(ValueError, match="not a training run folder"):
        resume_args([f"resume={tmp_path}"], multirun=False)


def lcpo_train(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "lcpo.train", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


PROBE = """
import runpy, sys
sys.argv = ["lcpo.train", *sys.argv[1:]]
try:
    runpy.run_module("lcpo.train", run_name="__main__")
except SystemExit as stop:
    print(sorted({m.split(".")[0] for m in sys.modules} & {"lightning", "transformers"}), stop.code)
"""


@pytest.mark.parametrize("args, message", [
    ([], "model=auto: no warm-started model at outputs/demo/base (no such folder); run `make demo` first"),
    (["model=hf", "model.path=/nope/model"], "model.path=/nope/model: no such folder (model=hf)"),
    (["trainer.max_step=10"], "(did you mean trainer.max_steps?)"),
])
def test_a_refused_start_is_one_line_before_the_stack_imports(tmp_path, args, message):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.strip() == "[] 1", done.stdout + done.stderr  # neither lightning nor transformers imported
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("lcpo-train: error: "), done.stderr
    assert message in done.stderr
    assert list(tmp_path.iterdir()) == []  # no run folder


def test_help_lists_groups_choices_and_common_keys(tmp_path):
    from lcpo.cli.help import render

    page = render("train", "lcpo-train")
    assert "reward     exact* " in page and "sweep      alpha" in page and "trainer.max_steps=150" in page
    assert "experiment" not in render("evaluate", "lcpo-evaluate")


@pytest.mark.parametrize("module", ["lcpo.train", "lcpo.bench"])
def test_help_into_a_closed_pipe_ends_quietly(module):
    """``--help | head -1``: the reader has gone when the page is written; no BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", module, "--help"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    proc.stdout.close()
    stderr = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 0 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_ckpt_path_auto_alone_continues_in_the_same_folder(tmp_path):
    from conftest import FAST_TRAIN

    args = [*FAST_TRAIN, "trainer.max_steps=1", "trainer.val_every_n_steps=0", "task.grading_workers=0"]
    first = lcpo_train(tmp_path, *args)
    assert first.returncode == 0, first.stderr[-2000:]
    again = lcpo_train(tmp_path, *args, "ckpt_path=auto")
    assert again.returncode == 0, again.stderr[-2000:]
    runs = list((tmp_path / "outputs" / "train").iterdir())
    assert len(runs) == 1 and "continuing" in again.stderr, again.stderr[-2000:]
    assert sorted(p.name for p in (runs[0] / "csv").iterdir()) == ["version_0", "version_1"]
