"""The embedded tiny model and its character tokenizer: exact round-trips, offline save/reload, generation."""

import pytest
import torch

from lcpo.config import TinyModelConfig
from lcpo.models.tiny import build_tiny, build_tokenizer, load_tiny, load_tokenizer, save_tiny

TEXT = "4+7+5 mod 10 = ? Think for 120 tokens.\n<think>4+7=1\n1+5=6\ncheck 4+7=1\n</think>\n\\boxed{6}"
SMALL = dict(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_tokenizer_round_trips_spaces_newlines_and_markers():
    tok = build_tokenizer()
    text = TEXT + "  double  spaces\n\n" + "Think for maximum 64 tokens."
    ids = encode(tok, text)
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == text
    assert len(encode(tok, "<think>")) == len(encode(tok, "</think>")) == 1  # one token each, like real models
    assert len(encode(tok, "ab c\n")) == 5  # otherwise one token per character


def test_think_markers_survive_skip_special_tokens_but_eos_does_not():
    tok = build_tokenizer()
    ids = encode(tok, "<think>x</think>") + [tok.eos_token_id]
    assert tok.decode(ids, skip_special_tokens=True) == "<think>x</think>"


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_export_reloads_offline_and_generates(tmp_path, arch):
    model, tok = build_tiny(TinyModelConfig(arch=arch, **SMALL))
    save_tiny(model, tok, tmp_path)
    model2, tok2 = load_tiny(tmp_path)
    # A Qwen2 folder makes AutoTokenizer pick Qwen2Tokenizer, which drops spaces/newlines: load_tokenizer must not.
    assert tok2.decode(encode(tok2, TEXT)) == TEXT
    assert load_tokenizer(tmp_path).decode(encode(tok, TEXT)) == TEXT
    ids = torch.tensor([encode(tok2, "1+2 mod 10 = ?\n")])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, model2(ids).logits)
        out = model2.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tok2.pad_token_id)
    assert out.shape[1] > ids.shape[1]


def test_seed_fixes_the_initial_weights():
    a, _ = build_tiny(TinyModelConfig(seed=3, **SMALL))
    b, _ = build_tiny(TinyModelConfig(seed=3, **SMALL))
    c, _ = build_tiny(TinyModelConfig(seed=4, **SMALL))
    wa, wb, wc = (m.get_input_embeddings().weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError, match="num_heads"):
        TinyModelConfig(hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match="arch"):
        TinyModelConfig(arch="gpt2")
