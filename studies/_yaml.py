"""Reading YAML specs: safe loading, duplicate keys refused, one-line errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from studies._errors import SpecError


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A YAML mapping names the same key twice (plain YAML keeps the last one without a word)."""


class _SpecLoader(yaml.SafeLoader):
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
    """Parse YAML like ``yaml.safe_load``, refusing duplicate keys.

    Raises:
        yaml.YAMLError: If the text is not valid YAML; :class:`DuplicateKeyError` for a key given twice.
    """
    return yaml.load(text, Loader=_SpecLoader)  # a SafeLoader: no arbitrary objects


def read_yaml(path: Path, presets: Sequence[str] = ()) -> dict[str, Any]:
    """Read a spec file as a mapping, with one-line errors.

    Args:
        path: The spec file.
        presets: Preset names to suggest when the file does not exist.
    """
    try:
        text = path.read_text(encoding="utf-8")
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
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = str(getattr(e, "problem", None) or e).strip().splitlines()[0]
        raise SpecError(f"spec {path}{where} is not valid YAML: {problem}") from e
    if not isinstance(data, dict):
        raise SpecError(f"spec {path} must be a YAML mapping with at least name and search_space")
    return data


__all__ = ["DuplicateKeyError", "load_yaml", "read_yaml"]
