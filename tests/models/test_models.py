"""Precision: the policy loads in fp32 whatever its folder holds, trains fp32 masters under bf16 autocast, and
exports in the dtype asked for, whole or not at all."""

import json

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from lcpo.config import ModelConfig, TinyModelConfig
from lcpo.models.load import load_policy, save_policy
from lcpo.models.tiny import build_tiny
from lcpo.cli.train import run

SMALL = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)


def _dtypes(folder) -> set[str]:
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return {str(f.get_slice(k).get_dtype()) for k in f.keys()}


@pytest.fixture
def bf16_folder(tmp_path):
    """A tiny model saved in bfloat16: its config says bfloat16, like a hub checkpoint."""
    model, tokenizer = build_tiny(SMALL)
    return save_policy(model, tokenizer, tmp_path / "bf16", "bfloat16")


def test_save_policy_casts_a_copy_and_keeps_ties(bf16_folder, tmp_path):
    assert json.loads((bf16_folder / "config.json").read_text())["dtype"] == "bfloat16"
    assert _dtypes(bf16_folder) == {"BF16"}
    model, tokenizer = build_tiny(SMALL)
    save_policy(model, tokenizer, tmp_path / "fp32", "float32")
    assert next(model.parameters()).dtype == torch.float32  # the live model is untouched
    reloaded = AutoModelForCausalLM.from_pretrained(bf16_folder, local_files_only=True)
    assert reloaded.dtype == torch.bfloat16 and reloaded.lm_head.weight is reloaded.model.embed_tokens.weight
    torch.testing.assert_close(reloaded.lm_head.weight.float(), model.lm_head.weight.bfloat16().float())


def test_an_export_that_fails_leaves_the_previous_one_whole(bf16_folder, monkeypatch):
    before = (bf16_folder / "model.safetensors").read_bytes()
    model, tokenizer = build_tiny(SMALL)
    torch.nn.init.ones_(model.lm_head.weight)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(tokenizer, "save_pretrained", full_disk)  # the last file of an export
        with pytest.raises(OSError):
            save_policy(model, tokenizer, bf16_folder, "bfloat16")
    assert (bf16_folder / "model.safetensors").read_bytes() == before
    save_policy(model, tokenizer, bf16_folder, "bfloat16")  # the next export replaces it, leftovers and all
    assert (bf16_folder / "model.safetensors").read_bytes() != before
    assert sorted(p.name for p in bf16_folder.parent.iterdir()) == ["bf16"]
    reloaded = AutoModelForCausalLM.from_pretrained(bf16_folder, local_files_only=True)
    assert torch.all(reloaded.lm_head.weight == 1)


def test_policy_loads_fp32_whatever_the_compute_dtype(bf16_folder):
    policy, _ = load_policy(ModelConfig(name="hf", path=str(bf16_folder), dtype="bfloat16"))
    assert {p.dtype for p in policy.parameters()} == {torch.float32}
    tiny, _ = load_policy(ModelConfig(name="tiny", tiny=SMALL, dtype="bfloat16"))
    assert {p.dtype for p in tiny.parameters()} == {torch.float32}


@pytest.mark.slow
def test_one_step_at_paper_lr_moves_fp32_masters_under_bf16(compose_train, bf16_folder, tmp_path):
    """lr 1e-6 moves a weight by ~1e-6, far below a bf16 rounding step: only fp32 masters keep the update."""
    cfg = compose_train(
        "model=hf", f"model.path={bf16_folder}", "model.dtype=bfloat16", "model.gradient_checkpointing=false",
        "algo.lr=1e-6", "algo.mini_batch_prompts=4", "algo.kl_coef=0.001", "trainer.max_steps=1",
        output_dir=tmp_path / "run",
    )
    assert cfg.trainer.precision == "bf16-mixed" and cfg.model.exports_in == "bfloat16"
    run(cfg)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    start, _ = load_policy(ModelConfig(name="hf", path=str(bf16_folder)))
    before = start.state_dict()
    after = {k.removeprefix("policy."): v for k, v in ckpt["state_dict"].items()}
    changed = total = 0
    for key, value in before.items():
        assert after[key].dtype == torch.float32, key
        changed += int((after[key] != value).sum())
        total += value.numel()
    assert changed >= 0.9 * total, f"only {changed / total:.1%} of the parameters moved"
    states = ckpt["optimizer_states"][0]["state"].values()
    assert states and all(s["exp_avg"].dtype == s["exp_avg_sq"].dtype == torch.float32 for s in states)
    assert _dtypes(tmp_path / "run" / "model") == {"BF16"}  # exported in the compute dtype by default
