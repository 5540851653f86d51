"""Turning an official TRELLIS/SceneGen model json (``{"name": ..., "args": {...}}`` or just the
``args`` dict) into keyword arguments for our frozen config dataclasses."""

from __future__ import annotations

from typing import Any, Mapping


def official_args(
    data: Mapping[str, Any],
    *,
    expected_name: str,
    required: tuple[str, ...],
    defaults: Mapping[str, Any],
    ignored: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Validate an official args dict and complete it with the official constructor defaults.

    data: the ``args`` dict, or the whole model json whose ``name`` must equal `expected_name`.
    required: keys the official constructor has no default for. defaults: the official defaults of
    the optional keys. ignored: keys accepted but without effect here (e.g. ``use_checkpoint``).
    Raises ValueError naming missing or unknown keys. Returns {key: value} without ignored keys,
    lists converted to tuples.
    """
    if "args" in data and isinstance(data["args"], Mapping):
        name = data.get("name")
        if name is not None and name != expected_name:
            raise ValueError(f"model json is for {name!r}, expected {expected_name!r}")
        data = data["args"]
    unknown = sorted(set(data) - set(required) - set(defaults) - set(ignored))
    if unknown:
        raise ValueError(f"unknown {expected_name} argument(s): {unknown}")
    missing = sorted(set(required) - set(data))
    if missing:
        raise ValueError(f"{expected_name} json lacks required argument(s): {missing}")
    merged = {**defaults, **{k: v for k, v in data.items() if k not in ignored}}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()}
