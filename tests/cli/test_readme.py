"""The README's laptop training lines run at the laptop recipe's scales: every budget fits the answer cap, and the
length penalty is of the recipe's size, not the paper's (whose budgets are ~30x larger)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def laptop_lines() -> list[list[str]]:
    text = README.read_text()
    block = text.split("Laptop lines", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = []
    for line in block.splitlines():
        command = line.split("#", 1)[0].strip()
        if command.startswith("python -m lcpo.train"):
            lines.append(shlex.split(command)[3:])
        elif command.startswith("make train"):
            lines.append(shlex.split(re.search(r'ARGS="([^"]*)"', command).group(1)))
    return lines


@pytest.mark.parametrize("args", laptop_lines(), ids=lambda a: " ".join(a) or "bare")
def test_laptop_lines_use_laptop_scales(args, tmp_path, monkeypatch):
    from lcpo.config import compose_config, validate

    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "demo" / "base").mkdir(parents=True)
    (tmp_path / "outputs" / "demo" / "base" / "config.json").write_text("{}")
    cfg = validate(compose_config("train", [*args, f"output_dir={tmp_path / 'run'}"]))
    budgets = cfg.budget.distribution()
    assert budgets.largest <= cfg.rollout.max_new_tokens
    assert cfg.reward.alpha >= 0.01 and (cfg.reward.name not in ("mixed",) or cfg.reward.max_alpha >= 0.01)
