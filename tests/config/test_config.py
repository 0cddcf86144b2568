import logging

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError


@pytest.mark.parametrize(
    "override,key",
    [
        ("reward.alpha=-0.1", "reward.alpha"),
        ("budget.low=500", "budget.low"),  # with budget.high=100 below
        ("algo.group_size=1", "algo.group_size"),
        ("algo.loss_agg=median", "algo.loss_agg"),
        ("algo.prompts_per_step=5", "algo.prompts_per_step"),
        ("budget.max_share=0.7 budget.none_share=0.6", "budget.max_share"),
        ("rollout.top_p=0", "rollout.top_p"),
        ("logger.wandb_mode=sometimes", "logger.wandb_mode"),
        ("algo.tis_cap=0.5 rollout=vllm", "algo.tis_cap"),
        ("algo.tis_cap=2.0", "algo.tis_cap"),  # needs an engine with sampling log-probs
        ("rollout=vllm rollout.vllm.max_prompt_tokens=0", "rollout.vllm.max_prompt_tokens"),
        ("rollout=vllm rollout.vllm.dtype=float64", "rollout.vllm.dtype"),
        ("rollout.vllm.gpu_memory_utilization=1.5", "rollout.vllm.gpu_memory_utilization"),
        ("rollout.forcing.max_waits=-1", "rollout.forcing.max_waits"),
        ("rollout.forcing.answer_max_tokens=0", "rollout.forcing.answer_max_tokens"),
        ("algo.micro_batch_tokens=0", "algo.micro_batch_tokens"),
        ("algo.logit_chunk_mb=0", "algo.logit_chunk_mb"),
        ("task.sampling=bootstrap", "task.sampling"),
        ("reward.overlong_ratio=0", "reward.overlong_ratio"),
    ],
)
def test_bad_values_name_the_key(compose_train, tmp_path, override, key):
    overrides = override.split()
    if key == "budget.low":
        overrides = ["budget.low=500", "budget.high=100"]
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        compose_train(*overrides, output_dir=tmp_path)


def test_unknown_group_option_and_key(compose_train, tmp_path):
    with pytest.raises(ConfigCompositionException, match="reward"):
        compose_train("reward=nonsense", output_dir=tmp_path)
    with pytest.raises(ConfigCompositionException):
        compose_train("reward.alhpa=0.1", output_dir=tmp_path)
    with pytest.raises((ValidationError, ConfigCompositionException)):
        compose_train("reward.alpha=abc", output_dir=tmp_path)


@pytest.mark.parametrize("moved", ["max_prompt_tokens=8", "dtype=float32", "answer_cue=x", "end_at_line=true"])
def test_engine_knobs_live_in_their_section_only(compose_train, tmp_path, moved):
    """An engine's knob at the top of ``rollout`` (where it used to be) is refused, not silently ignored."""
    with pytest.raises(ConfigCompositionException):
        compose_train(f"rollout.{moved}", output_dir=tmp_path)


def test_each_engine_choice_reads_its_own_section():
    from omegaconf import OmegaConf

    from lcpo.config import RolloutConfig, compose_config

    def rollout(*overrides: str) -> RolloutConfig:
        return OmegaConf.to_object(compose_config("evaluate", ["models=[m]", *overrides]).rollout)

    forced = rollout("rollout=budget_forcing", "rollout.forcing.max_waits=3")
    assert (forced.name, forced.forcing.max_waits, forced.forcing.answer_max_tokens) == ("budget_forcing", 3, 20)
    vllm = rollout("rollout=vllm", "rollout.vllm.tensor_parallel_size=2")
    assert (vllm.name, vllm.vllm.tensor_parallel_size, vllm.vllm.max_prompt_tokens) == ("vllm", 2, 1024)
    assert rollout().name == "hf"


def test_missing_model_path(compose_train, tmp_path):
    with pytest.raises(ValueError, match="model.path"):
        compose_train("model=hf", f"model.path={tmp_path / 'nowhere'}", output_dir=tmp_path)


def test_small_generation_cap_warns(compose_train, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        compose_train("budget.low=10", "budget.high=100", "rollout.max_new_tokens=50", output_dir=tmp_path)
    assert "max_new_tokens" in caplog.text


@pytest.mark.parametrize("choice", ["exact", "max", "mixed", "correctness", "dapo", "kimi", "cosine"])
def test_every_reward_choice_composes(compose_train, tmp_path, choice):
    assert compose_train(f"reward={choice}", output_dir=tmp_path).reward.name == choice


@pytest.mark.parametrize("choice", ["uniform", "loguniform", "fixed", "choice", "narrow", "l1_max"])
def test_every_budget_choice_composes(compose_train, tmp_path, choice):
    compose_train(f"budget={choice}", output_dir=tmp_path)


def test_paper_experiments_compose(compose_train, tmp_path):
    data = tmp_path / "train.parquet"  # the schema checks it exists and is a parquet file; loading comes later
    data.touch()
    exact = compose_train("experiment=l1_exact", f"model.path={tmp_path}", f"task.path={data}", output_dir=tmp_path, fast=False)
    assert (exact.algo.lr, exact.trainer.max_steps, exact.reward.name) == (1e-6, 700, "exact")
    mx = compose_train("experiment=l1_max", f"model.path={tmp_path}", f"task.path={data}", output_dir=tmp_path, fast=False)
    assert (mx.algo.lr, mx.trainer.max_steps, mx.reward.name, mx.budget.max_share) == (4e-6, 120, "mixed", 0.5)
    assert mx.rollout.max_new_tokens == 4500


def test_demo_experiment_composes_with_a_model_folder(compose_train, tmp_path):
    cfg = compose_train("experiment=demo", "model=hf", f"model.path={tmp_path}", output_dir=tmp_path, fast=False)
    assert (cfg.model.name, cfg.model.dtype, cfg.model.gradient_checkpointing) == ("hf", "float32", False)
    assert (cfg.reward.name, cfg.budget.max_share, cfg.prompt.use_chat_template) == ("exact", 0.0, False)
    assert len(cfg.eval.budgets) == 8 and cfg.eval.problems >= 64 and cfg.eval.samples >= 4
    stage2 = compose_train("experiment=demo_max", "model=hf", f"model.path={tmp_path}", output_dir=tmp_path, fast=False)
    assert (stage2.reward.name, stage2.budget.max_share, stage2.reward.alpha) == ("mixed", 1.0, cfg.reward.alpha)
    assert stage2.eval == cfg.eval and (cfg.algo.kl_coef, cfg.algo.scale_std) == (0.1, True)
    assert (stage2.algo.kl_coef, stage2.algo.scale_std) == (0.001, False)  # the paper's KL; no std division


def test_bare_run_is_the_cpu_recipe_from_the_demo_model_and_refused_without_it(tmp_path, monkeypatch):
    from lcpo.config import compose_config, validate

    monkeypatch.chdir(tmp_path)  # model=auto looks for outputs/demo/base relative to where it runs
    with pytest.raises(ValueError, match="model=auto: no warm-started model .*make demo.*model=tiny"):
        validate(compose_config("train", [f"output_dir={tmp_path / 'run'}"]))
    (tmp_path / "outputs" / "demo" / "base").mkdir(parents=True)
    (tmp_path / "outputs" / "demo" / "base" / "config.json").write_text("{}")
    cfg = validate(compose_config("train", [f"output_dir={tmp_path / 'run'}"]))
    assert cfg.model.name == "hf" and cfg.model.path == "outputs/demo/base"
    assert (cfg.algo.prompts_per_step, cfg.algo.group_size, cfg.rollout.max_new_tokens) == (16, 8, 160)
    assert (cfg.rollout.forcing.end_at_line, cfg.rollout.forcing.wait_text) == (True, "?")  # the demo's s1 knobs


@pytest.mark.parametrize("choice", ["auto", "hf", "tiny"])
def test_a_model_path_that_is_not_there_is_refused_under_every_choice(compose_train, tmp_path, choice):
    with pytest.raises(ValueError, match="nope"):
        compose_train(f"model={choice}", f"model.path={tmp_path / 'nope'}", output_dir=tmp_path)


@pytest.mark.parametrize("sweep", ["alpha", "reward", "budget"])
def test_each_sweep_has_a_cpu_default_and_a_paper_scale_variant(compose_train, tmp_path, sweep):
    cpu = compose_train(f"+sweep={sweep}", "model=tiny", output_dir=tmp_path, fast=False)
    assert cpu.eval_at_end and cpu.rollout.max_new_tokens == 160 and cpu.trainer.max_steps <= 100
    data = tmp_path / "train.parquet"
    data.touch()
    gpu = compose_train(f"+sweep={sweep}_l1", f"model.path={tmp_path}", f"task.path={data}", output_dir=tmp_path,
                        fast=False)
    assert gpu.eval_at_end and (gpu.algo.lr, gpu.trainer.max_steps, gpu.rollout.name) == (1e-6, 700, "vllm")
    assert gpu.logger.group == f"sweep-{sweep}_l1"


def test_precision_follows_the_compute_dtype(compose_train, tmp_path):
    assert compose_train(output_dir=tmp_path).trainer.precision == "32-true"
    assert compose_train("model.dtype=bfloat16", output_dir=tmp_path).trainer.precision == "bf16-mixed"
    data = tmp_path / "train.parquet"
    data.touch()
    exact = compose_train("experiment=l1_exact", f"model.path={tmp_path}", f"task.path={data}", output_dir=tmp_path,
                          fast=False)
    # the paper recipe: fp32 master weights (always), bf16 autocast, bf16 exports and vLLM copy
    assert (exact.model.dtype, exact.trainer.precision, exact.model.exports_in) == ("bfloat16", "bf16-mixed",
                                                                                      "bfloat16")
    assert exact.rollout.vllm.dtype == "bfloat16"
    assert compose_train("model.export_dtype=float32", output_dir=tmp_path).model.exports_in == "float32"
    with pytest.raises(ValueError, match=r"trainer\.precision=bf16-mixed disagrees with model\.dtype=float32"):
        compose_train("trainer.precision=bf16-mixed", output_dir=tmp_path)
    with pytest.raises(ValueError, match=r"model\.dtype=float16"):
        compose_train("model.dtype=float16", output_dir=tmp_path)
    with pytest.raises(ValueError, match=r"model\.export_dtype"):
        compose_train("model.export_dtype=int8", output_dir=tmp_path)
