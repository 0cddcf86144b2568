"""Shared test settings: offline hub, offline wandb, few threads (the suite runs on 2 cores)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

torch.set_num_threads(1)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

#: The smallest setting that still trains: a 2-layer 32-wide model, 4 prompts x 4 samples, short answers.
FAST_TRAIN = [
    "model=tiny",
    "model.tiny.hidden_size=32",
    "model.tiny.num_layers=2",
    "model.tiny.num_heads=2",
    "model.tiny.intermediate_size=64",
    "algo.group_size=4",
    "algo.prompts_per_step=4",
    "algo.mini_batch_prompts=2",
    "algo.micro_batch_tokens=1024",
    "rollout.max_new_tokens=32",
    "trainer.progress_bar=false",
    "trainer.num_threads=1",
    "logger=csv",
]


@pytest.fixture
def compose_train():
    """Composes ``conf/train.yaml`` with overrides and validates it, as ``python -m lcpo.train`` would."""
    from lcpo.config import compose_config, validate

    def _compose(*overrides: str, output_dir: Path, fast: bool = True):
        return validate(
            compose_config("train", [*(FAST_TRAIN if fast else []), *overrides, f"output_dir={output_dir}"])
        )

    return _compose


@pytest.fixture
def prompt_stream():
    """A factory of small synthetic prompt streams (3 prompts a step, budgets 10-40, half of them max mode)."""
    from lcpo.algo.budgets import BudgetSampler, UniformBudget
    from lcpo.config import PromptConfig, SyntheticTaskConfig
    from lcpo.training.datamodule import PromptStream
    from lcpo.tasks.prompts import PromptBuilder
    from lcpo.tasks.synthetic import SyntheticTask
    from lcpo.models.tiny import build_tokenizer

    def _stream(seed: int = 0, rank: int = 0, start: int = 0) -> PromptStream:
        config = PromptConfig(instruction="", use_chat_template=False, response_prefix="<think>")
        return PromptStream(
            SyntheticTask(SyntheticTaskConfig()), BudgetSampler(UniformBudget(10, 40), max_share=0.5, none_share=0.0),
            PromptBuilder(config, build_tokenizer()), 3, seed=seed, rank=rank, start_step=lambda: start,
        )

    return _stream


#: The stand-in for vLLM's offline API (``tests/fakes/vllm``); subprocesses get it through PYTHONPATH.
FAKES = Path(__file__).resolve().parent / "fakes"


@pytest.fixture
def fake_vllm(monkeypatch):
    """Makes ``import vllm`` load the fake, with an empty call log."""
    import sys

    monkeypatch.syspath_prepend(str(FAKES))
    sys.modules.pop("vllm", None)
    import vllm

    vllm.CALLS.clear()
    vllm.ENGINES.clear()
    yield vllm
    sys.modules.pop("vllm", None)


#: Overrides for Hydra entry points called in-process: Hydra leaves logging alone (its handlers would hold on to
#: pytest's captured streams after the test).
HYDRA_IN_PROCESS = ["hydra/job_logging=none", "hydra/hydra_logging=none"]


@pytest.fixture
def hydra_main(monkeypatch, capsys):
    """Runs a ``@hydra.main`` entry point in this process with command-line ``args``; returns (exit code, stderr)."""
    import sys

    def _call(main, *args: str) -> tuple[int, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["lcpo", *args, *HYDRA_IN_PROCESS])
        try:
            main()
            code = 0
        except SystemExit as exit_info:
            code = exit_info.code
        return code, capsys.readouterr().err

    return _call
