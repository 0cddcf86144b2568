"""The frozen reference in bf16 is still the starting policy: RoPE's buffers stay fp32, so the KL at step 0 is ~0."""

import copy

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from lcpo.models.reference import frozen_reference
from lcpo.training.update import response_logprobs

POSITIONS = 2048


def _policy() -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=POSITIONS,
                         initializer_range=0.3)  # large weights: a sharp, position-dependent distribution
    return Qwen2ForCausalLM(config).eval()


def _k3(policy: torch.nn.Module, reference: torch.nn.Module) -> float:
    """The mean k3 KL estimate of the loss over ``POSITIONS`` response tokens, both models under bf16 autocast."""
    ids = torch.randint(0, 128, (1, POSITIONS), generator=torch.Generator().manual_seed(1))
    ones = torch.ones_like(ids)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logp, _ = response_logprobs(policy, ids, ones, ones)
        ref_logp, _ = response_logprobs(reference, ids, ones, ones)
    delta = ref_logp - logp
    return float((delta.exp() - delta - 1).mean())


def test_bf16_reference_keeps_fp32_buffers_and_frozen_bf16_weights():
    policy = _policy()
    ref = frozen_reference(policy, torch.bfloat16)
    assert {b.dtype for b in ref.buffers()} == {torch.float32}
    assert {p.dtype for p in ref.parameters()} == {torch.bfloat16}
    assert not any(p.requires_grad for p in ref.parameters()) and not ref.training
    assert {p.dtype for p in policy.parameters()} == {torch.float32}  # the policy itself is left alone


def test_kl_at_step_zero_with_a_bf16_reference_is_near_zero_over_2k_positions():
    policy = _policy()
    kl = _k3(policy, frozen_reference(policy, torch.bfloat16))
    # casting the whole module (buffers included) puts the rotary phase off: the same weights, a different model
    cast_buffers = _k3(policy, copy.deepcopy(policy).to(torch.bfloat16))
    assert kl < 0.02 and cast_buffers > 10 * kl
