"""LeaseBook, Lease and Heartbeat: which launchers are alive, on every store."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from storage import Heartbeat, Lease, LeaseBook, StorageError

Spawn = Callable[..., subprocess.Popen[str]]
STALE_AFTER = 30.0


@pytest.fixture
def book(store_url: str) -> Iterator[LeaseBook]:
    book = LeaseBook(store_url)
    yield book
    book.close()


def _only(book: LeaseBook, study: str) -> Lease:
    (lease,) = book.leases(study)
    return lease


def test_acquire_registers_a_live_lease_of_this_process(book: LeaseBook, study_name: str) -> None:
    before = time.time()
    launcher_id = book.acquire(study_name)
    lease = _only(book, study_name)
    assert lease.launcher_id == launcher_id
    assert (lease.study_name, lease.host, lease.pid) == (study_name, socket.gethostname(), os.getpid())
    # The database's clock (SQLite's has millisecond resolution), on this host the same as ours.
    assert before - 0.01 <= lease.started_at == lease.heartbeat_at <= time.time() + 0.01
    assert lease.ended_at is None
    assert lease.live(STALE_AFTER)
    assert book.live_leases(study_name, STALE_AFTER) == [lease]


def test_each_acquire_is_a_separate_lease(book: LeaseBook, study_name: str) -> None:
    ids = {book.acquire(study_name) for _ in range(3)}
    assert len(ids) == 3
    assert {lease.launcher_id for lease in book.live_leases(study_name, STALE_AFTER)} == ids


def test_beat_refreshes_the_heartbeat(book: LeaseBook, study_name: str) -> None:
    launcher_id = book.acquire(study_name)
    first = _only(book, study_name).heartbeat_at
    time.sleep(0.02)
    book.beat(launcher_id)
    lease = _only(book, study_name)
    assert lease.heartbeat_at > first
    assert lease.started_at == first


def test_release_ends_the_lease(book: LeaseBook, study_name: str) -> None:
    launcher_id = book.acquire(study_name)
    book.release(launcher_id)
    lease = _only(book, study_name)
    assert lease.ended_at is not None
    assert not lease.live(STALE_AFTER)
    assert book.live_leases(study_name, STALE_AFTER) == []


def test_a_stale_heartbeat_is_not_live(book: LeaseBook, study_name: str) -> None:
    book.acquire(study_name)
    time.sleep(0.3)
    assert book.live_leases(study_name, stale_after=0.2) == []
    assert book.live_leases(study_name, stale_after=STALE_AFTER) != []


def test_a_lease_of_a_dead_process_on_this_host_is_not_live(
    book: LeaseBook, store_url: str, study_name: str, spawn_worker: Spawn
) -> None:
    proc = spawn_worker("lease", store_url, study_name)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lease = _only(book, study_name)
    assert lease.launcher_id == out.strip()
    assert lease.pid == proc.pid
    assert lease.ended_at is None
    # The heartbeat is fresh, but the process is gone: dead at once, no waiting for staleness.
    assert time.time() - lease.heartbeat_at < STALE_AFTER
    assert not lease.live(STALE_AFTER)
    assert book.live_leases(study_name, STALE_AFTER) == []


def test_a_killed_but_unreaped_process_is_not_live(sqlite_url: str, study_name: str, spawn_worker: Spawn) -> None:
    # Kill a process and do not wait for it: a zombie still has a pid, but it is no launcher.
    proc = spawn_worker("hold", sqlite_url, study_name)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    lease = Lease("x", study_name, socket.gethostname(), proc.pid, time.time(), time.time(), None)
    assert lease.live(STALE_AFTER)
    proc.kill()
    deadline = time.time() + 10
    while lease.live(STALE_AFTER) and time.time() < deadline:
        time.sleep(0.01)
    assert not lease.live(STALE_AFTER)
    assert proc.poll() is not None  # only now reaped


def test_liveness_rules_of_a_lease() -> None:
    now = time.time()
    here, there, me = socket.gethostname(), f"{socket.gethostname()}-elsewhere", os.getpid()
    assert Lease("a", "s", here, me, now, now, None).live(STALE_AFTER, now=now)
    assert not Lease("a", "s", here, me, now, now, now).live(STALE_AFTER, now=now)  # released
    assert not Lease("a", "s", here, me, now, now - 31, None).live(STALE_AFTER, now=now)  # stale
    # Another host's pid cannot be checked from here: only the heartbeat tells.
    assert Lease("a", "s", there, 2**22 + 1, now, now, None).live(STALE_AFTER, now=now)
    assert not Lease("a", "s", there, 2**22 + 1, now, now - 31, None).live(STALE_AFTER, now=now)
    assert Lease("a", "s", here, me, now, now, None).live(STALE_AFTER, now=now + 29)


def test_leases_are_per_study_and_forget_removes_only_that_study(book: LeaseBook, study_name: str) -> None:
    other = f"{study_name}-other"
    book.acquire(study_name)
    book.acquire(study_name)
    kept = book.acquire(other)
    assert len(book.leases(study_name)) == 2
    book.forget(study_name)
    assert book.leases(study_name) == []
    assert [lease.launcher_id for lease in book.leases(other)] == [kept]


def test_two_books_on_one_store_see_the_same_leases(book: LeaseBook, store_url: str, study_name: str) -> None:
    second = LeaseBook(store_url)  # another launcher, or `studies status`
    try:
        launcher_id = second.acquire(study_name)
        assert _only(book, study_name).launcher_id == launcher_id
    finally:
        second.close()


def test_heartbeat_keeps_a_lease_fresh_until_stopped(book: LeaseBook, study_name: str) -> None:
    launcher_id = book.acquire(study_name)
    started = _only(book, study_name).heartbeat_at
    heartbeat = Heartbeat(book, launcher_id, interval=0.05).start()
    try:
        deadline = time.time() + 10
        while _only(book, study_name).heartbeat_at == started and time.time() < deadline:
            time.sleep(0.02)
        assert _only(book, study_name).heartbeat_at > started
        assert book.live_leases(study_name, stale_after=1.0) != []
    finally:
        heartbeat.stop()
    stopped_at = _only(book, study_name).heartbeat_at
    time.sleep(0.2)
    assert _only(book, study_name).heartbeat_at == stopped_at


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg2://postgres:hunter2@127.0.0.1:1/test", "sqlite:////nonexistent-folder/sub/studies.db"],
)
def test_an_unusable_store_raises_storage_error_without_the_password(url: str) -> None:
    with pytest.raises(StorageError) as info:
        LeaseBook(url)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("skew", [-300.0, 300.0])
def test_a_lease_written_by_a_host_whose_clock_is_off_is_judged_by_the_database_clock(
    book: LeaseBook, study_name: str, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    # The writer's clock is five minutes off; the heartbeat it writes is still the database's time.
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + skew)
    launcher_id = book.acquire(study_name)
    book.beat(launcher_id)
    monkeypatch.setattr(time, "time", real)
    lease = _only(book, study_name)
    assert abs(lease.heartbeat_at - book.now()) < 5  # not 300 s off
    assert [x.launcher_id for x in book.live_leases(study_name, stale_after=10.0)] == [launcher_id]
    # And it still goes stale on that clock: no beat for longer than the limit is dead.
    time.sleep(1.2)
    assert book.live_leases(study_name, stale_after=1.0) == []


@pytest.mark.postgres
def test_a_heartbeat_that_cannot_renew_its_lease_says_it_was_lost(private_postgres, study_name: str) -> None:
    book = LeaseBook(private_postgres.url)
    try:
        launcher_id = book.acquire(study_name)
        heartbeat = Heartbeat(book, launcher_id, interval=0.1, stale_after=1.0).start()
        time.sleep(0.3)
        assert not heartbeat.lost
        private_postgres.stop()  # the database goes away
        deadline = time.time() + 10
        while not heartbeat.lost and time.time() < deadline:
            time.sleep(0.05)
        assert heartbeat.lost
        private_postgres.start()
        time.sleep(0.5)
        assert heartbeat.lost  # once lost, a launcher stays stopped: a successor may have taken over
        heartbeat.stop()
    finally:
        book.close()
