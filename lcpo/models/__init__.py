"""Policies and tokenizers: load a transformers folder, build the embedded tiny model and its character tokenizer,
and shard or gather a model's parameters (FSDP2).

Imports :mod:`lcpo.config` (the ``model`` group) and :mod:`lcpo.algo`; knows no engine, trainer or data module.
"""
