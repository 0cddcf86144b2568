"""Every default lives once, in the schema dataclasses: a YAML file under ``conf/`` says only what its choice changes,
and functions below the config take the config's values without defaults of their own. A restated default would
silently win over a later change of the dataclass."""

import inspect
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from lcpo.config import CONF_DIR, TrainConfig

#: Config groups that are nodes of the training schema (the same dataclasses serve evaluate and warmstart).
GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name in OmegaConf.structured(TrainConfig))
GROUP_FILES = [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))]
#: Files that set keys anywhere in the composed config, each with the composition that reads it.
GLOBAL_FILES = [
    *[(f"{name}.yaml", name, []) for name in ("train", "evaluate", "warmstart")],
    *[(f"experiment/{p.stem}.yaml", "train", [f"experiment={p.stem}"]) for p in sorted(CONF_DIR.glob("experiment/*"))],
    *[(f"sweep/{p.stem}.yaml", "train", [f"+sweep={p.stem}"]) for p in sorted(CONF_DIR.glob("sweep/*.yaml"))],
]


def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` for every value that is not a mapping (a list is one value)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


def select(node: Any, key: str) -> Any:
    for part in key.split("."):
        node = node[part]
    return node


def body(path: Path) -> dict:
    """A config file's own values: without its defaults list (and Hydra's settings, which no schema holds)."""
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return {k: v for k, v in raw.items() if k not in ("defaults", "hydra")}


def group_node(group: str, option: str) -> DictConfig:
    """The group's schema node with ``option``'s parents in its defaults list merged in, then its own body."""
    return OmegaConf.merge(group_base(group, option), body(CONF_DIR / group / f"{option}.yaml"))


def group_base(group: str, option: str) -> DictConfig:
    """What ``option`` would compose to without its own values: the schema's defaults and its parents."""
    node = OmegaConf.structured(TrainConfig)[group]
    for parent in OmegaConf.load(CONF_DIR / group / f"{option}.yaml").get("defaults", []):
        if parent != "_self_":
            node = OmegaConf.merge(node, group_node(group, parent))
    return node


@pytest.mark.parametrize("group,option", GROUP_FILES, ids=[f"{g}/{o}" for g, o in GROUP_FILES])
def test_group_files_hold_only_what_differs_from_the_schema(group, option):
    base = OmegaConf.to_container(group_base(group, option), resolve=False)
    same = [
        key for key, value in leaves(body(CONF_DIR / group / f"{option}.yaml"))
        if (select(base, key) == value or value == "???")  # merging ??? never changes a value
        and not (key == "name" and value == option)  # the choice may name itself
    ]
    assert not same, f"conf/{group}/{option}.yaml restates its schema defaults: {same}"


def compose_from(conf_dir: Path, name: str, overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
    return OmegaConf.to_container(cfg, resolve=False)


def rewrite(conf_dir: Path, rel: str, drop_body: bool = False, drop_default: Any = None) -> None:
    """Rewrites one file of a copy of conf/ without its own values or without one entry of its defaults list."""
    path = conf_dir / rel
    text = path.read_text()
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    if drop_body:
        node = {k: v for k, v in node.items() if k in ("defaults", "hydra")}
    if drop_default is not None:
        node["defaults"] = [d for d in node["defaults"] if d != drop_default]
    header = "# @package _global_\n" if text.startswith("# @package _global_") else ""
    path.write_text(header + OmegaConf.to_yaml(OmegaConf.create(node)))


@pytest.fixture
def conf_copy(tmp_path) -> Path:
    copy = tmp_path / "conf"
    shutil.copytree(CONF_DIR, copy)  # follows the sweep link, so that the copy can be edited
    return copy


@pytest.mark.parametrize("rel,name,overrides", GLOBAL_FILES, ids=[f[0] for f in GLOBAL_FILES])
def test_top_level_experiment_and_sweep_files_set_only_what_changes(conf_copy, rel, name, overrides):
    """Each value such a file sets must change the composed config: it differs from what the schema, the groups
    it picks and the files before it give."""
    own = body(conf_copy / rel)
    with_body = compose_from(conf_copy, name, overrides)
    rewrite(conf_copy, rel, drop_body=True)
    without = compose_from(conf_copy, name, overrides)
    same = [
        key for key, value in leaves(own)
        if select(with_body, key) == select(without, key) and not differs_from_an_option(key, value)
    ]
    assert not same, f"conf/{rel} sets values that are already so: {same}"


def differs_from_an_option(key: str, value: Any) -> bool:
    """Whether a value set for a group's key differs from what some option of that group gives: picked on the
    command line (``experiment=cpu model=hf``), that option would then compose differently without it."""
    group, _, rest = key.partition(".")
    if group not in GROUPS:
        return False
    options = [(g, o) for g, o in GROUP_FILES if g == group]
    return any(select(OmegaConf.to_container(group_node(*choice), resolve=False), rest) != value for choice in options)


EXPERIMENT_PICKS = [
    (p.stem, entry) for p in sorted(CONF_DIR.glob("experiment/*.yaml"))
    for entry in OmegaConf.to_container(OmegaConf.load(p)).get("defaults", [])
    if isinstance(entry, dict) and any(str(k).startswith("override /") for k in entry)
]


@pytest.mark.parametrize("experiment,entry", EXPERIMENT_PICKS, ids=[f"{e}:{list(d)[0]}" for e, d in EXPERIMENT_PICKS])
def test_experiments_repick_only_groups_they_change(conf_copy, experiment, entry):
    group = list(entry)[0].removeprefix("override /")
    picked = compose_from(conf_copy, "train", [f"experiment={experiment}"])["hydra"]["runtime"]["choices"][group]
    rewrite(conf_copy, f"experiment/{experiment}.yaml", drop_default=entry)
    without = compose_from(conf_copy, "train", [f"experiment={experiment}"])["hydra"]["runtime"]["choices"][group]
    assert picked != without, f"experiment/{experiment}.yaml re-picks {group}={picked}, which is picked already"


def _knobs() -> list[tuple[Any, tuple[str, ...]]]:
    """Functions below the config with the parameters through which the config's values reach them."""
    from lcpo.algo import budgets, losses, rewards
    from lcpo.models.load import load_pretrained
    from lcpo.rollout.budget_forcing import BudgetForcingEngine
    from lcpo.rollout.engines import build_engine
    from lcpo.rollout.hf import HFEngine
    from lcpo.training.callbacks import HFExport, SampleTable
    from lcpo.training.collector import RolloutCollector
    from lcpo.training.datamodule import PromptDataModule

    return [
        (budgets.UniformBudget, ("low", "high")),
        (budgets.LogUniformBudget, ("low_exp", "high_exp")),
        (budgets.FixedBudget, ("value",)),
        (budgets.ChoiceBudget, ("values",)),
        (budgets.BudgetSampler, ("max_share", "none_share")),
        (rewards.lcpo_exact, ("alpha",)),
        (rewards.lcpo_max, ("alpha", "delta")),
        (rewards.dapo_overlong, ("cache_length",)),
        (rewards.cosine, ("correct_short", "correct_long", "wrong_short", "wrong_long", "exceed")),
        (losses.group_advantages, ("scale_std", "eps")),
        (losses.clipped_surrogate, ("clip_low", "clip_high")),
        (losses.aggregate, ("mode", "constant")),
        (losses.grpo_loss, ("clip_low", "clip_high", "kl_coef", "entropy_coef", "loss_agg", "loss_constant")),
        (HFEngine, ("batch_size",)),
        (BudgetForcingEngine, ("batch_size", "max_waits", "wait_text", "answer_cue", "answer_max_tokens",
                               "end_at_line")),
        (build_engine, ("seed",)),
        (load_pretrained, ("dtype", "attn_implementation")),
        (RolloutCollector, ("seed", "scale_std", "adv_eps", "samples_per_table")),
        (PromptDataModule, ("seed",)),
        (HFExport, ("every_n_steps", "dtype")),
        (SampleTable, ("every_n_steps",)),
    ]


def test_functions_below_the_config_take_its_knobs_without_defaults():
    """A default here would be a second copy of the schema's, free to drift from it."""
    defaults = [
        f"{fn.__qualname__}({name}={inspect.signature(fn).parameters[name].default!r})"
        for fn, names in _knobs() for name in names
        if inspect.signature(fn).parameters[name].default is not inspect.Parameter.empty
    ]
    assert not defaults, f"config-held knobs with defaults of their own: {defaults}"
