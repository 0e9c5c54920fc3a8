"""A cross-process lock per study, held around "check the budget, then ask".

Several launchers (two shells, or two machines against PostgreSQL) may work on
one study. Optuna creates trials atomically but cannot check a budget and create
a trial in one step, so launchers serialize that step with this lock:

* PostgreSQL: a session-level advisory lock (``pg_advisory_lock``);
* MySQL/MariaDB: ``GET_LOCK``;
* SQLite: an exclusive ``flock`` on a file beside the database (SQLite stores are
  single-machine anyway).

The lock is held for milliseconds and never across a training step.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from storage._retry import is_transient, retrying
from storage._urls import dialect, engine_url, redact, sqlite_path


def _key(study_name: str) -> int:
    digest = hashlib.sha256(f"studies-lock:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _mysql_name(study_name: str) -> str:
    # GET_LOCK names are at most 64 characters: a hash keeps long study names apart.
    return f"studies:{hashlib.sha256(study_name.encode()).hexdigest()[:48]}"


class StudyLock:
    """A re-usable lock on one study in one store; ``with lock: ...`` holds it."""

    def __init__(self, url: str, study_name: str) -> None:
        self._url = url
        self._study = study_name
        self._family = dialect(url)
        self._local = threading.Lock()
        self._engine: Any = None
        self._file: Path | None = None
        self._held: Any = None
        path = sqlite_path(url)
        if self._family == "sqlite" and path is not None:
            digest = hashlib.sha256(study_name.encode()).hexdigest()[:16]
            self._file = path.with_name(f".{path.name}.{digest}.lock")

    def _server_engine(self) -> Any:
        if self._engine is None:
            import sqlalchemy

            self._engine = sqlalchemy.create_engine(engine_url(self._url), pool_pre_ping=True, pool_size=1)
        return self._engine

    def __enter__(self) -> StudyLock:
        self._local.acquire()
        try:
            if self._family == "sqlite":
                if self._file is not None:
                    handle = self._file.open("a")
                    fcntl.flock(handle, fcntl.LOCK_EX)
                    self._held = handle
            else:
                self._held = retrying(self._take, what=f"the store {redact(self._url)}")
        except BaseException:
            self._local.release()
            raise
        return self

    def _take(self) -> Any:
        import sqlalchemy

        conn = self._server_engine().connect()
        try:
            if self._family == "postgresql":
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": _key(self._study)})
            else:
                # MariaDB reads a negative timeout as "do not wait": wait in rounds, and check the answer
                # (1 = taken, 0 = timed out), or two launchers would both think they hold it.
                while (
                    conn.execute(sqlalchemy.text("SELECT GET_LOCK(:k, 5)"), {"k": _mysql_name(self._study)}).scalar()
                    != 1
                ):
                    pass
        except BaseException:
            conn.close()
            raise
        return conn

    def __exit__(self, *exc: object) -> None:
        held, self._held = self._held, None
        try:
            if held is None:
                return
            if self._family == "sqlite":
                fcntl.flock(held, fcntl.LOCK_UN)
                held.close()
            else:
                import sqlalchemy

                with contextlib.closing(held):
                    try:
                        if self._family == "postgresql":
                            held.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": _key(self._study)})
                        else:
                            held.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:k)"), {"k": _mysql_name(self._study)})
                    except sqlalchemy.exc.DBAPIError as e:
                        # The server dropped the session, and a session-level lock goes with it.
                        if not is_transient(e):
                            raise
                        held.invalidate()
        finally:
            self._local.release()

    def close(self) -> None:
        """Release the server connection pool, if one was opened."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


@contextlib.contextmanager
def study_lock(url: str, study_name: str) -> Iterator[None]:
    """Hold the study's lock once; for repeated use keep a :class:`StudyLock`."""
    lock = StudyLock(url, study_name)
    try:
        with lock:
            yield
    finally:
        lock.close()
