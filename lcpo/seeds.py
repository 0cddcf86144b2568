"""Seeds derived from (run seed, rollout step, rank): data order and sampling are functions of them, so a resumed
run draws exactly what an uninterrupted one would have, without storing any random-number-generator state."""

from __future__ import annotations


def step_seed(seed: int, step: int, rank: int) -> int:
    """A distinct, reproducible seed per (run seed, rollout step, rank)."""
    return (seed * 1_000_003 + step) * 1_009 + rank
