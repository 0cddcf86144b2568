"""A command line checked before anything heavy starts: a refused start is one line, within seconds, before a model is
built, a logger started or a run folder made.

``python -m lcpo.train`` and ``python -m lcpo.evaluate`` call :func:`preflight` on their arguments before they import
the training or evaluation stack. It

- answers ``--help`` with :mod:`lcpo.cli.help`'s page;
- refuses unknown keys and group choices with a did-you-mean over the schema and ``conf/`` (``trainer.max_step``,
  ``rewad=max``, ``reward=maxx``), and a group the entry point does not use (``experiment=`` for evaluate);
- adds the ``+`` a group needs when the config file does not pick it (``sweep=alpha`` is ``+sweep=alpha``);
- composes and validates a single run's config as the run would (a range, a missing model folder) and checks its
  optional dependencies (``rollout=vllm`` without vLLM);
- rewrites a resume (:mod:`lcpo.cli.resume`) so that it continues in the run's own folder.

A multirun is checked key by key only: each job validates its own config.
"""

from __future__ import annotations

import difflib
import importlib.util
import operator
import sys
from typing import Any, Sequence

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from lcpo.config import CONF_DIR, SCHEMAS, compose_config, to_schema, validate
from lcpo.errors import USER_ERRORS, full_error, print_page

#: Flags a checked command line may carry (any other Hydra flag, e.g. ``--cfg job``, skips the checks).
MULTIRUN_FLAGS = ("-m", "--multirun")
#: Optional packages by the config value that needs them: (key, value, module, how to get it).
OPTIONAL = (("rollout.name", "vllm", "vllm", "pip install vllm on a GPU machine; rollout=hf runs without it"),)


def preflight(name: str, prog: str, argv: list[str] | None = None) -> list[str]:
    """Checks ``argv`` (default ``sys.argv[1:]``, which is rewritten in place) for ``conf/<name>.yaml``; prints one
    line and exits 1 on a refused start, prints the help and exits 0 on ``--help``."""
    in_place = argv is None
    args = list(sys.argv[1:] if in_place else argv)
    if any(a in ("-h", "--help") for a in args):
        from lcpo.cli.help import render

        print_page(render(name, prog))
        raise SystemExit(0)
    try:
        args = check_command_line(name, args)
    except USER_ERRORS as err:
        if full_error():
            raise
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        raise SystemExit(1)
    if in_place:
        sys.argv[1:] = args
    return args


def check_command_line(name: str, args: list[str]) -> list[str]:
    """The checked (and possibly rewritten) arguments; raises ValueError naming what is wrong."""
    flags = [a for a in args if a.startswith("-")]
    if any(f not in MULTIRUN_FLAGS for f in flags):
        return args  # Hydra's own flags (--cfg, --info, -cd ...): Hydra handles the rest
    multirun = bool(flags)
    if name == "train":
        from lcpo.cli.resume import resume_args

        args = resume_args(args, multirun)
    overrides = [a for a in args if not a.startswith("-")]
    parsed = OverridesParser.create().parse_overrides(overrides)
    picked = groups_picked(name)
    schema = OmegaConf.structured(SCHEMAS[f"{name}_schema"])
    rewritten = []
    for text, override in zip(overrides, parsed):
        if override.key_or_group.startswith("hydra") or override.is_delete():
            rewritten.append(text)
            continue
        key = override.key_or_group
        if is_group(key):
            check_group(name, key, override, picked)
            if key not in picked and not override.is_add():
                text = "+" + text  # a group the config file leaves out, as Hydra wants it named
        else:
            check_key(name, key, schema, picked)
        rewritten.append(text)
    if not multirun:
        check_composed(name, rewritten)
    return [*(a for a in args if a.startswith("-")), *rewritten]


def is_group(key: str) -> bool:
    return "." not in key and (CONF_DIR / key).is_dir()


def groups_picked(name: str) -> list[str]:
    """The groups ``conf/<name>.yaml`` picks in its defaults list (``model``, ``task``, ...)."""
    defaults = yaml.safe_load((CONF_DIR / f"{name}.yaml").read_text())["defaults"]
    return [k.split()[-1].lstrip("/") for d in defaults if isinstance(d, dict) for k in d]


def choices(group: str) -> list[str]:
    """The options of a config group: its YAML files."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def groups_used(name: str, picked: Sequence[str]) -> list[str]:
    """The groups an entry point takes: those its config file picks, and for training the sweeps."""
    return [*picked, "sweep"] if name == "train" else list(picked)


def check_group(name: str, group: str, override: Override, picked: Sequence[str]) -> None:
    """``group=choice``: the group must be one this entry point uses, and every choice one of its files."""
    used = groups_used(name, picked)
    if group not in used:
        hint = " (a model folder written by lcpo.train carries its prompt and budgets, which evaluate uses)" if (
            name == "evaluate" and group == "experiment") else ""
        raise ValueError(f"{name} has no {group} group; its groups are {', '.join(used)}{hint}")
    options = choices(group)
    for value in override_values(override):
        if value not in options:
            raise ValueError(f"{group}={value}: no such choice{did_you_mean(value, options)}; "
                             f"{group} is one of {', '.join(options)}")


def override_values(override: Override) -> list[str]:
    """The values an override names: one, or each of a sweep's."""
    if override.is_sweep_override():
        return [str(v) for v in override.sweep_string_iterator()]
    value = override.value()
    return [] if value is None else [str(value)]


def check_key(name: str, key: str, schema: DictConfig, picked: Sequence[str]) -> None:
    """``a.b.c=value``: each part must be a key of the schema, down to a node the schema does not type."""
    node: Any = schema
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig) or not is_typed(node):
            return
        if part not in node:
            known = [str(k) for k in node]
            prefix = ".".join(parts[:depth])
            if depth == 0:
                groups = [g for g in groups_used(name, picked) if g not in known]
                close = did_you_mean(part, known + groups)
                raise ValueError(f"unknown config key or group {part}{close}")
            raise ValueError(f"unknown config key {key}{did_you_mean(part, known, prefix + '.')}")
        node = node._get_node(part)


def is_typed(node: DictConfig) -> bool:
    """Whether a node's keys are fixed by a dataclass (a free-form mapping, such as ``models``, is not checked)."""
    from dataclasses import is_dataclass

    return is_dataclass(OmegaConf.get_type(node))


def did_you_mean(word: str, options: Sequence[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def check_composed(name: str, overrides: Sequence[str]) -> None:
    """Composes and validates a single run's config as the run will, then checks its optional dependencies."""
    plain = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    if not any(o.lstrip("+").startswith("output_dir=") for o in plain):
        plain.append("output_dir=.")  # the run's folder is Hydra's to choose; nothing here writes to it
    cfg = compose_config(name, plain)
    obj = validate(cfg) if name == "train" else to_schema(cfg, SCHEMAS[f"{name}_schema"])
    for key, value, module, how in OPTIONAL:
        if operator.attrgetter(key)(obj) == value and importlib.util.find_spec(module) is None:
            raise ValueError(f"{key.split('.')[0]}={value} needs {module}, which is not installed ({how})")


def one_line(err: BaseException) -> str:
    """The error's message on one line: its first line, its cause's (Hydra wraps OmegaConf's errors), and the key
    OmegaConf names on a later line."""
    parts = []
    for e in (err, err.__cause__):
        if e is None:
            continue
        lines = [line.strip() for line in (str(e).strip() or type(e).__name__).splitlines() if line.strip()]
        parts += [lines[0], *(f"({line})" for line in lines[1:] if line.startswith("full_key:"))]
    return ": ".join(dict.fromkeys(parts))


__all__ = ["check_command_line", "one_line", "preflight"]
