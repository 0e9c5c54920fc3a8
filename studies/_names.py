"""The study-name rule, checked wherever a name enters (spec, ``--new-name``, ``--set name=``, resume, promote).

A study name becomes a folder name (``<promotion.dir>/<name>/``,
``<work_dir>/trials/<name>/``) and part of wandb run and artifact names, so it
must be one plain path component on every system.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_LENGTH = 100
NAME_RULE = (
    f"1 to {MAX_NAME_LENGTH} characters: letters, digits, '_', '-' and '.', starting with a letter or digit, no '..'"
)
_VALID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME_LENGTH - 1}}}")


def name_problem(name: object) -> str:
    """Why ``name`` is not a valid study name, or ``""`` if it is.

    The reason names the first rule broken (separator, ``..``, control
    character, length, ...), so the user knows what to change.
    """
    if not isinstance(name, str):
        return f"it is {type(name).__name__}, not text"
    if not name:
        return "it is empty"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return "it holds a control character"
    if "/" in name or "\\" in name:
        return "it holds a path separator"
    if ".." in name:
        return "it holds '..'"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is {len(name)} characters long, more than {MAX_NAME_LENGTH}"
    if _VALID.fullmatch(name) is None:
        bad = next((c for c in name if not (c.isascii() and (c.isalnum() or c in "_.-"))), None)
        if bad is not None:
            return f"it holds {bad!r}"
        return "it must start with a letter or digit"
    return ""


def check_name(name: object, where: str = "name") -> str:
    """Return ``name`` if it is a valid study name.

    Args:
        name: The candidate.
        where: Where it came from, for the message (``name``, ``--new-name``, ``study``).

    Raises:
        ValueError: One line: what is wrong and the rule (a :class:`SpecError` at the callers).
    """
    problem = name_problem(name)
    if problem:
        raise ValueError(f"{where} {_shown(name)} is not a valid study name ({problem}): use {NAME_RULE}")
    return name  # type: ignore[return-value]


def require_name(name: object, where: str = "study") -> str:
    """:func:`check_name` for a name given on the command line: a :class:`SpecError` (exit 2) when invalid."""
    from studies._errors import SpecError

    try:
        return check_name(name, where)
    except ValueError as e:
        raise SpecError(str(e)) from None


def _shown(name: object) -> str:
    """``name`` for a one-line message: quoted, control characters escaped, cut when long."""
    text = repr(name)
    return text if len(text) <= 60 else f"{text[:40]}...{text[-10:]} ({len(str(name))} characters)"


__all__ = ["MAX_NAME_LENGTH", "NAME_RULE", "check_name", "name_problem", "require_name"]
