"""What a model folder written by training or warm-start says about how it was trained, so that evaluation meets it
as trained: ``lcpo.json`` beside ``config.json`` holds the prompt wording, the budget range it saw, and (for a
trained policy) the run's evaluation grid.

A model trained with ``prompt=tiny`` on budgets 30-99 scores 0 under the paper's prompt and budgets 512-3600; with
this file ``lcpo.evaluate`` uses the model's own settings unless told otherwise (:mod:`lcpo.eval.as_trained`).
Folders without the file (any transformers model) are evaluated on the defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from lcpo.config import EvalGrid, PromptConfig

META_FILE = "lcpo.json"


@dataclass(frozen=True)
class ModelMeta:
    """``budget_range`` is the smallest and largest budget the model was trained (or warm-started) on; ``grid`` the
    evaluation grid its run used (None for a warm-start, which has none)."""

    prompt: PromptConfig
    budget_range: tuple[int, int]
    grid: Optional[EvalGrid] = None

    def write(self, folder: str | Path) -> Path:
        """Writes ``<folder>/lcpo.json`` (the folder must exist: call after the model is saved)."""
        path = Path(folder) / META_FILE
        data = {"prompt": asdict(self.prompt), "budget_range": list(self.budget_range),
                "grid": None if self.grid is None else asdict(self.grid)}
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path


def read_meta(folder: str | Path) -> ModelMeta | None:
    """The folder's :class:`ModelMeta`; None when it has no ``lcpo.json``. A file that does not parse is an error
    naming it (a hand-edited file must not silently change what is evaluated)."""
    path = Path(folder).expanduser() / META_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        low, high = data["budget_range"]
        grid = data.get("grid")
        grid = None if grid is None else EvalGrid(**grid)
        return ModelMeta(PromptConfig(**data["prompt"]), (int(low), int(high)), grid)
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a model description ({type(err).__name__}: {err})") from None
