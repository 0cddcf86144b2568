"""Range and choice checks shared by the schema dataclasses: each failure names the config key it is about."""

from __future__ import annotations

import math
from typing import Any, Iterable


def one_of(key: str, value: Any, options: Iterable[Any]) -> None:
    """``value`` must be one of ``options``."""
    options = tuple(options)
    if value not in options:
        raise ValueError(f"{key} must be one of {list(options)}, got {value!r}")


def positive(key: str, value: float, allow_zero: bool = False) -> None:
    """``value`` must be a finite number > 0 (or >= 0 with ``allow_zero``): NaN and infinity are refused too."""
    if not _finite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{key} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def in_range(key: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    """``value`` must lie in [low, high] (or (low, high] with ``low_open``), finite."""
    bad_low = value <= low if low_open else value < low
    if not _finite(value) or bad_low or value > high:
        raise ValueError(f"{key} must lie in {'(' if low_open else '['}{low}, {high}], got {value}")


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
