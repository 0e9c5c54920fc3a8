"""Reading YAML specs: safe loading, duplicate keys refused, bounded size, one-line errors.

Limits (every spec and every ``--set`` value): at most :data:`MAX_SPEC_BYTES`
of text, :data:`MAX_DEPTH` levels of nesting, and :data:`MAX_NODES` values once
anchors, aliases and merge keys are expanded, so a small file cannot expand
into gigabytes (the "billion laughs"). The limits are checked on the event
stream, before anything is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from studies._errors import SpecError

MAX_SPEC_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 100_000


class LimitError(yaml.YAMLError):
    """The YAML text is too large, too deep, or expands to too many values."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A YAML mapping names the same key twice (plain YAML keeps the last one without a word)."""


# libyaml's parser when PyYAML has it (several times faster), else the pure-Python one; both are safe loaders.
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SpecLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """``yaml.safe_load``, except that a key given twice in one mapping is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged keys (<<: *defaults) may be overridden; that is their purpose
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in first_lines:
                where = f"on line {line}" if first_lines[key] == line else f"on lines {first_lines[key]} and {line}"
                raise DuplicateKeyError(
                    None, None, f"the key {key!r} is given twice ({where}): keep one", key_node.start_mark
                )
            first_lines[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse YAML like ``yaml.safe_load``, refusing duplicate keys and input past the limits.

    Raises:
        yaml.YAMLError: If the text is not valid YAML; :class:`DuplicateKeyError` for a key
            given twice; :class:`LimitError` for text past the size, depth or expansion limits.
    """
    if len(text) > MAX_SPEC_BYTES:
        raise LimitError(f"it is {len(text)} characters long, more than the limit of {MAX_SPEC_BYTES}")
    check_limits(text)
    try:
        return yaml.load(text, Loader=_SpecLoader)  # a SafeLoader: no arbitrary objects
    except (ValueError, OverflowError, RecursionError, AttributeError, TypeError) as e:
        # PyYAML's constructors fail this way on some values: an integer of more digits than
        # Python reads, an empty !!timestamp, bad !!binary.
        if isinstance(e, (AttributeError, TypeError)):
            problem = "a value does not fit its !! tag: check the tagged values, or drop the tags"
        else:
            problem = f"a value cannot be read ({(str(e).splitlines() or [type(e).__name__])[0].split(';')[0]})"
        raise yaml.constructor.ConstructorError(None, None, problem, None) from e


def check_limits(text: str) -> None:
    """Walk the YAML events (no recursion, nothing built) and refuse too deep or too large documents.

    Each anchor's expanded size is recorded when its node ends, so an alias (or a
    merge key, which is an alias) counts as the whole node it repeats.

    Raises:
        LimitError: Past :data:`MAX_DEPTH` or :data:`MAX_NODES`, or an alias inside its own anchor.
        yaml.YAMLError: If the text is not valid YAML.
    """
    sizes: dict[str, int] = {}
    open_anchors: set[str] = set()
    stack: list[list[Any]] = [[None, 0]]  # [anchor, expanded size so far] per open collection
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) > MAX_DEPTH:
                raise LimitError(f"it nests deeper than {MAX_DEPTH} levels (line {_line(event)})")
            if event.anchor:
                open_anchors.add(event.anchor)
            stack.append([event.anchor, 1])
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
            if anchor:
                sizes[anchor] = size
                open_anchors.discard(anchor)
        elif isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                raise LimitError(f"the alias *{event.anchor} refers to a node that holds it (line {_line(event)})")
            size = sizes.get(event.anchor or "", 1)  # an undefined alias is the composer's error
        else:
            continue
        stack[-1][1] += size
        if sum(frame[1] for frame in stack) > MAX_NODES:
            raise LimitError(f"it expands to more than {MAX_NODES} values (anchors and aliases counted in full)")


def read_yaml(path: Path, presets: Sequence[str] = ()) -> dict[str, Any]:
    """Read a spec file as a mapping, with one-line errors.

    Args:
        path: The spec file.
        presets: Preset names to suggest when the file does not exist.
    """
    try:
        with path.open("rb") as f:
            head = f.read(MAX_SPEC_BYTES + 1)
        if len(head) > MAX_SPEC_BYTES:
            raise SpecError(
                f"spec {path} is larger than {MAX_SPEC_BYTES // 1024} KiB: a spec is a short YAML file; "
                "check it is the spec file"
            )
        text = head.decode("utf-8")
    except FileNotFoundError:
        raise SpecError(
            f"spec file {path} does not exist: give a path or a preset name ({', '.join(presets)})"
        ) from None
    except IsADirectoryError:
        raise SpecError(f"spec {path} is a folder, not a YAML file: give the path of the spec file in it") from None
    except UnicodeDecodeError as e:
        raise SpecError(
            f"spec {path} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}): "
            "save it as UTF-8, or check it is the spec file"
        ) from None
    except OSError as e:
        raise SpecError(f"cannot read spec {path}: {e.strerror or e}") from None
    try:
        data = load_yaml(text)
    except LimitError as e:
        raise SpecError(f"spec {path} is refused: {e.problem}: write the spec out plainly") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = str(getattr(e, "problem", None) or e).strip().splitlines()[0]
        raise SpecError(f"spec {path}{where} is not valid YAML: {problem}") from e
    if not isinstance(data, dict):
        raise SpecError(f"spec {path} must be a YAML mapping with at least name and search_space")
    return data


__all__ = ["MAX_DEPTH", "MAX_NODES", "MAX_SPEC_BYTES", "DuplicateKeyError", "LimitError", "load_yaml", "read_yaml"]


def _line(event: Any) -> str:
    """The 1-based line where a YAML event starts ("?" when the parser gave no position)."""
    mark = event.start_mark
    return str(mark.line + 1) if mark is not None else "?"
