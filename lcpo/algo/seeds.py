"""Seeds derived from (run seed, rollout step, rank): data order and sampling are functions of them, so a resumed
run draws exactly what an uninterrupted one would have, without storing any random-number-generator state."""

from __future__ import annotations

import hashlib


def step_seed(seed: int, step: int, rank: int) -> int:
    """A distinct, reproducible seed per (run seed, rollout step, rank)."""
    return (seed * 1_000_003 + step) * 1_009 + rank


def row_seed(call_seed: int, row: int) -> int:
    """The seed of one sampled sequence (row ``row`` of a generate call seeded ``call_seed``), for engines that seed
    each request on its own (vLLM). Hashed, not added: ``call_seed + row`` would make row 1 of one step the row 0 of
    a neighbouring seed. Kept below 2**63 so every sampler's generator accepts it."""
    digest = hashlib.blake2b(f"{call_seed}/{row}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)
