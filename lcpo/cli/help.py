"""``--help`` for the Hydra entry points: what a user needs on one screen (the entry points, each group with its
choices, the keys people change most with their values), instead of Hydra's full config dump (``--hydra-help``
and ``--cfg job`` still give Hydra's views)."""

from __future__ import annotations

import json

from omegaconf import OmegaConf

from lcpo.cli.preflight import choices, groups_picked, groups_used
from lcpo.config import compose_config

ENTRY_POINTS = {
    "lcpo.train": "train a policy (Hydra: group=choice key=value; -m for a sweep)",
    "lcpo.evaluate": "evaluate model folders over a budget grid",
    "lcpo.warmstart": "supervised warm-start of the tiny model",
    "lcpo.demo": "warm-start, train and evaluate the tiny model end to end",
    "lcpo.report": "summarise a sweep folder",
    "lcpo.bench": "benchmarks: steps (default), memory, race, optimum, stops",
}

#: The keys people change most, with what each means.
COMMON_KEYS = {
    "train": {
        "trainer.max_steps": "rollout steps to train",
        "model.path": "the model folder to train (model=hf, or model=auto's warm-started model)",
        "reward.alpha": "length penalty per token",
        "budget.low": "smallest budget sampled in training",
        "budget.high": "largest budget sampled in training",
        "algo.lr": "learning rate",
        "algo.group_size": "samples per prompt",
        "algo.prompts_per_step": "prompts per rollout step",
        "rollout.max_new_tokens": "longest response in training",
        "ckpt_path": "auto: continue the newest run with the same overrides (or resume=<run dir>)",
    },
    "evaluate": {
        "models": "[folder, ...] or {name: folder}",
        "grid.budgets": "budgets (default: a trained model's own range, else the paper's)",
        "grid.modes": "exact and/or max",
        "grid.samples": "samples per problem",
        "grid.problems": "problems per task (null: all)",
        "grid.max_mode_cap": "response cap in max mode",
        "grid.exact_factor": "response cap in exact mode, times the budget",
        "rollout.temperature": "sampling temperature",
        "extra_files": "more JSONL/parquet tasks",
        "device": "auto, cpu or cuda",
    },
}

EXAMPLES = {
    "train": [
        "python -m lcpo.train                          # the laptop recipe, from the demo's model (make demo first)",
        "python -m lcpo.train model=tiny               # the same from random weights, on purpose",
        "python -m lcpo.train -m +sweep=alpha          # a sweep (make sweep SWEEP=alpha)",
        "python -m lcpo.train ckpt_path=auto           # continue the last run with these overrides in its folder",
    ],
    "evaluate": [
        "python -m lcpo.evaluate models='[outputs/demo/model]'   # a trained model, as it was trained",
        "python -m lcpo.evaluate models='[/models/x]' grid.budgets='[512,1024]' rollout=budget_forcing",
    ],
}


def shown_value(cfg, key: str) -> str:
    """A key's value as it would be written on the command line (``???``: must be given)."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if OmegaConf.is_missing(node, leaf):
        return "???"
    value = node[leaf]
    if isinstance(value, str):
        return value
    return json.dumps(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)


def render(name: str, prog: str) -> str:
    """The help page of ``conf/<name>.yaml``'s entry point."""
    cfg = compose_config(name, ["output_dir=."], return_hydra=True)
    picked = dict(OmegaConf.to_container(cfg.hydra.runtime.choices))
    lines = [f"usage: {prog} [group=choice ...] [key=value ...]", "", "examples:"]
    lines += [f"  {e}" for e in EXAMPLES[name]]
    lines += ["", "groups (default first):"]
    for group in groups_used(name, groups_picked(name)):
        default = picked.get(group)
        options = [o for o in choices(group) if o != default]
        shown = ([f"{default}*"] if default else []) + options
        lines.append(f"  {group:<11}{' '.join(shown)}")
    lines += ["", "keys people change most (value now):"]
    for key, what in COMMON_KEYS[name].items():
        lines.append(f"  {key}={shown_value(cfg, key)}  # {what}")
    lines += ["", "entry points (python -m ...):"]
    lines += [f"  {ep:<15}{what}" for ep, what in ENTRY_POINTS.items()]
    lines += ["", "every key: lcpo/config/ (the schema); the composed config: --cfg job; Hydra's flags: --hydra-help"]
    return "\n".join(lines)
