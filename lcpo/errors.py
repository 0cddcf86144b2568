"""One error boundary for every entry point: input a user can fix ends the run with one message, not a traceback.

The config schema, task files, model folders and checkpoints raise errors whose message already names the key, the
file and line, or the path: ``ValueError`` and ``OSError`` (and their subclasses), OmegaConf's and Hydra's errors,
and :class:`LcpoError`. At an entry point those become ``<prog>: error: <message>`` on stderr and exit status 1.
``HYDRA_FULL_ERROR=1`` lets the original exception through with its traceback (as Hydra does for its own errors).
Every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn, TypeVar

from hydra.errors import CompactHydraException
from omegaconf.errors import OmegaConfBaseException

F = TypeVar("F", bound=Callable[..., Any])


class LcpoError(Exception):
    """An error whose message is complete for the user: a checkpoint that cannot be read or written, a run stopped
    because its updates kept being non-finite."""


#: What counts as bad input at an entry point (see the module docstring).
USER_ERRORS = (LcpoError, ValueError, OSError, OmegaConfBaseException, CompactHydraException)


class InputError(CompactHydraException):
    """Raised out of a Hydra task function in a multirun: Hydra prints a compact exception's message alone, after
    the sweep's other jobs have run."""


def full_error() -> bool:
    """Whether the user asked for complete tracebacks (Hydra's variable, so one switch serves every entry point)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def describe(err: BaseException) -> str:
    """The message of ``err``; its type name when it has none."""
    return str(err).strip() or type(err).__name__


def exit_with(prog: str, err: BaseException) -> NoReturn:
    """Prints ``<prog>: error: <message>`` to stderr and exits with status 1."""
    print(f"{prog}: error: {describe(err)}", file=sys.stderr)
    raise SystemExit(1)


def hydra_boundary(prog: str) -> Callable[[F], F]:
    """Decorates a Hydra task function (under ``@hydra.main``). A single run exits at once; a multirun job raises
    :class:`InputError`, so that the other jobs of the sweep still run."""

    def decorate(task: F) -> F:
        @functools.wraps(task)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return task(*args, **kwargs)
            except USER_ERRORS as err:
                if full_error() or isinstance(err, InputError):
                    raise
                if _in_multirun():
                    raise InputError(f"{prog}: error: {describe(err)}") from None
                remove_unused_run_folder()
                exit_with(prog, err)

        return wrapper  # type: ignore[return-value]

    return decorate


def remove_unused_run_folder() -> None:
    """Removes the folder Hydra made for a run that was refused before it wrote anything: one holding only Hydra's
    ``.hydra/`` and the job's log. A folder with anything else (a run resumed in place) is kept."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    folder = Path(hydra_cfg.runtime.output_dir)
    if folder.is_dir() and {p.name for p in folder.iterdir()} <= {".hydra", f"{hydra_cfg.job.name}.log"}:
        shutil.rmtree(folder, ignore_errors=True)


def print_page(text: str) -> None:
    """Prints a help page; a reader that stops early (``--help | head``) ends it quietly, not with a traceback.

    Python's documented recipe: once the pipe is closed, stdout points at devnull so the flush at exit cannot
    raise ``BrokenPipeError`` again.
    """
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def cli_boundary(prog: str) -> Callable[[F], F]:
    """Decorates a plain ``main(argv)``: user errors print one line and exit with status 1."""

    def decorate(main: F) -> F:
        @functools.wraps(main)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return main(*args, **kwargs)
            except USER_ERRORS as err:
                if full_error():
                    raise
                exit_with(prog, err)

        return wrapper  # type: ignore[return-value]

    return decorate


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
