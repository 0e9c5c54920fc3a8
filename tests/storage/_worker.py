"""A second process for the storage tests: run as ``python _worker.py COMMAND ARGS...``.

Commands:
    increment URL STUDY COUNTER N lock|nolock GO
        Print ``ready``, wait for the file GO, then N times: read the integer in COUNTER,
        sleep, write it + 1; each round under ``StudyLock(URL, STUDY)`` or without any lock.
    hold URL STUDY
        Take the study lock, print ``held``, and sleep until killed.
    lease URL STUDY
        Acquire a lease, print its id, and exit without releasing it (a crashed launcher).
    crash TARGET VERSION FILES POINT
        Replace TARGET with VERSION once, and SIGKILL itself at POINT: ``between-renames``
        (the old model moved aside, the new one not yet in place) or ``during-cleanup``
        (half of the old model's files deleted).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from storage import LeaseBook, StudyLock, atomic_dir


def write_version(folder: Path, version: int, files: int) -> None:
    """A model version: FILES files that each name VERSION, plus a manifest written last."""
    for i in range(files):
        (folder / f"part-{i:03d}.txt").write_text(f"version {version}\n", encoding="utf-8")
    (folder / "MANIFEST").write_text(f"{version} {files}\n", encoding="utf-8")


def _increment(url: str, study: str, counter: Path, n: int, locked: bool, go: Path) -> None:
    lock = StudyLock(url, study) if locked else None
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    scratch = counter.with_name(f"{counter.name}.{os.getpid()}")
    for _ in range(n):
        with lock or contextlib.nullcontext():
            value = int(counter.read_text())
            time.sleep(0.002)  # the window in which an unlocked peer reads the same value
            scratch.write_text(str(value + 1))
            os.replace(scratch, counter)  # readers never see a half-written number
    if lock is not None:
        lock.close()


def _hold(url: str, study: str) -> None:
    with StudyLock(url, study):
        print("held", flush=True)
        time.sleep(600)


def _lease(url: str, study: str) -> None:
    print(LeaseBook(url).acquire(study), flush=True)


def _crash(target: Path, version: int, files: int, point: str) -> None:
    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "between-renames":
        rename = os.rename
        calls = []

        def rename_then_die(src: object, dst: object) -> None:
            calls.append(src)
            if len(calls) == 2:
                die()
            rename(src, dst)  # type: ignore[arg-type]

        os.rename = rename_then_die  # type: ignore[assignment]
    elif point == "during-cleanup":

        def rmtree_halfway(path: object, ignore_errors: bool = False) -> None:
            parts = sorted(Path(path).iterdir())  # type: ignore[arg-type]
            for part in parts[: len(parts) // 2]:
                part.unlink()
            die()

        shutil.rmtree = rmtree_halfway  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown crash point {point}")
    with atomic_dir(target) as staging:
        write_version(staging, version, files)
    raise SystemExit("did not crash")


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "increment":
        url, study, counter, n, mode, go = args
        _increment(url, study, Path(counter), int(n), mode == "lock", Path(go))
    elif command == "hold":
        _hold(*args)
    elif command == "lease":
        _lease(*args)
    elif command == "crash":
        _crash(Path(args[0]), int(args[1]), int(args[2]), args[3])
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
