"""Loading a spec from a file or a preset name, with one-line errors that say the fix."""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from studies._errors import SpecError
from studies._spec import StudySpec, apply_overrides, parse_overrides, read_yaml

PRESET_DIR = Path(__file__).parent / "presets"


def study_preset_names() -> list[str]:
    """Names of the study presets shipped with the package."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve_spec_path(spec_or_preset: str) -> Path:
    """A spec file path, or the shipped preset of that name."""
    path = Path(spec_or_preset)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in spec_or_preset:
        return path
    preset = PRESET_DIR / f"{spec_or_preset}.yaml"
    if preset.is_file():
        return preset
    hint = difflib.get_close_matches(spec_or_preset, study_preset_names(), n=1)
    maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise SpecError(
        f"{spec_or_preset!r} is neither a spec file nor a preset{maybe}: presets are {', '.join(study_preset_names())}"
    )


def load_spec(spec_or_preset: str, overrides: list[str] | None = None) -> StudySpec:
    """Read, override and validate a spec.

    Args:
        spec_or_preset: A YAML file path or a preset name (``quickstart``).
        overrides: ``--set key.path=value`` items, applied before validation.

    Raises:
        SpecError: One line naming the field, what was wrong, and the fix.
    """
    path = resolve_spec_path(spec_or_preset)
    raw = read_yaml(path)
    return validate_spec(raw, overrides, source=str(path) if path.parent != PRESET_DIR else f"preset {path.stem}")


def validate_spec(raw: dict[str, Any], overrides: list[str] | None = None, *, source: str = "spec") -> StudySpec:
    """Validate a raw mapping (after ``--set`` overrides) as a :class:`StudySpec`."""
    parsed = parse_overrides(overrides)
    if isinstance(raw.get("search_space"), str) and any(path[0] == "search_space" for path, _ in parsed):
        # An override inside a preset space edits a copy of that preset.
        from search_spaces import load_preset

        try:
            raw = {**raw, "search_space": load_preset(raw["search_space"])}
        except KeyError as e:
            raise SpecError(f"{source}: search_space: {e.args[0]}") from None
    if isinstance(raw.get("search_space"), dict) and "params" in raw["search_space"]:
        # Stored specs spell the space as {params: {...}}; --set names parameters directly.
        parsed = [
            (
                ["search_space", "params", *path[1:]]
                if path[0] == "search_space" and len(path) > 1 and path[1] != "params"
                else path,
                value,
            )
            for path, value in parsed
        ]
    data = apply_overrides(raw, parsed)
    try:
        return StudySpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(f"{source}: {describe(e)}") from None


def describe(error: ValidationError) -> str:
    """The first validation error as ``field.path: problem; fix`` (plus a count of the others)."""
    errors = error.errors(include_url=False)
    first = errors[0]
    loc = [str(part) for part in first["loc"] if not str(part).startswith(("function-", "tagged-union"))]
    loc = [part for part in loc if part not in ("float", "int", "categorical")]
    field = ".".join(loc) or "spec"
    kind = first["type"]
    if kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}{_did_you_mean(first['loc'])}"
        field = ".".join(loc[:-1]) or "spec"
    elif kind == "missing":
        message = f"{loc[-1]!r} is required"
        field = ".".join(loc[:-1]) or "spec"
    elif kind == "union_tag_invalid":
        message = "type must be one of float, int, categorical"
    else:
        text = first["msg"].removeprefix("Value error, ")
        got = first.get("input")
        shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
        message = f"{text}{shown}"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{field}: {message}{more}"


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    fields = _fields_at(StudySpec, [p for p in loc[:-1] if isinstance(p, str)])
    if not fields:
        return ""
    hint = difflib.get_close_matches(str(loc[-1]), fields, n=1, cutoff=0.5)
    if hint:
        return f"; did you mean {hint[0]!r}?"
    return f"; valid keys are {', '.join(sorted(fields))}"


def _fields_at(model: type[BaseModel], path: list[str]) -> list[str]:
    """The field names of the nested model reached by ``path`` from ``model``."""
    current: Any = model
    for part in path:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
