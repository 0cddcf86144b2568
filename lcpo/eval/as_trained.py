"""Evaluating a model as it was trained: the prompt and grid ``lcpo.evaluate`` uses when a model folder carries
``lcpo.json`` (:mod:`lcpo.models.meta`) and the command line does not set them.

- ``prompt``: the model's wording, when every described model was trained with the same one and neither the
  ``prompt`` group nor a ``prompt.*`` key was given.
- ``grid``: each ``grid.*`` key not given comes from the model's run (its end-of-run evaluation grid); a warm-start
  has none, so its budgets are spread over the range it saw and the max-mode cap is twice the largest.

Whatever the budgets, a warning names those far outside the range a model was trained on (below half the smallest
or above twice the largest): a model asked for lengths it never produced says little about length control.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Collection, Mapping

from lcpo.algo.budgets import UniformBudget, spread_budgets
from lcpo.config import EvalGrid, EvaluateConfig
from lcpo.models.meta import ModelMeta, read_meta

log = logging.getLogger(__name__)

#: How far outside its training range a budget may lie before a warning: below low / FAR or above high * FAR.
FAR = 2.0


def model_folders(models) -> dict[str, Path]:
    """``models`` (a list or a ``{name: folder}`` mapping) as ``{name: folder}``."""
    if isinstance(models, Mapping):
        return {str(k): Path(v) for k, v in models.items()}
    return {str(v): Path(v) for v in models}


def given_keys(overrides: Collection[str]) -> set[str]:
    """The keys and groups a command line sets (``prompt=tiny`` -> ``prompt``, ``grid.budgets=[..]`` ->
    ``grid.budgets``)."""
    return {o.partition("=")[0].lstrip("+~") for o in overrides}


def as_trained(cfg: EvaluateConfig, given: set[str]) -> EvaluateConfig:
    """``cfg`` with the described models' prompt and grid where ``given`` leaves them to the defaults."""
    metas = {name: meta for name, folder in model_folders(cfg.models).items() if (meta := read_meta(folder))}
    if not metas:
        return cfg
    used = []
    if not any(k == "prompt" or k.startswith("prompt.") for k in given):
        prompts = {repr(m.prompt) for m in metas.values()}
        if len(prompts) == 1:
            cfg = replace(cfg, prompt=next(iter(metas.values())).prompt)
            used.append("prompt")
        else:
            log.warning("the models were trained with different prompts; evaluating all with the prompt group's")
    trained = trained_grid(next(iter(metas.values())))
    taken = {f.name: getattr(trained, f.name) for f in fields(EvalGrid) if f"grid.{f.name}" not in given}
    if "grid" not in given and taken:
        cfg = replace(cfg, grid=EvalGrid(**(asdict(cfg.grid) | taken)))
        used.append("grid." + ",".join(sorted(taken)) if len(taken) < len(fields(EvalGrid)) else "grid")
    if used:
        log.info("evaluating as trained (lcpo.json): %s from the model; budgets %s", ", ".join(used), cfg.grid.budgets)
    warn_far_budgets(cfg.grid.budgets, metas)
    return cfg


def trained_grid(meta: ModelMeta) -> EvalGrid:
    """The run's own evaluation grid; for a warm-start, budgets spread over its range."""
    if meta.grid is not None:
        return meta.grid
    low, high = meta.budget_range
    return EvalGrid(budgets=spread_budgets(UniformBudget(low=low, high=high)), max_mode_cap=int(FAR * high))


def warn_far_budgets(budgets: list[int], metas: Mapping[str, ModelMeta]) -> list[int]:
    """Warns, per model, about budgets far outside its training range; returns those of the last model warned."""
    far: list[int] = []
    for name, meta in metas.items():
        low, high = meta.budget_range
        far = [b for b in budgets if b < low / FAR or b > high * FAR]
        if far:
            log.warning(
                "budgets %s lie far outside the range %s was trained on (%d-%d): its scores there say little about "
                "length control", far, name, low, high,
            )
    return far

