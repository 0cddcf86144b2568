"""Resume in place: a resumed training run continues in its own folder, so its checkpoints, metrics and samples stay
together.

- ``ckpt_path=auto`` alone continues the newest run under ``outputs/train/`` made with the same overrides (the
  other overrides compared as ``.hydra/overrides.yaml`` holds them) that has a checkpoint; none: a fresh start.
- ``resume=<run dir>`` continues that run with its own overrides (later ones on the command line win).
- ``ckpt_path=<run dir>/checkpoints/<file>`` continues in ``<run dir>``.

Each is rewritten into ``ckpt_path=... hydra.run.dir=<run dir>`` before Hydra makes a folder; a command line that
names ``hydra.run.dir`` itself is left as it is.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import yaml

#: Where single training runs are made (``hydra.run.dir`` in ``conf/train.yaml``).
RUNS_DIR = Path("outputs/train")
#: Overrides that say how to start, not what is run: ignored when runs are compared.
START_KEYS = ("ckpt_path", "resume")


def key_of(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def saved_overrides(run: Path) -> list[str] | None:
    """The overrides a run was started with; None when ``run`` is not a Hydra run folder."""
    path = run / ".hydra" / "overrides.yaml"
    return [str(o) for o in yaml.safe_load(path.read_text()) or []] if path.is_file() else None


def what_is_run(overrides: Sequence[str]) -> list[str]:
    return sorted(o for o in overrides if key_of(o) not in START_KEYS and not key_of(o).startswith("hydra"))


def has_checkpoint(run: Path) -> bool:
    return any((run / "checkpoints").glob("*.ckpt"))


def matching_run(overrides: Sequence[str], runs_dir: Path = RUNS_DIR) -> Path | None:
    """The newest run under ``runs_dir`` started with the same overrides (start keys aside) that has a checkpoint."""
    wanted = what_is_run(overrides)
    runs = sorted((p for p in runs_dir.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for run in runs:
        saved = saved_overrides(run)
        if saved is not None and what_is_run(saved) == wanted and has_checkpoint(run):
            return run
    return None


def resume_args(args: list[str], multirun: bool) -> list[str]:
    """``args`` with a resume pointed at its run's folder (see the module docstring); others unchanged."""
    if multirun or any(key_of(a) == "hydra.run.dir" for a in args):
        return args
    values = {key_of(a): a.partition("=")[2] for a in args if not a.startswith("-")}
    if "resume" in values:
        run = Path(values["resume"]).expanduser()
        saved = saved_overrides(run)
        if saved is None:
            raise ValueError(f"resume={run}: not a training run folder (no .hydra/overrides.yaml)")
        given = [a for a in args if key_of(a) != "resume"]
        given_keys = {key_of(a) for a in given}
        kept = [o for o in what_is_run(saved) if key_of(o) not in given_keys]
        return [*kept, *(a for a in given if key_of(a) != "ckpt_path"), "ckpt_path=auto", f"hydra.run.dir={run}"]
    ckpt = values.get("ckpt_path")
    if ckpt == "auto":
        run = matching_run(args)
        if run is None:
            print(f"ckpt_path=auto: no earlier run with these overrides under {RUNS_DIR}/; starting a new one",
                  file=sys.stderr)
            return args
        print(f"ckpt_path=auto: continuing {run}", file=sys.stderr)
        return [*args, f"hydra.run.dir={run}"]
    if ckpt and Path(ckpt).parent.name == "checkpoints" and saved_overrides(Path(ckpt).parent.parent) is not None:
        return [*args, f"hydra.run.dir={Path(ckpt).parent.parent}"]
    return args
