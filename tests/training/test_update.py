"""The update on a rollout batch: response-only log-probs equal the full model's, gradient accumulation over
token-sized micro-batches equals one big batch, and the old-log-prob pass runs only where the policy has moved."""

import copy
import random
from dataclasses import replace

import pytest
import torch

from lcpo.algo.batching import pack
from lcpo.training.collector import RolloutBatch
from lcpo.config import AlgoConfig, TinyModelConfig
from lcpo.models.tiny import build_tiny
from lcpo.training.update import UpdateHooks, ppo_update, response_logprobs

TINY = TinyModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)


def _policy() -> torch.nn.Module:
    model, _ = build_tiny(TINY)
    return model.train()


def _batch(groups: int = 4, group_size: int = 4, seed: int = 0) -> RolloutBatch:
    """Random prompts and responses of varied length, with random advantages, as the collector packs them."""
    rng = random.Random(seed)
    pairs = [([rng.randrange(4, 100) for _ in range(rng.randint(3, 8))],
              [rng.randrange(4, 100) for _ in range(rng.randint(1, 30))]) for _ in range(groups * group_size)]
    ids, attn, resp = pack(pairs, pad_id=0)
    n = len(pairs)
    gen = torch.Generator().manual_seed(seed)
    return RolloutBatch(
        input_ids=ids, attention_mask=attn, response_mask=resp, rewards=torch.zeros(n),
        advantages=torch.randn(n, generator=gen), correct=torch.zeros(n), lengths=resp.sum(-1).float(),
        budgets=torch.zeros(n), modes=torch.zeros(n, dtype=torch.long), truncated=torch.zeros(n, dtype=torch.bool),
        group=torch.arange(groups).repeat_interleave(group_size), rollout_seconds=0.0,
    )


def _algo(**overrides) -> AlgoConfig:
    base = AlgoConfig(group_size=4, prompts_per_step=4, mini_batch_prompts=4, micro_batch_tokens=10_000,
                      kl_coef=0.05, entropy_coef=0.01, lr=0.1, grad_clip=0.0)
    return replace(base, **overrides)


def test_response_logprobs_equal_the_full_logits_at_response_positions():
    policy, rb = _policy(), _batch()
    temperature = 0.8
    logp, entropy = response_logprobs(policy, rb.input_ids, rb.attention_mask, rb.response_mask, temperature, 0.001)
    (logp.sum() + 0.5 * entropy.sum()).backward()
    chunked_grads = {k: p.grad.clone() for k, p in policy.named_parameters()}
    policy.zero_grad()

    logq = torch.log_softmax(policy(input_ids=rb.input_ids, attention_mask=rb.attention_mask).logits[:, :-1]
                             / temperature, dim=-1)
    mask = rb.response_mask[:, 1:].float()
    full_logp = logq.gather(-1, rb.input_ids[:, 1:, None])[..., 0] * mask
    full_entropy = -(logq.exp() * logq).sum(-1) * mask
    (full_logp.sum() + 0.5 * full_entropy.sum()).backward()

    torch.testing.assert_close(logp, full_logp, atol=1e-5, rtol=0)
    torch.testing.assert_close(entropy, full_entropy, atol=1e-5, rtol=0)
    for key, p in policy.named_parameters():
        torch.testing.assert_close(chunked_grads[key], p.grad, atol=1e-5, rtol=1e-4, msg=key)


def _run(algo: AlgoConfig, policy=None, rb=None):
    policy = policy or _policy()
    ref = copy.deepcopy(policy).eval().requires_grad_(False) if algo.kl_coef > 0 else None
    opt = torch.optim.SGD(policy.parameters(), lr=algo.lr)
    stats = ppo_update(policy, ref, rb or _batch(), algo, opt)
    return policy, stats


@pytest.mark.parametrize("loss_agg", ["token_mean", "seq_mean", "constant"])
def test_micro_batches_accumulate_to_one_big_batch(loss_agg):
    algo = _algo(loss_agg=loss_agg, loss_constant=32.0)
    one, one_stats = _run(algo)
    many, many_stats = _run(replace(algo, micro_batch_tokens=60))
    assert len(many_stats["loss"]) > 3 * len(one_stats["loss"])  # several micro-batches per optimiser step
    for (key, a), b in zip(one.named_parameters(), many.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=key)
    assert sum(many_stats["loss"]).item() == pytest.approx(one_stats["loss"][0].item(), abs=1e-5)


def test_gradients_are_reduced_once_per_optimiser_step():
    """``backward`` is told to sync on each mini-batch's last micro-batch only (data-parallel ranks reduce the
    accumulated gradient once per optimiser step, not once per micro-batch)."""
    algo = _algo(mini_batch_prompts=2, micro_batch_tokens=60)
    policy = _policy()
    syncs: list[bool] = []

    class Recorder(UpdateHooks):
        def backward(self, loss, sync):
            syncs.append(sync)
            loss.backward()

    opt = torch.optim.SGD(policy.parameters(), lr=algo.lr)
    ppo_update(policy, None, _batch(), replace(algo, kl_coef=0.0), opt, Recorder())
    steps = [i for i, sync in enumerate(syncs) if sync]
    assert len(steps) == 2 and steps[-1] == len(syncs) - 1  # two mini-batches, each closed by one sync
    assert len(syncs) > 2 * len(steps)  # several micro-batches before each


def _count_decoder_calls(policy) -> list[int]:
    calls = [0]
    policy.base_model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_one_epoch_one_mini_batch_needs_no_old_logprob_pass():
    policy = _policy()
    calls = _count_decoder_calls(policy)
    _, stats = _run(_algo(kl_coef=0.0), policy)
    assert calls[0] == 1  # the training forward only
    assert all(r.item() == pytest.approx(1.0) for r in stats["ratio"])


def test_later_mini_batches_and_epochs_use_the_sampling_policys_logprobs():
    """Two mini-batches, two epochs: every row needs the sampling policy's log-probs computed before the first
    step, except the first mini-batch's in the first epoch (the policy has not moved yet)."""
    rb = _batch()
    algo = _algo(kl_coef=0.0, mini_batch_prompts=2, ppo_epochs=2)
    policy = _policy()
    calls = _count_decoder_calls(policy)
    _, stats = _run(algo, policy, rb)
    assert calls[0] == 1 + 4  # one frozen pass over every row, then four optimiser steps
    assert stats["ratio"][0].item() == pytest.approx(1.0)
    assert any(abs(r.item() - 1.0) > 1e-4 for r in stats["ratio"][1:])  # the policy moved between steps

    one_epoch = _count_decoder_calls(start := _policy())
    _run(replace(algo, ppo_epochs=1), start, rb)
    assert one_epoch[0] == 1 + 2  # only the second mini-batch's rows need the frozen pass


def test_every_rank_runs_the_micro_batch_count_they_agree_on():
    """A rank whose rows fit in fewer micro-batches runs as many as the rank that needs the most (``agree`` is the
    maximum over ranks), in the old-log-prob and reference passes and in the update (under FSDP each forward
    gathers shards), and the step is unchanged by the split."""
    rb, algo = _batch(), _algo(kl_coef=0.0, mini_batch_prompts=2, ppo_epochs=2, micro_batch_tokens=10_000)
    asked: list[int] = []

    class TwoMore(UpdateHooks):
        def all_max(self, count: int) -> int:
            asked.append(count)
            return count + 2

    policy = _policy()
    calls = _count_decoder_calls(policy)
    opt = torch.optim.SGD(policy.parameters(), lr=algo.lr)
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    stats = ppo_update(policy, ref, rb, replace(algo, kl_coef=0.05), opt, TwoMore())
    assert asked == [1] * 6  # the old and reference passes and four optimiser steps, each one micro-batch locally
    assert calls[0] == 3 + 3 + 4 * 3 and len(stats["loss"]) == 4 * 3  # the copied hook counts the reference's too
    alone, _ = _run(replace(algo, kl_coef=0.05), rb=rb)
    for (key, a), b in zip(alone.named_parameters(), policy.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=key)


def test_tokens_out_of_the_policy_mask_get_no_policy_gradient_but_keep_the_kl_term():
    """A policy mask of zeros leaves only the KL term: no gradient at all without it, the KL run's with it."""
    rb = _batch()
    silent = replace(rb, policy_mask=torch.zeros_like(rb.response_mask))
    _, stats = _run(_algo(kl_coef=0.0, entropy_coef=0.0), rb=silent)
    assert all(norm.item() == 0 for norm in stats["grad_norm"])
    _, open_stats = _run(_algo(kl_coef=0.0, entropy_coef=0.0), rb=rb)
    assert all(norm.item() > 0 for norm in open_stats["grad_norm"])
    policy = _policy()
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    opt = torch.optim.SGD(policy.parameters(), lr=0.1)
    kl_stats = ppo_update(policy, ref, silent, _algo(kl_coef=0.5, entropy_coef=0.0), opt)
    assert kl_stats["grad_norm"][0].item() > 0 and kl_stats["kl"][0].item() > 0
