"""StudyLock: one holder at a time across processes, on every store."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from storage import StudyLock, study_lock

Spawn = Callable[..., subprocess.Popen[str]]
PROCESSES, ROUNDS = 4, 15


def _race(spawn_worker: Spawn, folder: Path, url: str, study: str, mode: str) -> int:
    """Let PROCESSES processes each add 1 to a file ROUNDS times; return the final count."""
    counter, go = folder / "counter", folder / "go"
    counter.write_text("0")
    procs = [spawn_worker("increment", url, study, counter, ROUNDS, mode, go) for _ in range(PROCESSES)]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.communicate()[1]
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    return int(counter.read_text())


@pytest.mark.timeout(60)
def test_the_counter_race_loses_updates_without_a_lock(spawn_worker: Spawn, tmp_path: Path, sqlite_url: str) -> None:
    # The control: without it, the locked test below would pass with a lock that does nothing.
    assert _race(spawn_worker, tmp_path, sqlite_url, "s", "nolock") < PROCESSES * ROUNDS


@pytest.mark.timeout(60)
def test_study_lock_excludes_other_processes(
    spawn_worker: Spawn, tmp_path: Path, store_url: str, study_name: str
) -> None:
    assert _race(spawn_worker, tmp_path, store_url, study_name, "lock") == PROCESSES * ROUNDS


def _acquire_in_thread(url: str, study: str) -> tuple[threading.Thread, threading.Event, threading.Event]:
    """Take the lock in a thread; returns it, an event set once held, and one that lets it go."""
    held, release = threading.Event(), threading.Event()

    def run() -> None:
        with study_lock(url, study):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, held, release


def _hold_in_process(spawn_worker: Spawn, url: str, study: str) -> subprocess.Popen[str]:
    proc = spawn_worker("hold", url, study)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held", proc.communicate()[1]
    return proc


@pytest.mark.timeout(60)
def test_a_killed_holder_frees_the_lock(spawn_worker: Spawn, store_url: str, study_name: str) -> None:
    holder = _hold_in_process(spawn_worker, store_url, study_name)
    thread, held, release = _acquire_in_thread(store_url, study_name)
    assert not held.wait(0.5), "took a lock another process holds"

    holder.kill()  # a crashed launcher must not wedge the study
    holder.wait()
    assert held.wait(15), "the lock of a killed process was never released"
    release.set()
    thread.join(10)


@pytest.mark.timeout(60)
def test_locks_of_different_studies_are_independent(spawn_worker: Spawn, store_url: str, study_name: str) -> None:
    _hold_in_process(spawn_worker, store_url, study_name)
    thread, held, release = _acquire_in_thread(store_url, f"{study_name}-other")
    assert held.wait(10), "a lock on another study blocked"
    release.set()
    thread.join(10)


def test_a_study_lock_is_reusable(store_url: str, study_name: str) -> None:
    lock = StudyLock(store_url, study_name)
    try:
        for _ in range(3):
            with lock:
                pass
    finally:
        lock.close()
    with study_lock(store_url, study_name):
        pass


def test_the_lock_is_released_when_the_body_raises(store_url: str, study_name: str) -> None:
    lock = StudyLock(store_url, study_name)
    with pytest.raises(RuntimeError), lock:
        raise RuntimeError("boom")
    thread, held, release = _acquire_in_thread(store_url, study_name)
    assert held.wait(10), "the lock stayed held after an exception"
    release.set()
    thread.join(10)
    lock.close()
