"""Open the Optuna study store behind a URL, with errors a user can act on."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from storage._urls import StorageError, dialect, engine_url, redact, sqlite_path

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

_log = logging.getLogger(__name__)


def _engine_kwargs(url: str) -> dict[str, Any]:
    if dialect(url) == "sqlite":
        # Several processes (driver, dashboard, a second launcher) share one file:
        # wait for the write lock instead of failing at once.
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True, "pool_recycle": 300}


def open_storage(url: str, *, create_dirs: bool = True) -> RDBStorage:
    """Open (and if needed create) the Optuna RDB storage at ``url``.

    Args:
        url: A SQLAlchemy URL: ``sqlite:///studies.db``, ``postgresql://user@host/db``, ...
        create_dirs: Create the parent folder of a SQLite file when it is missing.

    Returns:
        The storage, with its tables created or upgraded-checked.

    Raises:
        StorageError: If the URL is unsupported, its driver is missing, or the server
            cannot be reached; the message never contains the password.
    """
    shown = redact(url)
    url = engine_url(url)
    path = sqlite_path(url)
    if path is not None and create_dirs:
        path.parent.mkdir(parents=True, exist_ok=True)

    import optuna
    import sqlalchemy.exc

    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
    except (sqlalchemy.exc.SQLAlchemyError, OSError, RuntimeError, ValueError, ImportError) as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise StorageError(
            f"cannot open storage {shown}: {redact(reason)} "
            "(check the server is running and the URL, or use --storage sqlite:///studies.db)"
        ) from e
