"""A launch's hold on its study: the study lock, the launcher lease, the heartbeat, their connections.

One context manager owns all of them, so every way out of a launch (success,
a user error while the study is being opened, Ctrl-C, a crash in Ray) stops
the heartbeat, ends the lease and closes the connection pools::

    with StudyClaim(url, spec.name) as claim:
        with claim.lock:                      # "check, then act" across launchers
            study, created = open_or_create(storage, spec)
            claim.refuse_if_held(join)         # another live launcher, without --join
            claim.acquire()                    # this launch's lease row
        claim.start_heartbeat()
        ...                                    # run the trials
"""

from __future__ import annotations

import logging
import os
import threading
from types import TracebackType
from typing import Any

from storage import Heartbeat, Lease, LeaseBook, StudyLock
from studies._errors import ConflictError

_log = logging.getLogger(__name__)

# Both are read at import; a launcher's stale limit must be the same on every host of a study.
HEARTBEAT_SECONDS = float(os.environ.get("STUDIES_HEARTBEAT_SECONDS", "10"))
STALE_AFTER_SECONDS = float(os.environ.get("STUDIES_STALE_AFTER_SECONDS", str(6 * HEARTBEAT_SECONDS)))


class StudyClaim:
    """This launch's lock, lease and heartbeat on one study in one store.

    Args:
        url: The store's URL.
        study_name: The study.
        heartbeat_seconds: How often the lease is renewed (default ``STUDIES_HEARTBEAT_SECONDS``, 10).
        stale_after: How old a heartbeat may be before its launcher counts as dead
            (default ``STUDIES_STALE_AFTER_SECONDS``, six heartbeats).
    """

    def __init__(
        self,
        url: str,
        study_name: str,
        *,
        heartbeat_seconds: float | None = None,
        stale_after: float | None = None,
    ) -> None:
        self.study_name = study_name
        self.heartbeat_seconds = HEARTBEAT_SECONDS if heartbeat_seconds is None else heartbeat_seconds
        self.stale_after = STALE_AFTER_SECONDS if stale_after is None else stale_after
        self.book = LeaseBook(url)
        try:
            self.lock = StudyLock(url, study_name)
        except BaseException:
            self.book.close()
            raise
        self.launcher_id: str | None = None
        self._heartbeat: Heartbeat | None = None
        self._reaper: threading.Thread | None = None
        self._closing = threading.Event()

    def __enter__(self) -> StudyClaim:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def live_leases(self) -> list[Lease]:
        """The leases of launchers that may still be running this study (this one included)."""
        return self.book.live_leases(self.study_name, self.stale_after)

    def refuse_if_held(self, join: bool) -> None:
        """Refuse to run beside a live launcher unless ``join`` (``--join``) is set.

        Raises:
            ConflictError: Naming the other launcher's host and pid.
        """
        live = [lease for lease in self.live_leases() if lease.launcher_id != self.launcher_id]
        if live and not join:
            holder = live[0]
            raise ConflictError(
                f"study {self.study_name!r} is being run by another launcher (host {holder.host}, pid {holder.pid}): "
                "add --join to work on it together, or stop that launcher first"
            )

    def acquire(self) -> str:
        """Write this launch's lease row; return its id (stored on every trial it starts)."""
        self.launcher_id = self.book.acquire(self.study_name)
        return self.launcher_id

    def start_heartbeat(self, study: Any = None) -> None:
        """Renew the lease every ``heartbeat_seconds`` until the claim is closed.

        Args:
            study: When given, a second thread reconciles dead co-launchers' orphans in it
                every ``heartbeat_seconds`` (not the heartbeat's own thread: waiting for the
                study lock must never delay a beat).
        """
        if self.launcher_id is None:
            raise RuntimeError("acquire() the lease before starting its heartbeat")
        self._heartbeat = Heartbeat(self.book, self.launcher_id, self.heartbeat_seconds, self.stale_after).start()
        if study is not None:
            self._reaper = threading.Thread(target=self._reap_until_closed, args=(study,), name="studies-reaper")
            self._reaper.daemon = True
            self._reaper.start()

    def _reap_until_closed(self, study: Any) -> None:
        while not self._closing.wait(self.heartbeat_seconds):
            try:
                self.reap(study)
            except Exception as e:  # a store outage: the heartbeat reports it; try again next round
                _log.warning("could not reconcile dead launchers' trials: %s: %s", type(e).__name__, e)

    @property
    def lease_lost(self) -> bool:
        """Whether this launch's lease went unrenewed for longer than the stale limit.

        Another launcher may have judged this one dead by then, failed its running
        trials and queued them again: the launch must stop rather than race it.
        """
        return self._heartbeat is not None and self._heartbeat.lost

    def reap(self, study: Any) -> list[int]:
        """Reconcile the orphans of dead co-launchers, as resume does; return the trials marked FAIL."""
        from studies._store import reconcile_orphans

        keep = (self.launcher_id,) if self.launcher_id else ()
        with self.lock:
            return reconcile_orphans(study, self.book, self.stale_after, keep=keep)

    def close(self) -> None:
        """Stop the heartbeat, end the lease and close every connection; safe to call twice."""
        heartbeat, self._heartbeat = self._heartbeat, None
        reaper, self._reaper = self._reaper, None
        self._closing.set()
        try:
            if reaper is not None:
                reaper.join(timeout=self.heartbeat_seconds + 30)
            launcher_id, self.launcher_id = self.launcher_id, None
            if heartbeat is not None:
                heartbeat.stop()
            if launcher_id is not None:
                try:
                    self.book.release(launcher_id)
                except Exception as e:  # the lease goes stale on its own; the launch's own error matters more
                    _log.warning("could not end lease %s: %s (it will be judged stale)", launcher_id[:8], e)
        finally:
            self.book.close()
            self.lock.close()
