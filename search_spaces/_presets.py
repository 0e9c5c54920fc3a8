"""Search spaces shipped with the package, by name."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

PRESET_DIR = Path(__file__).parent / "presets"


def preset_names() -> list[str]:
    """Names of the shipped space presets, sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The raw mapping of the preset ``name`` (validate it with :class:`SearchSpace`).

    Raises:
        KeyError: If there is no such preset; the message lists the valid names.
    """
    if name not in preset_names():  # a name, never a path: "../x" must not reach another folder's files
        raise KeyError(f"unknown search space preset {name!r}: choose one of {', '.join(preset_names())}")
    return copy.deepcopy(_read(name))  # callers may edit their copy (--set inside a preset space)


@functools.cache
def _read(name: str) -> dict[str, Any]:
    """A shipped preset file, parsed once per process (specs name the same few presets many times)."""
    with (PRESET_DIR / f"{name}.yaml").open(encoding="utf-8") as f:
        return dict(yaml.safe_load(f))
