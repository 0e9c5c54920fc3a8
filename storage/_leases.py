"""Launcher leases: which processes are working on a study right now.

Each launch holds a row in ``studies_launchers`` and refreshes its heartbeat
every few seconds. A lease is *live* while its heartbeat is fresh and it has
not ended; a lease on this host whose process no longer exists is dead at
once, without waiting for the heartbeat to go stale. Resume uses this to tell
a crashed launcher (its RUNNING trials are orphans) from a live one.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from storage._urls import StorageError, engine_url, redact

_metadata = sa.MetaData()
_table = sa.Table(
    "studies_launchers",
    _metadata,
    sa.Column("launcher_id", sa.String(64), primary_key=True),
    sa.Column("study_name", sa.String(512), nullable=False, index=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float, nullable=True),
)


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
        """Whether the launcher may still be running (see the module docstring)."""
        if self.ended_at is not None:
            return False
        if self.host == socket.gethostname() and not _pid_alive(self.pid):
            return False
        return (now or time.time()) - self.heartbeat_at < stale_after


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
    """Reads and writes the lease rows of one store."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine = sa.create_engine(engine_url(url), pool_pre_ping=True)
        try:
            _metadata.create_all(self._engine)
        except sa.exc.SQLAlchemyError as e:
            raise StorageError(f"cannot create the launcher table in {redact(url)}: {type(e).__name__}") from e

    def leases(self, study_name: str) -> list[Lease]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_table).where(_table.c.study_name == study_name)).mappings().all()
        return [Lease(**dict(r)) for r in rows]

    def live_leases(self, study_name: str, stale_after: float) -> list[Lease]:
        return [lease for lease in self.leases(study_name) if lease.live(stale_after)]

    def acquire(self, study_name: str) -> str:
        """Register a new launcher on ``study_name``; returns its id."""
        launcher_id = uuid.uuid4().hex
        now = time.time()
        row: dict[str, Any] = {
            "launcher_id": launcher_id,
            "study_name": study_name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": now,
            "heartbeat_at": now,
            "ended_at": None,
        }
        with self._engine.begin() as conn:
            conn.execute(_table.insert().values(**row))
        return launcher_id

    def beat(self, launcher_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(_table.update().where(_table.c.launcher_id == launcher_id).values(heartbeat_at=time.time()))

    def release(self, launcher_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(_table.update().where(_table.c.launcher_id == launcher_id).values(ended_at=time.time()))

    def forget(self, study_name: str) -> None:
        """Delete every lease row of a study (when the study itself is deleted)."""
        with self._engine.begin() as conn:
            conn.execute(_table.delete().where(_table.c.study_name == study_name))

    def close(self) -> None:
        self._engine.dispose()


class Heartbeat:
    """A daemon thread that refreshes one lease until stopped."""

    def __init__(self, book: LeaseBook, launcher_id: str, interval: float) -> None:
        self._book = book
        self._id = launcher_id
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studies-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._book.beat(self._id)
            except sa.exc.SQLAlchemyError:
                # A missed beat only makes the lease look stale sooner; the next one retries.
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)
