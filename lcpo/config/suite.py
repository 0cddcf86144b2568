"""The ``suite`` group of ``conf/evaluate.yaml``: a named list of datasets evaluated together from one folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class SuiteConfig:
    """``name`` (None: no suite, evaluate ``task`` and ``extra_files``) and its ``datasets``, each looked up by name
    in ``data_dir`` (``<name>.parquet``, ``.json`` or ``.jsonl``, in the folder or one of its subfolders, as the
    reference lays them out in ``data_<budget>/``)."""

    name: Optional[str] = None
    datasets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.name is not None and not self.datasets:
            raise ValueError(f"suite={self.name} lists no datasets (suite.datasets)")
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"suite.datasets names a dataset twice: {self.datasets}")
