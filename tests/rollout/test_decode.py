"""The rollout sampling loop: greedy equals ``generate`` token for token (padding, EOS, dropped rows), and sampling
draws from the warped next-token distribution."""

import pytest
import torch
from transformers import GenerationConfig

from lcpo.config import TinyModelConfig
from lcpo.rollout.base import SamplingConfig
from lcpo.rollout.decode import sample
from lcpo.models.tiny import build_tiny

TINY = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, seed=3)


@pytest.fixture(scope="module")
def model_and_tokenizer():
    """A tiny model with large random weights: its greedy continuations vary instead of repeating one token."""
    model, tokenizer = build_tiny(TINY)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    return model.eval(), tokenizer


def _generate_greedy(model, prompt: list[int], eos: set[int], pad: int, cap: int) -> list[int]:
    config = GenerationConfig(do_sample=False, max_new_tokens=cap, eos_token_id=sorted(eos), pad_token_id=pad)
    out = model.generate(input_ids=torch.tensor([prompt]), generation_config=config)[0, len(prompt):].tolist()
    for j, token in enumerate(out):
        if token in eos:
            return out[: j + 1]
    return out


def test_greedy_matches_generate_with_padding_stops_and_dropped_rows(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    texts = ["1+2+3 mod 10 = ?", "a", "Think for 40 tokens.", "7", "(((", "a much longer prompt than the others"]
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    eos = {0, 1, 2, 3}  # frequent enough that rows stop at different steps and the batch shrinks
    cap, pad = 24, tokenizer.pad_token_id
    got = sample(model, prompts, 2, SamplingConfig(temperature=0.0, max_new_tokens=cap), eos, pad)
    expected = [_generate_greedy(model, p, eos, pad, cap) for p in prompts]
    assert got == [e for e in expected for _ in range(2)]
    assert len({len(e) for e in expected}) > 2  # the rows did stop at different steps


def test_sampling_draws_from_the_warped_distribution(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompt = tokenizer("3+4 = ?", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt])).logits[0, -1]
    top = logits.topk(5)
    probs = torch.softmax(top.values / 0.7, dim=-1)
    torch.manual_seed(0)
    draws = sample(model, [prompt], 4000, SamplingConfig(temperature=0.7, top_k=5, max_new_tokens=1), set(), 0)
    first = torch.tensor([d[0] for d in draws])
    assert set(first.tolist()) <= set(top.indices.tolist())
    freq = torch.stack([(first == i).float().mean() for i in top.indices])
    torch.testing.assert_close(freq, probs, atol=0.03, rtol=0)


def test_every_row_runs_to_the_cap_without_eos(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("ab", "abcdef")]
    out = sample(model, prompts, 3, SamplingConfig(temperature=1.0, max_new_tokens=7), {tokenizer.eos_token_id}, 0)
    assert len(out) == 6 and all(len(r) == 7 or r[-1] == tokenizer.eos_token_id for r in out)
