"""Declarative search spaces and the presets shipped with them."""

from search_spaces._presets import load_preset, preset_names
from search_spaces._space import CategoricalParam, FloatParam, IntParam, Param, SearchSpace

__all__ = [
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "Param",
    "SearchSpace",
    "load_preset",
    "preset_names",
]
