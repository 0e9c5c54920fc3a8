"""Content keys and atomic folder writes for the preparation cache and best models.

A cache entry or a model folder is assembled in a hidden temporary sibling and
moved into place with one ``rename``, so a reader (or a crash) sees the old
complete folder or the new complete one, never a half-written one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_STAGING = ".staging-"
_RETIRED = ".retired-"


def content_key(*parts: Any) -> str:
    """A short, stable hash of JSON-serializable ``parts`` (dict key order does not matter).

    Args:
        parts: Values that together identify some content.
    """
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_identity(path: Path) -> dict[str, Any]:
    """Identify a file by resolved path, size and modification time (not by content).

    Args:
        path: The file.
    """
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@contextlib.contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; it is removed if the block fails.

    Args:
        target: The folder the staged content is meant for; see :func:`publish`.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f"{_STAGING}{target.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, target: Path, *, replace: bool) -> bool:
    """Move the complete folder ``staging`` to ``target`` in one rename.

    Args:
        staging: A folder from :func:`staging_dir`, fully written.
        target: Where it goes.
        replace: Whether an existing ``target`` is replaced (a best model) or kept
            (a cache entry another process finished first: both are equal).

    Returns:
        Whether ``staging`` became ``target``.
    """
    if target.exists():
        if not replace:
            return False
        retired = target.parent / f"{_RETIRED}{target.name}-{uuid.uuid4().hex[:8]}"
        os.rename(target, retired)
        os.rename(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
        return True
    try:
        os.rename(staging, target)
    except OSError:
        if target.exists() and not replace:  # another process published first
            return False
        raise
    return True
