"""Stopping on a signal: a training process sent SIGTERM or SIGINT in the middle of a step, between two periodic
checkpoints, finishes the step, checkpoints it and exits with 128 + the signal's number; resumed with
``ckpt_path=auto`` (by the command it printed) it ends with the weights, Adam state and per-step metrics of an
uninterrupted run. A second signal ends it at once. Under DDP a signal to one rank stops both at the same step, and
under SLURM SIGUSR1 also requeues the job. Each test prints how long the stop took (signal to exit)."""

import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lcpo.training.build import run
from lcpo.config import TrainerConfig
from lcpo.training.preemption import StopRequest, interrupted_status
from run_records import RUN, assert_same_training_state, deterministic, versions

ROOT = Path(__file__).resolve().parents[2]
#: Optimiser steps per rollout step: algo.prompts_per_step / algo.mini_batch_prompts in FAST_TRAIN.
UPDATES = 2
#: Four steps with periodic checkpoints after steps 2 and 4: a signal in step 3 comes between two of them.
PERIODIC = [*RUN, "trainer.ckpt_every_n_steps=2"]


class _Training:
    """A training subprocess (``tests/kill_train.py``, or ``tests/distributed_run.py`` for DDP) whose rollout of step
    ``wait_at`` on rank ``rank`` waits for a stop signal, so that the signal comes in the middle of that step."""

    def __init__(self, out: Path, *overrides: str, wait_at: int, rank: int = 0, script: str = "kill_train.py",
                 env: dict[str, str] | None = None):
        from conftest import FAST_TRAIN

        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
               "PYTHONUNBUFFERED": "1", "LCPO_TEST_WAIT_AT_ROLLOUT": str(wait_at), "LCPO_TEST_WAIT_RANK": str(rank),
               **(env or {})}
        hydra_dir = [f"hydra.run.dir={out}"] if script == "kill_train.py" else []  # distributed_run.py: no Hydra app
        cmd = [sys.executable, str(ROOT / "tests" / script), *FAST_TRAIN, *overrides, "ckpt_path=auto",
               f"output_dir={out}", *hydra_dir]
        self.stderr = out.parent / f"{out.name}.log"
        with self.stderr.open("a") as log:
            self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)

    def waiting_pid(self, timeout: float = 300.0) -> int:
        """The process id of the rank whose rollout waits for the signal, once it waits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("WAITING ROLLOUT"):
                    return int(line.split()[-1])
                assert line or self.proc.poll() is None, f"exited ({self.proc.returncode}): {self.log()[-3000:]}"
        raise AssertionError(f"no rollout waited within {timeout} s")

    def stop(self, pid: int, signum: int) -> tuple[int, float]:
        """Sends ``signum`` to ``pid``; returns the exit status of the run and the seconds from signal to exit, and
        prints them with the seconds until the run said it had stopped (its checkpoint written)."""
        start = time.monotonic()
        os.kill(pid, signum)
        stopped = None
        while self.proc.poll() is None:
            assert time.monotonic() - start < 300, "still running 300 s after the signal"
            if stopped is None and "resume with:" in self.log():
                stopped = time.monotonic() - start
            time.sleep(0.01)
        seconds = time.monotonic() - start
        self.proc.stdout.close()
        said = f"{stopped:.2f} s to the resume command, " if stopped is not None else ""
        print(f"\n{signal.Signals(signum).name}: exit status {self.proc.returncode}, {said}{seconds:.2f} s to exit")
        return self.proc.returncode, seconds

    def log(self) -> str:
        return self.stderr.read_text()


def _checkpoints(out: Path) -> dict[str, int]:
    return {p.name: torch.load(p, weights_only=False)["global_step"] for p in (out / "checkpoints").glob("*.ckpt")}


def _resume_command(log: str, out: Path) -> list[str]:
    """The command the stopped run printed, with this interpreter for ``python``."""
    (line,) = re.findall(r"^  (python -m lcpo\.train .*)$", log, flags=re.MULTILINE)
    args = shlex.split(line)
    assert "ckpt_path=auto" in args and f"output_dir={out.resolve()}" in args
    return [sys.executable, *args[1:]]


def _assert_resumed_like(reference: Path, stopped: Path, steps: int, stopped_after: int) -> None:
    """The resumed run ends as the uninterrupted one: weights, Adam state, every step's metrics, samples."""
    assert_same_training_state(reference / "checkpoints" / "last.ckpt", stopped / "checkpoints" / "last.ckpt",
                               steps * UPDATES)
    (expected,) = versions(reference)
    starts = versions(stopped)
    # the stopped start logged every step it did, the stop step included; the resumed one begins with that step
    # (steps count rollout steps done, from 1)
    assert [[int(r["step"]) for r in rows] for rows in starts] == [list(range(1, stopped_after + 1)),
                                                                  list(range(stopped_after, steps + 1))]
    for row in [r for rows in starts for r in rows]:
        assert deterministic(row) == pytest.approx(deterministic(expected[int(row["step"]) - 1]), rel=1e-5, abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("signum, loggers", [(signal.SIGTERM, []), (signal.SIGINT, ["logger.wandb=true"])],
                         ids=["SIGTERM", "SIGINT-wandb"])
def test_a_signal_mid_step_checkpoints_that_step_and_the_printed_command_resumes_exactly(compose_train, tmp_path,
                                                                                       signum, loggers):
    reference, stopped = tmp_path / "reference", tmp_path / "stopped"
    run(compose_train(*PERIODIC, output_dir=reference))

    training = _Training(stopped, *PERIODIC, *loggers, wait_at=2)
    status, seconds = training.stop(training.waiting_pid(), signum)
    assert status == interrupted_status(signum) == 128 + signum, training.log()[-3000:]
    # step 3 (0-based 2) was finished and checkpointed; the periodic checkpoint of step 4 was never reached
    assert _checkpoints(stopped) == {"step_2.ckpt": 2 * UPDATES, "last.ckpt": 3 * UPDATES}
    assert not list((stopped / "checkpoints").glob("*.partial")) and not (stopped / "model").exists()
    assert f"stopped by {signal.Signals(signum).name} after rollout step 3" in training.log()
    assert seconds < 120
    if loggers:  # the offline wandb run holds every step the CSV does, the stopped one included, and was finished
        (first_run,) = (stopped / "wandb").glob("offline-run-*")
        (records,) = first_run.glob("*.wandb")
        (logged,) = versions(stopped)
        for row in logged:
            assert re.search(b"rollout/mean_length.{1,4}" + re.escape(row["rollout/mean_length"].encode()),
                             records.read_bytes(), flags=re.DOTALL)
        assert "finishing run" in (first_run / "logs" / "debug.log").read_text()

    resumed = subprocess.run(_resume_command(training.log(), stopped), cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_resumed_like(reference, stopped, steps=4, stopped_after=3)
    assert (stopped / "samples.jsonl").read_text().count('"step": 3,') == (reference / "samples.jsonl").read_text(
        ).count('"step": 3,') > 0


@pytest.mark.slow
def test_a_second_signal_stops_at_once(tmp_path):
    stopped = tmp_path / "stopped"
    training = _Training(stopped, *PERIODIC, wait_at=2)
    pid = training.waiting_pid()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while "send it again to stop at once" not in training.log():
        assert time.monotonic() < deadline, training.log()[-3000:]
        time.sleep(0.01)
    status, seconds = training.stop(pid, signal.SIGINT)
    assert status == -signal.SIGINT and seconds < 30  # ended by the signal itself, not by a clean exit
    assert _checkpoints(stopped)["last.ckpt"] == 2 * UPDATES  # the step in progress is lost, the checkpoints whole
    assert not list((stopped / "checkpoints").glob("*.partial"))


def _rank_exited(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.slow
def test_ddp_ranks_agree_to_stop_when_one_rank_gets_the_signal(tmp_path):
    ddp = [*RUN, "trainer=ddp_cpu", "trainer.max_steps=3", "trainer.ckpt_every_n_steps=0"]
    reference, stopped = tmp_path / "reference", tmp_path / "stopped"
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    from conftest import FAST_TRAIN

    cmd = [sys.executable, str(ROOT / "tests" / "distributed_run.py"), *FAST_TRAIN, *ddp]
    done = subprocess.run([*cmd, f"output_dir={reference}"], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    training = _Training(stopped, *ddp, wait_at=1, rank=1, script="distributed_run.py")
    rank1 = training.waiting_pid()
    status, _ = training.stop(rank1, signal.SIGTERM)
    assert status == 128 + signal.SIGTERM, training.log()[-3000:]
    deadline = time.monotonic() + 60
    while not _rank_exited(rank1):
        assert time.monotonic() < deadline, "rank 1 still running after rank 0 exited"
        time.sleep(0.1)
    assert _checkpoints(stopped) == {"last.ckpt": 2 * UPDATES}

    resumed = subprocess.run([*cmd, "ckpt_path=auto", f"output_dir={stopped}"], env={**os.environ, **env},
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for rank in (0, 1):
        a, b = (torch.load(out / f"rank{rank}.pt", weights_only=False) for out in (reference, stopped))
        assert a["optimizer_steps"] == b["optimizer_steps"] == 3 * UPDATES
        for key in a["weights"]:
            torch.testing.assert_close(a["weights"][key], b["weights"][key], atol=1e-4, rtol=0)
    _assert_resumed_like(reference, stopped, steps=3, stopped_after=2)


@pytest.mark.slow
def test_sigusr1_under_slurm_requeues_the_job_once_the_checkpoint_is_written(tmp_path):
    bin_dir, calls = tmp_path / "bin", tmp_path / "scontrol.calls"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\nls "{tmp_path}/stopped/checkpoints" > "{calls}"\necho "$@" >> "{calls}"\n')
    scontrol.chmod(0o755)
    slurm = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "lcpo", "SLURM_JOB_ID": "4242", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    stopped = tmp_path / "stopped"
    training = _Training(stopped, *PERIODIC, wait_at=1, env=slurm)
    status, _ = training.stop(training.waiting_pid(), signal.SIGUSR1)
    assert status == 128 + signal.SIGUSR1, training.log()[-3000:]
    assert calls.read_text().splitlines() == ["last.ckpt", "step_2.ckpt", "requeue 4242"]
    assert _checkpoints(stopped)["last.ckpt"] == 2 * UPDATES


def test_stop_signals_are_checked_and_a_first_signal_arms_the_default_action(monkeypatch):
    with pytest.raises(ValueError, match="trainer.stop_signals must be one of .* got 'SIGKILL'"):
        TrainerConfig(stop_signals=["SIGKILL"])
    with pytest.raises(ValueError, match="got 'TERM'"):
        TrainerConfig(stop_signals=["TERM"])
    request = StopRequest(["SIGUSR2"])
    previous = signal.getsignal(signal.SIGUSR2)
    try:
        request.install()
        assert request.signum == 0
        os.kill(os.getpid(), signal.SIGUSR2)
        assert request.signum == signal.SIGUSR2 and signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGUSR2, previous)
