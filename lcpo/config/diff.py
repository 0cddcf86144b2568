"""Which keys two settings differ in: how a resumed evaluation or a rerun sweep job tells that a folder was made
with other settings, and names them."""

from __future__ import annotations

from typing import Any, Mapping


def flatten(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": value}``; tuples become lists (as they read back from JSON or YAML)."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def differences(there: Mapping[str, Any], here: Mapping[str, Any]) -> str:
    """``"key: <there> there, <here> now; ..."`` for every flat key whose values differ ("" when none does)."""
    a, b = flatten(there), flatten(here)
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
    return "; ".join(f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in keys)
