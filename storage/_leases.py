"""Launcher leases: which processes are working on a study right now.

Each launch holds a row in ``studies_launchers`` and refreshes its heartbeat
every few seconds. A lease is *live* while its heartbeat is fresh and it has
not ended; a lease on this host whose process no longer exists is dead at
once, without waiting for the heartbeat to go stale. Resume and running
launchers use this to tell a crashed launcher (its RUNNING trials are orphans)
from a live one.

Every time in the table is the database server's clock (seconds since the
epoch), written and compared in SQL: hosts whose clocks disagree still judge a
lease alike. A heartbeat that cannot be written is logged and retried; the
:class:`Heartbeat` says when its lease has gone unrenewed for longer than the
stale limit, so its launcher stops instead of racing a successor that may have
declared it dead.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from storage._retry import is_transient, retrying
from storage._urls import StorageError, dialect, engine_url, redact

_log = logging.getLogger(__name__)

_metadata = sa.MetaData()
_table = sa.Table(
    "studies_launchers",
    _metadata,
    sa.Column("launcher_id", sa.String(64), primary_key=True),
    sa.Column("study_name", sa.String(512), nullable=False, index=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    # Double precision: MySQL's plain FLOAT is single precision, 128 s apart at today's epoch.
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("heartbeat_at", sa.Double, nullable=False),
    sa.Column("ended_at", sa.Double, nullable=True),
)

_RELEASE_RETRY_SECONDS = 5.0

# The database's own clock, as seconds since the epoch.
_NOW_SQL = {
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
    "postgresql": "EXTRACT(EPOCH FROM statement_timestamp())",
    "mysql": "UNIX_TIMESTAMP(NOW(6))",
}


@dataclass(frozen=True)
class Lease:
    launcher_id: str
    study_name: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    ended_at: float | None

    def live(self, stale_after: float, now: float | None = None) -> bool:
        """Whether the launcher may still be running (see the module docstring).

        Args:
            stale_after: How old (seconds) a heartbeat may be.
            now: The database's clock (:meth:`LeaseBook.now`); this host's clock only when not given.
        """
        if self.ended_at is not None:
            return False
        if self.host == socket.gethostname() and not _pid_alive(self.pid):
            return False
        return (time.time() if now is None else now) - self.heartbeat_at < stale_after


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class LeaseBook:
    """Reads and writes the lease rows of one store; every call waits out a dropped connection."""

    def __init__(self, url: str) -> None:
        self._url = url
        family = dialect(url)
        kwargs: dict[str, Any] = (
            {"connect_args": {"timeout": 60}} if family == "sqlite" else {"pool_pre_ping": True, "pool_recycle": 300}
        )
        self._engine = sa.create_engine(engine_url(url), **kwargs)
        self._now = sa.literal_column(_NOW_SQL[family], sa.Double)
        self._what = f"the store {redact(url)}"
        try:  # not retried: a store that cannot be reached when a command starts is a user error
            _metadata.create_all(self._engine)
        except sa.exc.SQLAlchemyError as e:
            self._engine.dispose()
            raise StorageError(f"cannot create the launcher table in {redact(url)}: {type(e).__name__}") from e

    def _run(self, statement: Any, *, write: bool = False, limit: float | None = None) -> Any:
        def once() -> Any:
            if write:
                with self._engine.begin() as conn:
                    return conn.execute(statement)
            with self._engine.connect() as conn:
                return conn.execute(statement).all()

        return retrying(once, what=self._what, limit=limit)

    def now(self) -> float:
        """The database server's clock, in seconds since the epoch."""
        return float(self._run(sa.select(self._now))[0][0])

    def leases(self, study_name: str) -> list[Lease]:
        rows = self._run(sa.select(_table).where(_table.c.study_name == study_name))
        return [Lease(**dict(r._mapping)) for r in rows]

    def live_leases(self, study_name: str, stale_after: float) -> list[Lease]:
        rows = self._run(sa.select(_table, self._now.label("db_now")).where(_table.c.study_name == study_name))
        leases = []
        for row in rows:
            fields = dict(row._mapping)
            now = float(fields.pop("db_now"))
            lease = Lease(**fields)
            if lease.live(stale_after, now):
                leases.append(lease)
        return leases

    def acquire(self, study_name: str) -> str:
        """Register a new launcher on ``study_name``; returns its id."""
        launcher_id = uuid.uuid4().hex
        row: dict[str, Any] = {
            "launcher_id": launcher_id,
            "study_name": study_name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self._now,
            "heartbeat_at": self._now,
            "ended_at": None,
        }
        self._run(_table.insert().values(**row), write=True)
        return launcher_id

    def beat(self, launcher_id: str) -> None:
        """Renew the lease once; a transient fault is raised, not retried (the heartbeat retries)."""
        with self._engine.begin() as conn:
            conn.execute(_table.update().where(_table.c.launcher_id == launcher_id).values(heartbeat_at=self._now))

    def release(self, launcher_id: str) -> None:
        """End a lease. Retried briefly only: an unreleased lease goes stale on its own."""
        statement = _table.update().where(_table.c.launcher_id == launcher_id).values(ended_at=self._now)
        self._run(statement, write=True, limit=_RELEASE_RETRY_SECONDS)

    def forget(self, study_name: str) -> None:
        """Delete every lease row of a study (when the study itself is deleted)."""
        self._run(_table.delete().where(_table.c.study_name == study_name), write=True)

    def close(self) -> None:
        self._engine.dispose()


class Heartbeat:
    """A daemon thread that renews one lease until stopped.

    A beat that fails is logged and retried every second; :attr:`lost` turns true
    once no beat has succeeded for ``stale_after`` seconds: by then another
    launcher may have judged this one dead.
    """

    def __init__(
        self,
        book: LeaseBook,
        launcher_id: str,
        interval: float,
        stale_after: float | None = None,
    ) -> None:
        self._book = book
        self._id = launcher_id
        self._interval = interval
        self._stale_after = stale_after if stale_after is not None else 6 * interval
        self._stop = threading.Event()
        self._last_ok = time.monotonic()
        self._failing_since: float | None = None
        self._lost = False
        self._thread = threading.Thread(target=self._run, name="studies-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    @property
    def lost(self) -> bool:
        """Whether the lease went unrenewed for longer than the stale limit (once true, stays true)."""
        if time.monotonic() - self._last_ok >= self._stale_after:
            self._lost = True
        return self._lost

    def _run(self) -> None:
        wait = self._interval
        while not self._stop.wait(wait):
            try:
                self._book.beat(self._id)
            except sa.exc.SQLAlchemyError as e:
                if not is_transient(e):
                    _log.warning("heartbeat of lease %s failed: %s", self._id[:8], type(e).__name__)
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                    _log.warning(
                        "cannot renew lease %s (%s): retrying; after %.0f s without renewal this launcher stops",
                        self._id[:8],
                        type(e).__name__,
                        self._stale_after,
                    )
                wait = min(1.0, self._interval)
                _ = self.lost  # latch it while it is true, even if a later beat succeeds
                continue
            if self._failing_since is not None:
                down = time.monotonic() - self._failing_since
                _log.warning("lease %s renewed again after %.1f s", self._id[:8], down)
                self._failing_since = None
            self._last_ok = time.monotonic()
            wait = self._interval

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)
