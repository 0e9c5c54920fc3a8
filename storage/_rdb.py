"""Open the Optuna study store behind a URL, with errors a user can act on."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage._retry import retrying
from storage._urls import StorageError, dialect, engine_url, redact, sqlite_path

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

_log = logging.getLogger(__name__)

SQLITE_BUSY_SECONDS = 60

# The storage calls Optuna's Study, Trial, samplers and _CachedStorage make; each is retried
# on a dropped connection (see storage._retry).
_RETRIED = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "_create_new_trial",
    "set_trial_param",
    "_set_trial_param",
    "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id",
    "get_best_trial",
    "_get_best_trial_id",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial",
    "get_trial_params",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_trials",
    "_get_trials",
    "get_n_trials",
)


def _engine_kwargs(url: str) -> dict[str, Any]:
    if dialect(url) == "sqlite":
        # Several processes (driver, dashboard, a second launcher) share one file:
        # wait for the write lock instead of failing at once.
        return {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
    # Check each pooled connection before use: one the server dropped is replaced, not used.
    return {"pool_pre_ping": True, "pool_recycle": 300}


def _retrying_storage_class() -> type[RDBStorage]:
    from optuna.storages import RDBStorage

    def wrap(name: str) -> Any:
        method = getattr(RDBStorage, name)

        def retried(self: Any, *args: Any, **kwargs: Any) -> Any:
            return retrying(lambda: method(self, *args, **kwargs))

        retried.__name__ = name
        retried.__doc__ = method.__doc__
        return retried

    body = {name: wrap(name) for name in _RETRIED if hasattr(RDBStorage, name)}
    body["__module__"] = __name__
    body["__doc__"] = "Optuna's RDBStorage whose calls wait out a dropped or refused connection."
    return type("RetryingRDBStorage", (RDBStorage,), body)


_RETRYING: type[RDBStorage] | None = None


def retrying_storage_class() -> type[RDBStorage]:
    """The :class:`optuna.storages.RDBStorage` subclass :func:`open_storage` returns (built on first use)."""
    global _RETRYING
    if _RETRYING is None:
        _RETRYING = _retrying_storage_class()
        globals()["RetryingRDBStorage"] = _RETRYING  # so that pickle finds the class by name
    return _RETRYING


def __getattr__(name: str) -> Any:
    if name == "RetryingRDBStorage":
        return retrying_storage_class()
    raise AttributeError(name)


def close_storage(storage: Any) -> None:
    """Close the connection pool of a storage :func:`open_storage` returned; safe to call twice."""
    backend = getattr(storage, "_backend", storage)
    engine = getattr(backend, "engine", None)
    try:
        if hasattr(backend, "scoped_session"):
            backend.scoped_session.remove()
    finally:
        if engine is not None:
            engine.dispose()


def _use_wal(storage: Any) -> None:
    """Put a SQLite store in WAL mode: readers (the dashboard, ``status``) never block the writers.

    The mode is a property of the file, so setting it once is enough; it needs a local file
    system (not NFS), like SQLite's locking itself.
    """
    with storage.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode=WAL").scalar()
    if str(mode).lower() != "wal":
        _log.info("SQLite store stays in journal mode %s", mode)


def open_storage(url: str, *, create_dirs: bool = True, create: bool = True) -> RDBStorage:
    """Open (and if needed create) the Optuna RDB storage at ``url``.

    Args:
        url: A SQLAlchemy URL: ``sqlite:///studies.db``, ``postgresql://user@host/db``, ...
        create_dirs: Create the parent folder of a SQLite file when it is missing.
        create: Create a SQLite file that does not exist yet. Commands that only
            read or edit existing studies pass ``False``, so a mistyped path is an
            error instead of a new, empty store (and its folders).

    Returns:
        The storage, with its tables created or upgraded-checked.

    Raises:
        StorageError: If the URL is unsupported, its driver is missing, the server
            cannot be reached, or the SQLite file is missing (``create=False``) or
            cannot be created; the message never contains the password.
    """
    shown = redact(url)
    url = engine_url(url)
    path = sqlite_path(url)
    if path is not None and not create and not path.exists():
        raise StorageError(
            f"no study store at {shown} ({path} does not exist): check --storage, STUDIES_STORAGE and the "
            "folder you run in; `studies launch` creates a store"
        )
    if path is not None and create and create_dirs:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(
                f"cannot open storage {shown}: cannot create the folder {path.parent} "
                f"({_not_a_folder(path.parent) or e.strerror or e}): {_SQLITE_ADVICE}"
            ) from None

    import sqlalchemy.exc

    try:
        storage = retrying_storage_class()(url, engine_kwargs=_engine_kwargs(url))
        if path is not None:
            retrying(lambda: _use_wal(storage), what=f"the store {shown}")
        return storage
    except (sqlalchemy.exc.SQLAlchemyError, OSError, RuntimeError, ValueError, ImportError) as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        if path is not None:
            raise StorageError(f"cannot open storage {shown}: {reason} ({_sqlite_problem(path)})") from e
        raise StorageError(
            f"cannot open storage {shown}: {redact(reason)} "
            "(check the server is running and the URL, or use --storage sqlite:///studies.db)"
        ) from e


_SQLITE_ADVICE = "give --storage sqlite:///PATH with PATH in a folder you can write to"


def _not_a_folder(folder: Path) -> str:
    """Which part of ``folder`` is a file, if one is (``mkdir`` only says "File exists" or "Not a directory")."""
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            return f"{part} is a file, not a folder"
    return ""


def _sqlite_problem(path: Path) -> str:
    """What is likely wrong with a SQLite file that would not open, and the fix."""
    folder = path.parent
    if path.is_dir():
        return f"{path} is a folder, not a SQLite file: {_SQLITE_ADVICE}"
    if not folder.is_dir():
        return f"{_not_a_folder(folder) or f'the folder {folder} does not exist'}: {_SQLITE_ADVICE}"
    if not path.exists():
        return f"{path} cannot be created: the folder {folder} is not writable; make it writable, or {_SQLITE_ADVICE}"
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite writes a journal beside the file: the folder must be writable, not only the file.
        return f"the folder {folder} is not writable (SQLite writes a journal beside the file): {_SQLITE_ADVICE}"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable: fix its permissions, or {_SQLITE_ADVICE}"
    return f"check that {path} is a SQLite file made by this tool, or {_SQLITE_ADVICE}"
