import math

import pytest
import torch

from lcpo.algo.losses import (
    aggregate,
    clipped_surrogate,
    global_token_normaliser,
    grpo_loss,
    group_advantages,
    kl_k3,
    mismatch_sums,
    tis_weights,
)

#: The loss shape every test below shares: PPO clip 0.2 both ways, token mean (the terms a test varies are its own).
SHAPE = dict(clip_low=0.2, clip_high=0.2, loss_agg="token_mean", loss_constant=None)


def test_group_advantages_hand_computed():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    adv = group_advantages(r, scale_std=True, eps=1e-6)
    std = torch.tensor([1.0, 0.0, 0.0, 1.0]).std(unbiased=True)  # 0.57735
    assert torch.allclose(adv[0], torch.tensor([0.5, -0.5, -0.5, 0.5]) / (std + 1e-6))
    assert torch.equal(adv[1], torch.zeros(4))  # no signal in a uniform group
    assert torch.allclose(group_advantages(r, scale_std=False, eps=1e-6)[0], torch.tensor([0.5, -0.5, -0.5, 0.5]))
    with pytest.raises(ValueError):
        group_advantages(torch.ones(4), scale_std=True, eps=1e-6)
    with pytest.raises(ValueError):
        group_advantages(torch.ones(3, 1), scale_std=True, eps=1e-6)


def test_clipped_surrogate_branches():
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.5, 0.5]]))  # ratios
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    loss, clipped = clipped_surrogate(logp, old, adv, 0.2, 0.2)
    # A>0, ratio 1.5: clipped to 1.2 -> -1.2 ; A>0, ratio 0.5: unclipped -0.5 (min picks the smaller objective)
    # A<0, ratio 1.5: unclipped 1.5 ; A<0, ratio 0.5: clipped to 0.8 -> 0.8
    assert torch.allclose(loss, torch.tensor([[-1.2, -0.5, 1.5, 0.8]]))
    assert clipped.tolist() == [[True, False, False, True]]
    loss_hi, _ = clipped_surrogate(logp, old, adv, 0.2, 0.28)
    assert loss_hi[0, 0] == pytest.approx(-1.28)


def test_kl_k3_value():
    logp = torch.tensor([math.log(0.5)])
    ref = torch.tensor([math.log(0.25)])
    expected = 0.5 - math.log(0.5) - 1  # r = ref/p = 0.5: r - log r - 1
    assert kl_k3(logp, ref).item() == pytest.approx(expected)
    assert kl_k3(ref, ref).item() == 0.0
    assert kl_k3(torch.tensor([0.0]), torch.tensor([50.0])).item() == 10.0  # clamped


def test_aggregations():
    v = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert aggregate(v, m, "token_mean", None).item() == pytest.approx(10 / 4)
    assert aggregate(v, m, "seq_mean", None).item() == pytest.approx((2 + 4) / 2)
    assert aggregate(v, m, "constant", 5).item() == pytest.approx(10 / (2 * 5))
    assert aggregate(v, m, "token_mean", None, num_tokens=8).item() == pytest.approx(10 / 8)
    with pytest.raises(ValueError):
        aggregate(v, m, "constant", None)
    with pytest.raises(ValueError):
        aggregate(v, m, "median", None)


def test_grpo_loss_gradient_direction():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, requires_grad=True)
    labels = torch.tensor([[1, 2, 3], [0, 4, 4]])

    def logp_of(z):
        return torch.log_softmax(z, -1).gather(-1, labels[..., None])[..., 0]

    lp = logp_of(logits)
    entropy = torch.zeros(2, 3)
    mask = torch.ones(2, 3)
    out = grpo_loss(lp, entropy, mask, lp.detach(), torch.tensor([1.0, -1.0]), kl_coef=0.0, entropy_coef=0.0,
                    **SHAPE)
    out.loss.backward()
    # at ratio 1 the loss is -mean(A): a descent step raises log-probs of the positive row, lowers the negative
    assert out.loss.item() == pytest.approx(0.0, abs=1e-6)
    new_lp = logp_of(logits.detach() - 0.1 * logits.grad)
    assert (new_lp[0] > lp[0]).all() and (new_lp[1] < lp[1]).all()
    assert out.clip_fraction.item() == 0.0 and out.ratio.item() == pytest.approx(1.0)


def test_tis_weights_are_the_capped_ratio_without_gradient():
    old = torch.tensor([[0.0, -1.0, -2.0]], requires_grad=True)
    rollout = torch.tensor([[0.0, -2.0, -0.5]])
    w = tis_weights(old, rollout, cap=2.0)
    assert torch.allclose(w, torch.tensor([[1.0, 2.0, math.exp(-1.5)]])) and not w.requires_grad


def test_tis_weight_scales_only_the_policy_gradient_term():
    logp, entropy = torch.log_softmax(torch.randn(1, 3, 5), -1)[..., 1], torch.zeros(1, 3)
    mask, old, adv = torch.ones(1, 3), torch.full((1, 3), -1.6), torch.tensor([1.0])
    plain = grpo_loss(logp, entropy, mask, old, adv, kl_coef=0, entropy_coef=0, **SHAPE)
    doubled = grpo_loss(logp, entropy, mask, old, adv, kl_coef=0, entropy_coef=0, pg_weight=torch.full((1, 3), 2.0),
                        **SHAPE)
    assert torch.allclose(doubled.loss, 2 * plain.loss)


def test_mismatch_sums_are_abs_delta_k3_and_count_over_the_mask():
    trainer = torch.tensor([[-1.0, -2.0, -3.0]])
    rollout = torch.tensor([[-1.5, -2.0, -9.0]])
    mask = torch.tensor([[1, 1, 0]])
    abs_sum, k3_sum, count = mismatch_sums(trainer, rollout, mask).tolist()
    r = math.exp(0.5)  # pi_trainer / pi_rollout on the first token
    assert abs_sum == pytest.approx(0.5) and count == 2 and k3_sum == pytest.approx(r - 1 - 0.5)


def test_global_token_normaliser_gives_the_global_token_mean_under_rank_averaging():
    # two ranks with 1 and 3 tokens: DDP averages the ranks' gradients, i.e. their losses
    values = [torch.tensor([4.0]), torch.tensor([1.0, 1.0, 1.0])]
    normaliser = global_token_normaliser(torch.tensor(4), world_size=2)
    averaged = sum(v.sum() / normaliser for v in values) / 2
    assert averaged == pytest.approx(7.0 / 4)  # the mean over all four tokens
    per_rank = sum(v.mean() for v in values) / 2
    assert per_rank == pytest.approx(2.5)  # what normalising by the local count gives instead


def test_grpo_loss_kl_and_entropy_terms():
    logp = torch.log(torch.tensor([[0.5, 0.25]]))
    ref = torch.log(torch.tensor([[0.25, 0.25]]))
    entropy = torch.tensor([[1.0, 3.0]])
    mask = torch.tensor([[1, 1]])
    plain = grpo_loss(logp, entropy, mask, logp, torch.zeros(1), ref, kl_coef=0.0, entropy_coef=0.0, **SHAPE).loss
    with_kl = grpo_loss(logp, entropy, mask, logp, torch.zeros(1), ref, kl_coef=0.5, entropy_coef=0.0, **SHAPE)
    with_ent = grpo_loss(logp, entropy, mask, logp, torch.zeros(1), ref, kl_coef=0.0, entropy_coef=0.1, **SHAPE).loss
    k3 = (0.5 - math.log(0.5) - 1 + 0.0) / 2  # token mean of k3 over the two tokens (the second has ratio 1)
    assert with_kl.loss.item() == pytest.approx(plain.item() + 0.5 * k3)
    assert with_kl.kl.item() == pytest.approx(k3) and with_kl.entropy.item() == pytest.approx(2.0)
    assert with_ent.item() == pytest.approx(plain.item() - 0.1 * 2.0)
