"""The embedded default policy: a tiny random-init causal LM and a character-level tokenizer, both built in code.

Nothing is downloaded. One character is one token (plus the ``<think>``/``</think>`` markers, one token each, as in
real reasoning-model tokenizers), so a budget of N tokens is N characters of response and lengths are easy to
read off the text. The markers are ordinary (non-special) added tokens: decoding with ``skip_special_tokens=True``
keeps them, which the grader needs.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from lcpo.config.model import TINY_ARCHITECTURES, TinyModelConfig

PAD, EOS, BOS, UNK = "<pad>", "<eos>", "<bos>", "<unk>"
SPECIAL_TOKENS = (PAD, EOS, BOS, UNK)
THINK_TOKENS = ("<think>", "</think>")
#: Every printable ASCII character plus newline: covers the task text, prompt wording, digits and ``\\boxed{}``.
CHARACTERS = tuple(" " + string.digits + string.ascii_letters + string.punctuation.replace(" ", "") + "\n")

ARCHITECTURES = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}
assert set(ARCHITECTURES) == set(TINY_ARCHITECTURES), "every architecture the schema accepts must be buildable"


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer: every character of :data:`CHARACTERS` is one token, the think markers one each.

    The pre-tokenizer isolates every character (whitespace included) and the ``Fuse`` decoder joins tokens with
    nothing in between, so spaces and newlines round-trip exactly.
    """
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        eos_token=EOS,
        bos_token=BOS,
        unk_token=UNK,
        clean_up_tokenization_spaces=False,
        padding_side="left",
    )


def load_tokenizer(path: str | Path):
    """The tokenizer saved in an exported folder, safe for the character tokenizer and for any hub-style folder.

    ``AutoTokenizer`` picks the class from the model config next to the tokenizer (e.g. ``Qwen2Tokenizer`` for a
    Qwen2 model), whose own pre-tokenizer and decoder silently drop the spaces and newlines of a character
    vocabulary. A folder whose ``tokenizer.json`` holds a WordLevel model (ours) is therefore loaded through the
    generic fast class, which keeps it exactly as built; any other folder goes through ``AutoTokenizer``.
    """
    path = Path(path)
    if _is_word_level(path / "tokenizer.json"):
        return PreTrainedTokenizerFast.from_pretrained(str(path), clean_up_tokenization_spaces=False)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def _is_word_level(tokenizer_json: Path) -> bool:
    if not tokenizer_json.is_file():
        return False
    with tokenizer_json.open() as f:
        return json.load(f).get("model", {}).get("type") == "WordLevel"


def build_model(cfg: TinyModelConfig, tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
    """A randomly initialised causal LM of ``cfg``'s shape over ``tokenizer``'s vocabulary (seeded by ``cfg.seed``)."""
    config_cls, model_cls = ARCHITECTURES[cfg.arch]
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        rope_theta=cfg.rope_theta,
        tie_word_embeddings=cfg.tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = cfg.attn_implementation
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        model = model_cls(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def build_tiny(cfg: TinyModelConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """The tiny policy and its tokenizer, ready to train or to ``save_pretrained`` into one folder."""
    tokenizer = build_tokenizer()
    return build_model(cfg, tokenizer), tokenizer


def save_tiny(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, path: str | Path) -> Path:
    """Saves model and tokenizer into one transformers-format folder; reload with :func:`load_tiny`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def load_tiny(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Reloads a folder written by :func:`save_tiny` offline, in float32."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, local_files_only=True)
    return model, load_tokenizer(path)
