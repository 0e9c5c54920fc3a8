"""Transient database faults cost a pause, not the study.

A server restart, an idle-connection drop or ``pg_terminate_backend`` breaks the
connections a launch holds. Pools check a connection before use
(``pool_pre_ping``), and every store call goes through :func:`retrying`, which
waits with backoff while the database is unreachable, up to an outage limit
(``STUDIES_STORE_OUTAGE_SECONDS``, default 600). Past it,
:class:`StoreUnreachable` ends the launch with one line.

Only faults of the connection are retried (and SQLite's "database is locked"):
a wrong table or a constraint error fails at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from storage._urls import StorageError

_log = logging.getLogger(__name__)

OUTAGE_ENV = "STUDIES_STORE_OUTAGE_SECONDS"
DEFAULT_OUTAGE_SECONDS = 600.0
_FIRST_DELAY = 0.2
_MAX_DELAY = 5.0

T = TypeVar("T")


class StoreUnreachable(StorageError):
    """The store stayed unreachable for longer than the outage limit."""


def outage_limit() -> float:
    """Seconds a launch waits for an unreachable store before it gives up (``STUDIES_STORE_OUTAGE_SECONDS``)."""
    raw = os.environ.get(OUTAGE_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_OUTAGE_SECONDS
    except ValueError:
        raise StorageError(f"{OUTAGE_ENV}={raw!r} is not a number of seconds: give e.g. {OUTAGE_ENV}=600") from None
    if value < 0:
        raise StorageError(f"{OUTAGE_ENV}={raw!r} is negative: give the seconds to wait for the store, e.g. 600")
    return value


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a dropped or refused connection, or a busy SQLite file."""
    import sqlalchemy.exc as sa_exc

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError):
            if current.connection_invalidated:
                return True
            text = str(current.orig or current).lower()
            if "sqlite" in type(current.orig).__module__:
                return "locked" in text or "busy" in text
            if isinstance(current, (sa_exc.OperationalError, sa_exc.InterfaceError)):
                return True
        current = current.__cause__ or current.__context__
    return False


def _reason(error: BaseException) -> str:
    cause: BaseException = error
    while cause.__cause__ is not None:
        cause = cause.__cause__
    orig = getattr(cause, "orig", None) or cause
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0]}" if lines else type(orig).__name__


class _Outage:
    """When the current outage began, shared by every thread of the process (one log line per outage)."""

    lock = threading.Lock()
    since: float | None = None


def retrying(call: Callable[[], T], *, what: str = "the study store", limit: float | None = None) -> T:
    """Run ``call``; on a transient fault wait with backoff and retry, for at most ``limit`` seconds.

    Raises:
        StoreUnreachable: When the fault lasts longer than ``limit`` (default :func:`outage_limit`).
    """
    from storage._urls import redact

    limit = outage_limit() if limit is None else limit
    started: float | None = None
    delay = _FIRST_DELAY
    while True:
        try:
            result = call()
        except Exception as e:
            if not is_transient(e):
                raise
            now = time.monotonic()
            if started is None:
                started = now
                with _Outage.lock:
                    if _Outage.since is None:
                        _Outage.since = now
                        reason = redact(_reason(e))
                        _log.warning("%s is unreachable (%s): retrying for up to %.0f s", what, reason, limit)
            waited = now - started
            if waited >= limit:
                raise StoreUnreachable(
                    f"{what} was unreachable for {waited:.0f} s ({redact(_reason(e))}), longer than "
                    f"{OUTAGE_ENV}={limit:g}"
                ) from e
            time.sleep(min(delay, max(0.0, limit - waited)))
            delay = min(delay * 2, _MAX_DELAY)
            continue
        if started is not None:
            with _Outage.lock:
                if _Outage.since is not None:
                    _log.warning("%s is reachable again after %.1f s", what, time.monotonic() - _Outage.since)
                    _Outage.since = None
        return result
