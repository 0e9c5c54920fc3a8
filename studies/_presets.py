"""Loading a spec from a file or a preset name, with one-line errors that say the fix."""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from search_spaces import SearchSpace
from studies._errors import SpecError
from studies._spec import StudySpec, apply_overrides, parse_overrides, refuse_non_finite
from studies._yaml import read_yaml

PRESET_DIR = Path(__file__).parent / "presets"


def study_preset_names() -> list[str]:
    """Names of the study presets shipped with the package."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve_spec_path(spec_or_preset: str) -> Path:
    """A spec file path, or the shipped preset of that name."""
    if not spec_or_preset.strip():
        raise SpecError(f"the spec is empty: give a spec file or a preset name ({', '.join(study_preset_names())})")
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
    raw = read_yaml(path, study_preset_names())
    return validate_spec(raw, overrides, source=str(path) if path.parent != PRESET_DIR else f"preset {path.stem}")


def validate_spec(raw: dict[str, Any], overrides: list[str] | None = None, *, source: str = "spec") -> StudySpec:
    """Validate a raw mapping (after ``--set`` overrides) as a :class:`StudySpec`."""
    _check_keys(raw, source)
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
    _check_keys(data, source)
    refuse_non_finite(data, source)
    _refuse_booleans_as_numbers(data, source)
    _check_enqueue(data, source)
    try:
        return StudySpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(f"{source}: {describe(e)}") from None


def _check_keys(data: Any, source: str, where: str = "") -> None:
    """Refuse mapping keys YAML read as bytes, dates or other values that cannot name a field."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise SpecError(
                    f"{source}: {where or 'spec'}: the key {_short_repr(key)} is not a name "
                    f"(YAML read it as {type(key).__name__}): write the key as plain text"
                )
            _check_keys(value, source, f"{where}.{key}" if where else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _check_keys(value, source, f"{where}[{i}]")


def _refuse_booleans_as_numbers(data: dict[str, Any], source: str) -> None:
    """Refuse ``true``/``false`` where a number goes: pydantic would read them as 1 and 0.

    Strict validation refuses a boolean for an int or float field (and nothing
    changes for numbers: ``1000.0`` still passes as the integer 1000); only the
    errors it reports for booleans are kept, the rest is left to the usual checks.
    """
    if not _holds_boolean(data):
        return  # the common case: nothing to look for, and strict validation costs a whole validation
    try:
        StudySpec.model_validate(data, strict=True)
    except ValidationError as e:
        for error in e.errors(include_url=False):
            if error["type"] in ("int_type", "float_type") and isinstance(error["input"], bool):
                field = _field_name(error["loc"])
                kind = "an integer" if error["type"] == "int_type" else "a number"
                raise SpecError(
                    f"{source}: {field}: {str(error['input']).lower()} is a boolean, not {kind}: give {kind}"
                ) from None


def _holds_boolean(data: Any) -> bool:
    if isinstance(data, bool):
        return True
    if isinstance(data, dict):
        return any(_holds_boolean(v) for v in data.values())
    if isinstance(data, list):
        return any(_holds_boolean(v) for v in data)
    return False


def _check_enqueue(data: dict[str, Any], source: str) -> None:
    """Check each enqueued configuration against the search space, naming the entry and the parameter."""
    configs = data.get("enqueue")
    if not isinstance(configs, list) or not configs:
        return
    try:
        space = SearchSpace.model_validate(StudySpec._preset_or_inline(data.get("search_space")))
    except (ValidationError, ValueError):
        return  # the full validation reports what is wrong with the space
    params = space.params
    expected = ", ".join(sorted(params))
    for i, config in enumerate(configs):
        if not isinstance(config, dict):
            raise SpecError(f"{source}: enqueue[{i}]: give a mapping of parameter: value ({expected})")
        for name, value in config.items():
            if name not in params:
                raise SpecError(f"{source}: enqueue[{i}].{name}: not a parameter of the search space: give {expected}")
            problem = _enqueue_problem(params[name], value)
            if problem:
                shown = str(value).lower() if isinstance(value, bool) else repr(value)
                raise SpecError(f"{source}: enqueue[{i}].{name}: {shown} {problem}")
        active = space.active(config)
        inactive = sorted(set(config) - set(active))
        if inactive:
            raise SpecError(
                f"{source}: enqueue[{i}].{inactive[0]}: its condition does not hold for the other values given: "
                f"leave it out (it is inactive) or change the value its condition names"
            )
        missing = sorted(set(active) - set(config))
        if missing:
            every = "every active parameter" if space.conditional else "every parameter of the space"
            raise SpecError(f"{source}: enqueue[{i}]: {', '.join(missing)} missing: give {every} ({expected})")


def _enqueue_problem(param: Any, value: Any) -> str:
    """Why ``value`` cannot be enqueued for ``param`` (a search-space parameter), or ``""``."""
    if param.type == "categorical":
        # 1 == True in Python: a choice matches only a value of the same kind.
        if any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in param.choices):
            return ""
        return f"is not one of the choices {param.choices}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is not a number: give a {param.type} from {param.low} to {param.high}"
    if param.type == "int" and value != int(value):
        return f"is not an integer: give an int from {param.low} to {param.high}"
    if not param.low <= value <= param.high:
        return f"is outside the search space: give a {param.type} from {param.low} to {param.high}"
    return ""


def describe(error: ValidationError) -> str:
    """The first validation error as ``field.path: problem; fix`` (plus a count of the others)."""
    errors = error.errors(include_url=False)
    first = errors[0]
    loc = _loc_parts(first["loc"])
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
        shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {_short_repr(got)})"
        message = f"{text}{shown}"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{field}: {message}{more}"


def _short_repr(value: Any) -> str:
    """``repr(value)`` for a one-line message: control characters escaped, long values cut."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}...{text[-10:]} ({len(text)} characters)"


def _loc_parts(loc: tuple[Any, ...]) -> list[str]:
    """A pydantic error location without its union and validator tags."""
    parts = [str(part) for part in loc if not str(part).startswith(("function-", "tagged-union"))]
    return [part for part in parts if part not in ("float", "int", "categorical")]


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(_loc_parts(loc)) or "spec"


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
