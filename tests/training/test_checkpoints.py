"""Crash-safe checkpoints: atomic writes, a full disk, ckpt_path=auto, and runs killed with SIGKILL that resume to
the same weights and metrics as an uninterrupted run."""

import errno
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lcpo.training.checkpoints import (
    PARTIAL,
    AtomicCheckpointIO,
    CheckpointError,
    check_complete,
    newest_complete,
    resolve_ckpt_path,
    save_atomic,
)
from lcpo.training.build import run
from run_records import RUN, assert_same_training_state, deterministic, versions

ROOT = Path(__file__).resolve().parents[2]

def _disk_full_at(code: int, at: int):
    """A ``Path.open`` whose ``.partial`` files fail like a full disk: at open (``at=0``) or once ``at`` bytes are
    written, with ``code`` as errno."""
    real_open = Path.open

    def open_(path: Path, mode: str = "r", *args, **kwargs):
        if not path.name.endswith(PARTIAL):
            return real_open(path, mode, *args, **kwargs)
        if at == 0:
            raise OSError(code, os.strerror(code), str(path))
        return _FailingFile(real_open(path, mode, *args, **kwargs), code, at)

    return open_


class _FailingFile:
    def __init__(self, handle, code: int, at: int):
        self.handle, self.code, self.left = handle, code, at

    def write(self, data: bytes) -> int:
        if len(data) > self.left:
            self.handle.write(data[: self.left])
            raise OSError(self.code, os.strerror(self.code))
        self.left -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def _state(step: int) -> dict:
    return {"state_dict": {"w": torch.full((4096,), float(step))}, "global_step": step}


# ------------------------------------------------------------------------------------------------ writing


def test_save_replaces_the_file_and_leaves_no_partial(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    save_atomic(_state(1), path)
    save_atomic(_state(2), path)
    assert torch.load(path)["global_step"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


@pytest.mark.parametrize("code, at", [(errno.ENOSPC, 5000), (errno.ENOSPC, 0), (errno.EACCES, 0), (errno.EDQUOT, 100)])
def test_failed_write_names_the_path_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, code, at):
    path = tmp_path / "last.ckpt"
    save_atomic(_state(1), path)
    before = path.read_bytes()
    monkeypatch.setattr(Path, "open", _disk_full_at(code, at))
    with pytest.raises(CheckpointError, match=re.escape(f"could not write checkpoint {path}: {os.strerror(code)}")):
        save_atomic(_state(2), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and torch.load(path)["global_step"] == 1
    assert not path.with_name(path.name + PARTIAL).exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_folder_names_the_path(tmp_path):
    folder = tmp_path / "checkpoints"
    save_atomic(_state(1), folder / "last.ckpt")
    folder.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match=f"could not write checkpoint {folder / 'last.ckpt'}"):
            save_atomic(_state(2), folder / "last.ckpt")
    finally:
        folder.chmod(0o700)
    assert torch.load(folder / "last.ckpt")["global_step"] == 1


# ------------------------------------------------------------------------------------------------ reading


def test_incomplete_and_foreign_files_are_refused_naming_the_path(tmp_path):
    good = tmp_path / "good.ckpt"
    save_atomic(_state(1), good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:-200])
    text = tmp_path / "text.ckpt"
    text.write_text("not a checkpoint")
    check_complete(good)
    for path in (truncated, text):
        with pytest.raises(CheckpointError, match=f"{path}: not a complete checkpoint"):
            check_complete(path)
    with pytest.raises(CheckpointError, match=f"no checkpoint at {tmp_path / 'missing.ckpt'}"):
        check_complete(tmp_path / "missing.ckpt")
    foreign = tmp_path / "foreign.ckpt"
    save_atomic({"weights": torch.zeros(2)}, foreign)  # a torch file, but not a Lightning checkpoint
    with pytest.raises(CheckpointError, match="not a Lightning training checkpoint"):
        AtomicCheckpointIO().load_checkpoint(foreign)


def test_auto_picks_the_newest_complete_checkpoint(tmp_path):
    folder = tmp_path / "checkpoints"
    assert newest_complete(tmp_path) is None and resolve_ckpt_path("auto", tmp_path) is None
    for step, name in enumerate(["step_2.ckpt", "last.ckpt", "step_4.ckpt"], start=1):
        save_atomic(_state(step), folder / name)
        os.utime(folder / name, ns=(step * 10**9, step * 10**9))
    assert newest_complete(tmp_path) == folder / "step_4.ckpt"
    # the newest file cut short (as a copy killed halfway would be) is skipped; a .partial is never a candidate
    (folder / "step_6.ckpt").write_bytes((folder / "last.ckpt").read_bytes()[:100])
    (folder / ("step_8.ckpt" + PARTIAL)).write_bytes(b"half")
    assert resolve_ckpt_path("auto", tmp_path) == str(folder / "step_4.ckpt")
    with pytest.raises(CheckpointError, match="ckpt_path: .*step_6.ckpt: not a complete checkpoint"):
        resolve_ckpt_path(str(folder / "step_6.ckpt"), tmp_path)


def test_a_run_that_cannot_save_stops_naming_the_file_and_keeps_the_last_checkpoint(compose_train, tmp_path,
                                                                                        monkeypatch):
    saves = []
    real_save = save_atomic

    def save_then_disk_full(obj, path):
        saves.append(path.name)
        if len(saves) == 3:  # step 2's first file: the disk is full from here on
            monkeypatch.setattr(Path, "open", _disk_full_at(errno.ENOSPC, 1000))
        real_save(obj, path)

    monkeypatch.setattr("lcpo.training.checkpoints.save_atomic", save_then_disk_full)
    cfg = compose_train(*RUN, output_dir=tmp_path)
    message = f"could not write checkpoint {tmp_path}/checkpoints/step_2.ckpt: No space left on device"
    with pytest.raises(CheckpointError, match=re.escape(message)):
        run(cfg)
    monkeypatch.undo()
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 2 and saves[:2] == ["step_1.ckpt", "last.ckpt"]
    assert not list((tmp_path / "checkpoints").glob("*" + PARTIAL))


# ------------------------------------------------------------------------------------------------ kill -9


class _Killable:
    """``tests/kill_train.py`` (the training entry point, with checkpoint writes it reports) as a subprocess."""

    def __init__(self, out: Path, **hang_at: str):
        from conftest import FAST_TRAIN

        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
               **{f"LCPO_TEST_HANG_AT_{k.upper()}": str(v) for k, v in hang_at.items()}}
        cmd = [sys.executable, str(ROOT / "tests" / "kill_train.py"), *FAST_TRAIN, *RUN, "ckpt_path=auto",
               f"output_dir={out}", f"hydra.run.dir={out}"]
        self.log = (out.parent / f"{out.name}.log").open("a")
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)

    def wait_for(self, marker: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                if line.strip() == marker:
                    return
                assert line or self.proc.poll() is None, f"exited ({self.proc.returncode}) before {marker}"
        raise AssertionError(f"no {marker!r} within {timeout} s")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=30) == -signal.SIGKILL
        self.proc.stdout.close()
        self.log.close()


@pytest.mark.slow
def test_kill_9_at_any_moment_then_auto_resume_matches_an_uninterrupted_run(compose_train, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    run(compose_train(*RUN, output_dir=reference))
    checkpoints = killed / "checkpoints"
    updates = 2  # algo.prompts_per_step / algo.mini_batch_prompts in FAST_TRAIN

    # 1. in the middle of writing step 2's periodic checkpoint (the 3rd save): last.ckpt still holds step 1
    proc = _Killable(killed, save=3)
    proc.wait_for("HANGING SAVE 3")
    proc.kill()
    assert (checkpoints / f"step_2.ckpt{PARTIAL}").is_file()
    assert not (checkpoints / "step_2.ckpt").exists()
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["global_step"] == 1 * updates

    # 2. resumed at step 1, killed while writing last.ckpt after step 2's periodic checkpoint was complete
    proc = _Killable(killed, save=2)
    proc.wait_for("HANGING SAVE 2")
    proc.kill()
    assert (checkpoints / f"last.ckpt{PARTIAL}").is_file()
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["global_step"] == 1 * updates
    assert newest_complete(killed) == checkpoints / "step_2.ckpt"

    # 3. resumed at step 2, killed in the middle of step 4 (its rollout), after step 3's checkpoints were written
    proc = _Killable(killed, rollout=3)
    proc.wait_for("HANGING ROLLOUT 3")
    proc.kill()
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["global_step"] == 3 * updates

    # 4. resumed at step 3 and run to the end, in this process
    run(compose_train(*RUN, "ckpt_path=auto", output_dir=killed))

    assert_same_training_state(reference / "checkpoints" / "last.ckpt", checkpoints / "last.ckpt", 4 * updates)
    # each start logs the step it resumed from again (the second died inside step 1, before logging it), then its
    # own steps; every row equals the uninterrupted run's row for that step
    (expected,) = versions(reference)
    starts = versions(killed)
    assert [[r["step"] for r in rows] for rows in starts] == [["1"], ["1"], ["2", "3"], ["3", "4"]]
    for row in [r for rows in starts for r in rows]:  # steps count rollout steps done, from 1
        assert deterministic(row) == pytest.approx(deterministic(expected[int(row["step"]) - 1]), rel=1e-5, abs=1e-6)
    # samples.jsonl holds each step once, as if the run had never been interrupted
    steps = [line.split('"step": ')[1].split(",")[0] for line in (killed / "samples.jsonl").read_text().splitlines()]
    assert steps == [line.split('"step": ')[1].split(",")[0]
                     for line in (reference / "samples.jsonl").read_text().splitlines()]
