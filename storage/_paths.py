"""Folders named after user input stay inside the folder the user configured."""

from __future__ import annotations

import os
from pathlib import Path

from storage._urls import StorageError


def contained(root: str | os.PathLike[str], *parts: str, what: str = "folder") -> Path:
    """``root / parts...``, checked to stay inside ``root`` once both are resolved.

    A part that is absolute, holds ``..`` or a separator, or a symbolic link
    that points elsewhere would put files outside the folder the user chose.

    Args:
        root: The configured folder (``promotion.dir``, ``work_dir``, ...).
        parts: The path components below it, usually derived from a study name.
        what: What the folder is, for the message.

    Raises:
        StorageError: If the path leaves ``root``.
    """
    base = Path(root).expanduser()
    path = base.joinpath(*parts)
    resolved_base = base.resolve()
    resolved = path.resolve()
    if any(not part or part in (".", "..") or "/" in part or os.sep in part for part in parts) or not (
        resolved.is_relative_to(resolved_base) and resolved != resolved_base
    ):
        raise StorageError(
            f"the {what} {str(path)!r} would be outside {str(base)!r} (resolves to {str(resolved)!r}): "
            "use a study name that is one plain folder name, and no symbolic link that points elsewhere"
        )
    return path


__all__ = ["contained"]
