"""The model directory: promoted models, each written atomically.

A promoted model lives at ``<root>/<study>/``. It is assembled in a temporary
sibling folder and moved into place with ``rename``, so a reader (or a crash)
sees either the previous complete model or the new complete one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from storage._paths import contained
from storage._urls import StorageError

_STAGING = ".staging-"
_RETIRED = ".retired-"
_TRASH = ".trash-"


def model_dir(root: str | os.PathLike[str], study_name: str) -> Path:
    """Where the promoted model of ``study_name`` lives under ``root``.

    Raises:
        StorageError: If that folder would be outside ``root`` (a name with a
            separator or ``..``, or a symbolic link pointing elsewhere).
    """
    return contained(root, study_name, what="model directory")


def clean_stale(root: str | os.PathLike[str], study_name: str) -> list[Path]:
    """Tidy what a crashed promotion of ``study_name`` left under ``root``; return what was removed.

    A retired model is put back first if the study has no model (a crash between
    the two renames), then leftover staging, retired and trash folders of this
    study only are removed: other studies' promotions may be running.
    """
    target = model_dir(root, study_name)
    root = Path(root)
    if not root.is_dir():
        return []
    recover(target)
    removed = []
    for entry in root.iterdir():
        for prefix in (_STAGING, _RETIRED, _TRASH):
            if (
                entry.name.startswith(f"{prefix}{study_name}-")
                and entry.name[len(prefix) + len(study_name) + 1 :].isalnum()
            ):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``target`` in one rename.

    On an exception the staging folder is removed and ``target`` is untouched.
    A crash (SIGKILL) at any point leaves ``target`` either as it was or complete;
    the only leftovers are hidden ``.staging-*``/``.retired-*`` siblings, which
    :func:`clean_stale` removes.

    Raises:
        StorageError: If the parent folder cannot be written.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f"{_STAGING}{target.name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
    except OSError as e:
        raise StorageError(f"cannot write the model directory {target.parent}: {e.strerror}") from e
    try:
        yield staging
        _fsync_tree(staging)
        if target.exists():
            # rename() cannot replace a non-empty folder: move the old one aside
            # first. Between the two renames a crash leaves the old model in
            # .retired-*; promote() restores it (see recover()).
            retired = target.parent / f"{_RETIRED}{target.name}-{uuid.uuid4().hex[:8]}"
            os.rename(target, retired)
            os.rename(staging, target)
            # Out of recover()'s sight before deleting: a crash mid-delete must
            # not leave a half-deleted model that looks like a retired one.
            trash = target.parent / f"{_TRASH}{target.name}-{uuid.uuid4().hex[:8]}"
            os.rename(retired, trash)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def recover(target: str | os.PathLike[str]) -> Path | None:
    """Put back a model that a crash left retired between the two renames; return it if one was."""
    target = Path(target)
    if target.exists():
        return None
    candidates = sorted(
        (
            p
            for p in target.parent.glob(f"{_RETIRED}{target.name}-*")
            if p.name[len(_RETIRED) + len(target.name) + 1 :].isalnum()
        ),
        key=lambda p: p.stat().st_mtime,
    )
    if not candidates:
        return None
    os.rename(candidates[-1], target)
    return target


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
