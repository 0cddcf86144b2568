import torch

from lcpo.training.collector import RolloutCollector
from lcpo.config import RewardConfig, TinyModelConfig
from lcpo.algo.grading import Grader
from lcpo.config.reward import build_reward
from lcpo.rollout import SamplingConfig
from lcpo.rollout.hf import HFEngine
from lcpo.rollout.thinking import ThinkingCounter
from lcpo.models.tiny import build_tiny


def _collector(workers: int = 0, length: str = "total", sources: tuple[str, ...] = ()) -> RolloutCollector:
    model, tokenizer = build_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    return RolloutCollector(
        HFEngine(model, tokenizer, batch_size=64), Grader(workers=workers), build_reward(RewardConfig(name="mixed")),
        SamplingConfig(temperature=1.0, max_new_tokens=12), group_size=4, pad_id=tokenizer.pad_token_id, seed=0,
        scale_std=True, adv_eps=1e-6, samples_per_table=8, count_thinking=ThinkingCounter(tokenizer), length=length,
        sources=sources,
    )


def test_collect_scores_groups_together(prompt_stream):
    collector, batch = _collector(), prompt_stream().batch(0)
    rb = collector.collect(batch)
    assert rb.input_ids.shape[0] == 12 and rb.group.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.equal(rb.response_mask.sum(-1).float(), rb.lengths)  # every generated token counts
    assert torch.allclose(rb.advantages.view(3, 4).mean(-1), torch.zeros(3), atol=1e-5)
    assert (rb.lengths <= 12).all() and rb.truncated.any()
    assert len(rb.samples) == 3 and {"prompt", "budget", "length", "reward", "text"} <= set(rb.samples[0])
    again = collector.collect(batch)  # same step, same sampling seed: same rollouts
    assert torch.equal(again.input_ids, rb.input_ids)


def test_parallel_grading_scores_like_inline_grading(prompt_stream):
    batch = prompt_stream().batch(1)
    inline, pooled = _collector(workers=0).collect(batch), _collector(workers=2).collect(batch)
    assert torch.equal(inline.input_ids, pooled.input_ids)
    assert torch.equal(inline.rewards, pooled.rewards) and torch.equal(inline.correct, pooled.correct)


def test_thinking_length_feeds_the_reward_when_asked(prompt_stream):
    """reward.length=thinking: the exact reward's length term reads the tokens before </think>."""
    batch = prompt_stream().batch(0)
    totals = _collector().collect(batch)
    thinking = _collector(length="thinking", sources=("a", "b")).collect(batch)
    assert torch.equal(thinking.input_ids, totals.input_ids)  # same weights and seed: same rollouts
    assert (thinking.thinking <= thinking.lengths).all() and torch.equal(thinking.lengths, totals.lengths)
    exact = thinking.modes == 0
    expected = thinking.correct - 0.0003 * (thinking.budgets - thinking.thinking).abs()
    assert torch.allclose(thinking.rewards[exact], expected[exact].float())
    assert thinking.source.tolist() == [-1] * 12  # synthetic problems name no source
    sample = thinking.samples[0]
    assert sample["thinking_tokens"] + sample["answer_tokens"] == sample["length"]


def test_the_collector_drops_left_out_tokens_from_the_policy_mask(prompt_stream):
    batch = prompt_stream().batch(0)
    full = _collector().collect(batch)
    collector = _collector()
    collector.bookkeeping = lambda completion: [0]
    masked = collector.collect(batch)
    assert torch.equal(masked.input_ids, full.input_ids) and torch.equal(masked.lengths, full.lengths)
    assert full.policy_mask is None and torch.equal(masked.response_mask, full.response_mask)
    assert torch.equal(masked.policy_mask.sum(-1), full.response_mask.sum(-1) - 1)
    first = full.response_mask.float().argmax(-1)  # each row's first response token
    rows = torch.arange(len(first))
    assert (masked.policy_mask[rows, first] == 0).all()
