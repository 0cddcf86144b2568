"""Packing rows right-padded, prompts left-padded, and micro-batches bounded in padded tokens with rows of similar length together."""

import pytest
import torch

from lcpo.algo.batching import left_pad, micro_batches, pack


def test_pack_right_pads_with_masks():
    ids, attn, resp = pack([([1, 2], [3]), ([4], [5, 6, 7])], pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 0], [4, 5, 6, 7]]
    assert attn.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert resp.tolist() == [[0, 0, 1, 0], [0, 1, 1, 1]]


def test_left_pad_puts_every_rows_last_token_in_the_last_column():
    ids, mask = left_pad([[1, 2], [3, 4, 5], (6,)], pad_id=0)
    assert ids.tolist() == [[0, 1, 2], [3, 4, 5], [0, 0, 6]]
    assert mask.tolist() == [[0, 1, 1], [1, 1, 1], [0, 0, 1]]


def test_micro_batches_sort_by_length_and_respect_the_budget():
    lengths = [10, 100, 12, 95, 11, 300]
    batches = micro_batches(lengths, max_tokens=200)
    assert sorted(i for b in batches for i in b) == list(range(6))  # every row exactly once
    assert batches == [[5], [1, 3], [2, 4, 0]]  # longest first; 300 > budget goes alone
    for b in batches[1:]:
        assert len(b) * max(lengths[i] for i in b) <= 200
    assert micro_batches(lengths, max_tokens=10_000) == [[5, 1, 3, 2, 4, 0]]
    assert micro_batches([], 10) == []
    with pytest.raises(ValueError, match="algo.micro_batch_tokens"):
        micro_batches(lengths, 0)


def test_sorted_micro_batches_cut_padding():
    lengths = torch.randint(20, 200, (64,), generator=torch.Generator().manual_seed(0)).tolist()
    padded = sum(len(b) * max(lengths[i] for i in b) for b in micro_batches(lengths, 1600))
    in_order = sum(8 * max(lengths[i : i + 8]) for i in range(0, 64, 8))  # 8 rows of any length per micro-batch
    assert padded < 0.8 * in_order and padded >= sum(lengths)


@pytest.mark.parametrize("min_count", [1, 2, 3, 6])
def test_micro_batches_split_to_the_count_every_rank_agrees_on(min_count):
    lengths = [50, 300, 120, 80, 200, 310]
    batches = micro_batches(lengths, max_tokens=10_000, min_count=min_count)
    assert len(batches) == min_count
    assert sorted(i for b in batches for i in b) == list(range(6))  # every row once
    assert all(b for b in batches)
    with pytest.raises(ValueError, match="7 micro-batches"):
        micro_batches(lengths, 10_000, min_count=7)
