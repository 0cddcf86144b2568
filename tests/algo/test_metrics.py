"""Metrics: evaluation metrics on hand-made groups of completions, and the per-step rollout statistics of training."""

from __future__ import annotations

import math
from itertools import combinations

import pytest
import torch

from lcpo.algo import metrics


def test_accuracy_is_pass1_averaged_per_problem():
    correct = [[True, False, False, False], [True, True, True, True]]
    assert metrics.accuracy(correct) == pytest.approx((0.25 + 1.0) / 2)


@pytest.mark.parametrize("n,c,k", [(5, 2, 1), (5, 2, 2), (5, 2, 3), (6, 0, 2), (4, 4, 2), (16, 3, 8)])
def test_pass_at_k_matches_exhaustive_enumeration(n, c, k):
    flags = [True] * c + [False] * (n - c)
    subsets = list(combinations(flags, k))
    expected = sum(any(s) for s in subsets) / len(subsets)
    assert metrics.pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_edge_cases_and_mean():
    assert metrics.pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert metrics.pass_at_k(4, 3, 2) == 1.0  # fewer wrong samples than k: always a correct one
    assert metrics.mean_pass_at_k([[True, False], [False, False]], 2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        metrics.pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        metrics.pass_at_k(4, 5, 1)


def test_length_metrics():
    lengths = [80, 100, 120, 140]
    assert metrics.mean_tokens(lengths) == 110
    assert metrics.length_std(lengths) == pytest.approx(math.sqrt(500))
    assert metrics.rel_error(lengths, 100) == pytest.approx(0.1)  # signed: longer than asked is positive
    assert metrics.rel_error([50, 50], 100) == pytest.approx(-0.5)
    assert metrics.over_budget_share(lengths, 100) == 0.5  # exactly at the budget is not over it


def test_pearson():
    assert metrics.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert metrics.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(metrics.pearson([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError):
        metrics.pearson([1, 2], [1, 2, 3])


def test_group_metrics_of_one_cell():
    correct = [[True, False], [False, False]]
    lengths = [[90, 110], [100, 300]]
    got = metrics.group_metrics(correct, lengths, budget=100, k=2)
    assert got == pytest.approx(
        {"accuracy": 0.25, "pass_at_k": 0.5, "mean_tokens": 150.0, "length_std": got["length_std"],
         "rel_error": 0.5, "mean_abs_rel_error": 0.55, "over_budget_share": 0.5}
    )
    with pytest.raises(ValueError, match="same shape"):
        metrics.group_metrics(correct, [[1, 2], [3]], budget=100, k=1)
    with pytest.raises(ValueError):
        metrics.accuracy([])


def test_rollout_sums_bucket_by_quarter_of_the_budget_range_and_mode():
    import torch

    from lcpo.algo.metrics import finish_sums, rollout_sums

    # budgets 10 (q1), 40 (q2), 60 (q3), 100 (q4) of the range [0, 100]; modes exact, exact, max, max
    budgets = torch.tensor([10.0, 40.0, 60.0, 100.0])
    lengths = torch.tensor([20.0, 40.0, 90.0, 50.0])
    modes = torch.tensor([0, 0, 1, 1])
    correct = torch.tensor([1.0, 0.0, 1.0, 1.0])
    sums = rollout_sums(torch.tensor([1.0, 2.0, 3.0, 4.0]), correct, lengths, budgets, modes,
                        torch.tensor([False, False, True, False]), (0, 100))
    out = finish_sums(list(sums), torch.stack([torch.stack(v) for v in sums.values()]))
    assert out["bucket/exact/q1/rel_error"] == pytest.approx(1.0) and out["bucket/exact/q1/accuracy"] == 1.0
    assert out["bucket/exact/q2/abs_rel_error"] == 0.0 and out["bucket/exact/q2/accuracy"] == 0.0
    assert out["bucket/max/q3/over_budget_share"] == 1.0 and out["bucket/max/q3/rel_error"] == pytest.approx(0.5)
    assert out["bucket/max/q4/over_budget_share"] == 0.0 and out["bucket/max/q4/rel_error"] == pytest.approx(-0.5)
    assert "bucket/exact/q3/accuracy" not in out  # no sample there: no value rather than a made-up 0
    assert out["max/over_budget_share"] == 0.5 and out["rollout/truncated_share"] == 0.25
    assert out["reward/mean"] == 2.5 and out["reward/std"] == pytest.approx(math.sqrt(1.25))


def test_zero_signal_share_counts_groups_whose_rewards_are_all_equal():
    import torch

    from lcpo.algo.metrics import zero_signal_sums

    rewards = torch.tensor([0.0, 0.0, 0.0,  # every sample wrong: no signal
                            1.0, 0.0, 1.0,  # a correctness difference
                            0.5, 0.5, 0.5 + 1e-9,  # equal up to float noise: no signal
                            0.2, 0.2, 0.19])  # a small length difference is still a signal
    total, count = zero_signal_sums(rewards, group_size=3)["rollout/zero_signal_share"]
    assert (float(total), float(count)) == (2.0, 4.0)


def test_mean_abs_rel_error_shows_the_spread_the_signed_error_hides():
    assert metrics.rel_error([50, 150], 100) == 0.0
    assert metrics.mean_abs_rel_error([50, 150], 100) == pytest.approx(0.5)
    assert metrics.mean_abs_rel_error([100, 100], 100) == 0.0
    with pytest.raises(ValueError):
        metrics.mean_abs_rel_error([1], 0)


def test_length_metrics_prefix():
    got = metrics.length_metrics([80, 120, 160], 100, "thinking_")
    assert got == pytest.approx({"thinking_mean_tokens": 120.0, "thinking_rel_error": 0.2,
                                 "thinking_mean_abs_rel_error": (20 + 20 + 60) / 300,
                                 "thinking_over_budget_share": 2 / 3})


def test_accuracy_slope_per_doubling():
    # accuracy 0.2 at 256 tokens, 0.44 at 512, 0.68 at 1024: 0.24 per doubling (the paper's L1 slope)
    assert metrics.accuracy_slope([256, 512, 1024], [0.2, 0.44, 0.68]) == pytest.approx(0.24)
    assert math.isnan(metrics.accuracy_slope([300], [0.5]))
    assert math.isnan(metrics.accuracy_slope([300, 300], [0.5, 0.6]))


def test_budget_auc_is_the_mean_accuracy_over_the_budget_span():
    # trapezoids: (1024-512)*(0.2+0.4)/2 + (2048-1024)*(0.4+0.6)/2 = 153.6 + 512 = 665.6, over 1536
    assert metrics.budget_auc([2048, 512, 1024], [0.6, 0.2, 0.4]) == pytest.approx(665.6 / 1536)
    assert metrics.budget_auc([512], [0.3]) == pytest.approx(0.3)


def test_thinking_and_source_sums():
    thinking, lengths = torch.tensor([10.0, 30.0, 40.0]), torch.tensor([20.0, 30.0, 50.0])
    budgets, modes = torch.tensor([20.0, 20.0, 0.0]), torch.tensor([0, 1, 2])
    sums = metrics.thinking_sums(thinking, lengths, budgets, modes)
    means = {k: (s / c).item() for k, (s, c) in sums.items()}
    assert means == pytest.approx({"rollout/thinking_length": 80 / 3, "rollout/answer_length": 20 / 3,
                                   "rollout/thinking_abs_rel_error": (0.5 + 0.5) / 2})
    source, correct = torch.tensor([0, 1, 1]), torch.tensor([1.0, 0.0, 1.0])
    sums = metrics.source_sums(source, ["math", "gpqa", "lsat"], correct, lengths)
    assert sums["source/gpqa/accuracy"][0].item() == 1.0 and sums["source/gpqa/accuracy"][1].item() == 2.0
    assert sums["source/math/mean_length"][0].item() == 20.0 and sums["source/lsat/accuracy"][1].item() == 0.0
    assert metrics.source_sums(source, ["only"], correct, lengths) == {}
