"""``python -m lcpo.bench stops <model folder> [...] [-- overrides]``: does a policy stop early where it pays?

On the synthetic task, following a small budget means stopping before the last step on problems that do not fit
(:mod:`lcpo.bench.optimum` says where the reward's best policy stops). This reads the decision off the model
directly, without sampling: for every evaluation problem, mode and budget, and every point after a step line with
steps left, the context is the prompt plus the step lines so far (no check lines, the count as the task writes it),
and the measure is the model's probability of ``</think>`` next. Points are split by what the best policy under
the configured reward does there: stop (it has stopped by that line) or go on. A policy that learned length
control puts probability on stopping at the first kind and little at the second; the warm-started base, which
wraps up after any line that shows the steps left no longer fit (one time in five), puts some on both.

Prints one row per model and mode: the mean stop probability at each kind of point and their counts (``--json``:
as JSON). Overrides are ``lcpo.cli.train``'s, as for ``optimum`` (default ``experiment=demo_max``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import torch
from rich.console import Console
from rich.table import Table

from lcpo.algo.batching import left_pad
from lcpo.bench.optimum import load_config
from lcpo.eval.optimum import best_line_counts
from lcpo.algo.budgets import BudgetSpec
from lcpo.config import TrainConfig
from lcpo.tasks.prompts import PromptBuilder
from lcpo.tasks.synthetic import THINK_CLOSE, SyntheticTask
from lcpo.models.tiny import load_tiny


def stop_probabilities(model_dir: Path, cfg: TrainConfig, batch_size: int = 256) -> list[dict]:
    """One row per mode: mean P(``</think>`` next) where the best policy has stopped and where it goes on."""
    model, tokenizer = load_tiny(model_dir)
    model.eval()
    close = tokenizer.convert_tokens_to_ids(THINK_CLOSE)
    if close is None or close == tokenizer.unk_token_id:
        raise ValueError(f"{model_dir}: its tokenizer has no {THINK_CLOSE} token, so its stops cannot be read")
    task, build = SyntheticTask(cfg.task.synthetic), PromptBuilder(cfg.prompt, tokenizer)
    problems = task.eval_set(cfg.eval.problems, cfg.eval.seed)
    sizes = {len(p.meta["terms"]) for p in problems}
    rows = []
    for mode in cfg.eval.modes:
        points: dict[bool, list[str]] = {True: [], False: []}
        for budget in cfg.eval.budgets:
            spec = BudgetSpec(mode, budget)
            best = best_line_counts(task, cfg.reward, spec, cfg.eval.cap(mode, budget), sizes)
            for p in problems:
                k = len(p.meta["terms"])
                lines = task.trace(p, (), spec).split("\n")
                for done in range(1, k):  # after `done` step lines, with steps left
                    points[best[k] <= done].append(build(p, spec) + "\n".join(lines[:done]) + "\n")
        row = {"model": str(model_dir), "mode": mode}
        for stopped, contexts in points.items():
            probs = [_next_token_prob(model, tokenizer, contexts[i : i + batch_size], close)
                     for i in range(0, len(contexts), batch_size)]
            key = "where_best_stops" if stopped else "where_best_goes_on"
            row[key] = float(torch.cat(probs).mean()) if contexts else float("nan")
            row[f"{key}_n"] = len(contexts)
        rows.append(row)
    return rows


@torch.no_grad()
def _next_token_prob(model, tokenizer, contexts: list[str], token: int) -> torch.Tensor:
    """P(``token`` next) after each context, batched with left padding."""
    input_ids, mask = left_pad([tokenizer.encode(c, add_special_tokens=False) for c in contexts],
                               tokenizer.pad_token_id)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits[:, -1].float()
    return logits.softmax(-1)[:, token]


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="lcpo-bench stops", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+", help="model folders (transformers format, tiny tokenizer)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args, overrides = parser.parse_known_args(argv)
    for folder in args.models:
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder}: not a model folder (no config.json)")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(overrides)
    rows = [row for folder in args.models for row in stop_probabilities(folder, cfg)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return rows
    table = Table(title=f"P(</think> next) after a step line with steps left (reward={cfg.reward.name})")
    table.add_column("model", overflow="fold")
    for col in ("mode", "where the best policy stops", "n", "where it goes on", "n"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["model"], r["mode"], f"{r['where_best_stops']:.4f}", str(r["where_best_stops_n"]),
                      f"{r['where_best_goes_on']:.4f}", str(r["where_best_goes_on_n"]))
    Console().print(table)
    return rows
