"""A quiet console by default: the run's own progress bar, a line per validation and where the outputs are, without
the libraries' banners, tips, device reports, deprecation warnings and shard progress bars (``trainer.verbose``
brings them back; ``logger.wandb_mode=online`` brings back wandb's)."""

from __future__ import annotations

import logging
import os
import warnings

#: The start of each library message a default console leaves out.
NOISE = ("GPU available", "TPU available", "HPU available", "💡 Tip", "`Trainer.fit` stopped", "Seed set to",
         "LOCAL_RANK", "You are using a CUDA device", "Restoring states from", "Restored all states")
#: The loggers those messages come from.
NOISY_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.fabric.utilities.seed", "lightning.pytorch.accelerators.cuda")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).lstrip().startswith(NOISE)


_FILTER = _DropNoise()


def quiet_console(verbose: bool, wandb_online: bool) -> None:
    """Silences the libraries' console chatter for this process unless ``verbose``."""
    if not (verbose or wandb_online):
        os.environ.setdefault("WANDB_SILENT", "true")
    if verbose:
        return
    for name in NOISY_LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")  # resumed in place
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards" on every export
