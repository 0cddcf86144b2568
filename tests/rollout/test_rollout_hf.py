from lcpo.rollout import SamplingConfig
from lcpo.rollout.hf import HFEngine
from lcpo.config import TinyModelConfig
from lcpo.models.tiny import build_tiny


def _engine():
    model, tokenizer = build_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    return HFEngine(model, tokenizer, batch_size=4), tokenizer


def test_groups_lengths_and_finish_reasons():
    engine, tokenizer = _engine()
    groups = engine.generate(["1+2 = ?", "a much longer prompt"], 3, SamplingConfig(temperature=1.0, max_new_tokens=8))
    assert [len(g) for g in groups] == [3, 3]  # chunks of batch_size=4 rows still keep groups whole
    for group, prompt in zip(groups, ["1+2 = ?", "a much longer prompt"]):
        for c in group:
            assert tokenizer.decode(c.prompt_ids) == prompt  # left padding stripped
            assert 1 <= c.length <= 8
            ends_with_eos = c.token_ids[-1] == tokenizer.eos_token_id
            assert c.finish_reason == ("eos" if ends_with_eos else "length") and c.truncated == (not ends_with_eos)


def test_greedy_with_several_samples_gives_identical_completions():
    engine, _ = _engine()
    (group,) = engine.generate(["7+1 = ?"], 3, SamplingConfig(temperature=0.0, max_new_tokens=6))
    assert len({tuple(c.token_ids) for c in group}) == 1
