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

import sys
from typing import Any, Sequence

from lcpo.errors import cli_boundary


@cli_boundary("lcpo-bench")
def main(argv: Sequence[str] | None = None) -> Any:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print("usage: python -m lcpo.bench [memory|race|optimum|stops] [options]  (each takes --help)\n\n" + __doc__)
        return None
    if args and args[0] == "memory":
        from lcpo.bench.memory import main as memory

        return memory(args[1:])
    if args and args[0] == "plan":
        from lcpo.bench.plan import main as plan

        return plan(args[1:])
    if args and args[0] == "race":
        from lcpo.bench.race import main as race

        return race(args[1:])
    if args and args[0] == "optimum":
        from lcpo.bench.optimum import main as optimum

        return optimum(args[1:])
    if args and args[0] == "stops":
        from lcpo.bench.stops import main as stops

        return stops(args[1:])
    from lcpo.bench.steps import main as steps

    return steps(args)
