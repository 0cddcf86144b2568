"""Benchmarks, ``python -m lcpo.bench [memory|plan|race|optimum|stops] ...``.

- no subcommand: step time and tokens/s at the demo's settings (``lcpo.bench.steps``, ``make bench``);
- ``memory``: peak memory of one update at a real vocabulary and response length on the CPU (``lcpo.bench.memory``);
- ``plan``: per-GPU memory of a run, item by item, and the largest micro-batch that fits (``lcpo.bench.plan``);
- ``race``: lcpo's step time against TRL's GRPOTrainer on the same model and settings (``lcpo.bench.race``,
  ``make race``; needs the ``bench`` extra);
- ``optimum``: the demo's bars as the training reward's best policy on the synthetic task scores them: which bars
  the reward can pass at all (``lcpo.bench.optimum``);
- ``stops``: how likely a model is to stop early where that best policy stops, and where it does not
  (``lcpo.bench.stops``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Sequence

from lcpo.errors import cli_boundary, print_page

#: Subcommands, each a module of this package with a ``main(argv)``; without one, ``steps`` runs.
SUBCOMMANDS = ("memory", "plan", "race", "optimum", "stops")


@cli_boundary("lcpo-bench")
def main(argv: Sequence[str] | None = None) -> Any:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print_page(f"usage: python -m lcpo.bench [{'|'.join(SUBCOMMANDS)}] [options]  (each takes --help)\n\n{__doc__}")
        return None
    name, rest = (args[0], args[1:]) if args and args[0] in SUBCOMMANDS else ("steps", args)
    return importlib.import_module(f"lcpo.bench.{name}").main(rest)
