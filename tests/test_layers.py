"""The package tree is the architecture: imports run only down the layers (docs/architecture.md).

Every import in every module of ``lcpo`` is read with ``ast`` (those inside functions too, where optional packages
and heavy modules are imported late), so a new upward import fails here, naming the module and the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lcpo"

#: Lowest first; a module may import its own layer and those listed before it. The top-level modules
#: ``lcpo/train.py`` and its siblings only forward ``python -m lcpo.<name>`` to :mod:`lcpo.cli`.
LAYERS = ["errors", "algo", "config", "models", "tasks", "rollout", "eval", "training", "cli", "bench", "<entry>"]
#: Layers that must not know these third-party packages.
FORBIDDEN = {
    "algo": ("lightning", "hydra", "omegaconf", "transformers", "vllm"),
    "config": ("lightning", "transformers", "vllm", "torch"),
    "models": ("lightning", "hydra", "omegaconf", "vllm"),
    "tasks": ("lightning", "hydra", "omegaconf", "vllm"),
    "rollout": ("lightning", "hydra", "omegaconf"),
    "eval": ("lightning", "hydra"),
}
#: Same-level packages that stay independent of each other.
PEERS = {("models", "tasks"), ("tasks", "models")}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "<entry>"
    return parts[1] if parts[1] in LAYERS else "<entry>"


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append((".".join(parts), path))
    return found


def imports(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, node.lineno))
            if node.module == "lcpo":
                out += [(f"lcpo.{alias.name}", node.lineno) for alias in node.names]
    return out


@pytest.mark.parametrize("name,path", modules(), ids=[m for m, _ in modules()])
def test_imports_run_down_the_layers(name: str, path: Path) -> None:
    own = layer_of(name)
    bad = []
    for target, line in imports(path):
        top = target.split(".")[0]
        if top in FORBIDDEN.get(own, ()):
            bad.append(f"{path.name}:{line} imports {target} (the {own} layer knows no {top})")
        if top != "lcpo" or target == "lcpo":
            continue
        theirs = layer_of(target)
        if theirs == own:
            continue
        if LAYERS.index(theirs) > LAYERS.index(own) or (own, theirs) in PEERS:
            bad.append(f"{path.name}:{line} imports {target} ({own} may not import {theirs})")
    assert not bad, "\n".join(bad)


def test_every_package_says_what_its_layer_is() -> None:
    for layer in LAYERS[1:-1]:
        init = PACKAGE / layer / "__init__.py"
        assert init.is_file() and ast.get_docstring(ast.parse(init.read_text())), f"{init} needs a docstring"
