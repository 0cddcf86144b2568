"""``python -m lcpo.train``: online LCPO/GRPO training composed from the config groups under ``conf/``.

Examples::

    python -m lcpo.train experiment=demo
    python -m lcpo.train reward=max reward.alpha=0.0003 budget=uniform model=tiny
    python -m lcpo.train -m reward.alpha=1e-4,3e-4,1e-3      # a multirun sweep

The run is wired and run by :mod:`lcpo.training.build`; this module is the Hydra entry point. In a multirun, a job
whose folder already holds a finished run (``finished.json``) of the same config is skipped, so a sweep stopped
part-way is completed by running it again into the same folder (``hydra.sweep.dir=multirun/<sweep>/<date>``); a
job whose finished run had another config is refused, naming the keys. Hydra rewrites a job's ``.hydra/`` record
before the job starts, so a finished job keeps a copy (``.hydra.finished``) that is put back when it is skipped or
refused: the sweep report reads the overrides the run was made with.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from lcpo.config import CONF_DIR, TrainConfig, validate
from lcpo.config.diff import differences
from lcpo.errors import hydra_boundary
from lcpo.training.build import FINISHED, run
from lcpo.training.console import quiet_console

log = logging.getLogger(__name__)

#: Keys that may differ between a finished sweep job and its rerun: how to resume or what the console shows, not
#: what is run.
RESUME_KEYS = ("ckpt_path", "trainer.verbose")
#: A finished sweep job's copy of its Hydra record (``.hydra/``), as it was when the run was made.
HYDRA_RECORD = ".hydra.finished"


def sweep_job_name() -> str | None:
    """A multirun job's overrides (``reward.alpha=0.02``), so the runs of a sweep are told apart in wandb."""
    from hydra.core.hydra_config import HydraConfig

    if not in_multirun():
        return None
    job = HydraConfig.get().job
    return job.override_dirname or f"job{job.num}"


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def hydra_record() -> Path:
    """This job's ``.hydra/`` folder (config, overrides)."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    return Path(hydra_cfg.runtime.output_dir) / str(hydra_cfg.output_subdir)


def sweep_job(cfg: TrainConfig) -> dict[str, float]:
    """A multirun job: skipped when its folder holds a finished run of ``cfg`` (its Hydra record put back), run
    otherwise (its Hydra record kept once it has finished)."""
    out, record = Path(cfg.output_dir), hydra_record()
    try:
        metrics = finished_metrics(cfg)
    finally:
        if (out / HYDRA_RECORD).is_dir():
            shutil.copytree(out / HYDRA_RECORD, record, dirs_exist_ok=True)
    if metrics is not None:
        log.info("%s: finished already (%s); skipped", out, FINISHED)
        return metrics
    metrics = run(cfg)
    if (out / FINISHED).is_file() and record.is_dir():
        shutil.copytree(record, out / HYDRA_RECORD, dirs_exist_ok=True)
    return metrics


def finished_metrics(cfg: TrainConfig) -> dict[str, float] | None:
    """The metrics of the finished run in ``cfg.output_dir``, or None when there is none; raises ``ValueError``
    naming the keys when the finished run had another config (a sweep rerun into its folder with other values)."""
    out = Path(cfg.output_dir)
    if not (out / FINISHED).is_file():
        return None
    there = OmegaConf.to_container(OmegaConf.load(out / "config.yaml"))
    here = OmegaConf.to_container(OmegaConf.structured(cfg))
    for key in RESUME_KEYS:
        *parents, name = key.split(".")
        for tree in (there, here):
            for parent in parents:
                tree = tree.get(parent) or {}
            tree.pop(name, None)
    detail = differences(there, here)
    if detail:
        raise ValueError(f"{out}: holds a finished run of another config ({detail}); sweep into another folder")
    return json.loads((out / FINISHED).read_text())


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
@hydra_boundary("lcpo-train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns the final mean reward (the value a sweeper would optimise)."""
    train_cfg = validate(cfg)
    train_cfg.logger.name = train_cfg.logger.name or sweep_job_name()
    quiet_console(train_cfg.trainer.verbose, train_cfg.logger.wandb and train_cfg.logger.wandb_mode == "online")
    metrics = sweep_job(train_cfg) if in_multirun() else run(train_cfg)
    log.info("outputs: %s", Path(train_cfg.output_dir).resolve())
    return metrics.get("reward/mean", float("nan"))


if __name__ == "__main__":
    main()
