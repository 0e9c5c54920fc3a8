"""The error hierarchy every user-facing failure goes through.

The CLI prints ``str(error)`` as one line and exits 2 for any of
:data:`USER_ERRORS` (the user can fix them) and 1 for anything else (a bug).
``StorageError``, ``DataError`` and ``ModelError`` are defined by the ``storage``
and ``trainers`` packages, which know nothing of this one.
"""

from __future__ import annotations

from storage import StorageError
from trainers import DataError, ModelError


class StudyError(Exception):
    """A failure the user can fix; the message says what was wrong and how to fix it."""


class SpecError(StudyError):
    """The study spec (YAML file, preset or ``--set`` override) is invalid."""


class ConflictError(StudyError):
    """The request conflicts with the state of the store (changed spec, live launcher)."""


class NotFoundError(StudyError):
    """A study, trial or preset that was named does not exist."""


USER_ERRORS: tuple[type[Exception], ...] = (StudyError, StorageError, DataError, ModelError)

__all__ = [
    "USER_ERRORS",
    "ConflictError",
    "DataError",
    "ModelError",
    "NotFoundError",
    "SpecError",
    "StorageError",
    "StudyError",
]
