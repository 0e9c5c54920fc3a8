"""The model directory: atomic replacement, crash recovery, and clean-up of leftovers."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _worker import write_version

from storage import StorageError, atomic_dir, clean_stale, model_dir, recover

Spawn = Callable[..., subprocess.Popen[str]]
FILES = 20
CRASH_FILES = 8  # each file is fsynced: fewer keep the random-kill loop fast


def version_of(folder: Path) -> int:
    """The one version ``folder`` holds completely; fails on a missing, partial or mixed model."""
    assert folder.is_dir(), f"{folder} is missing"
    assert (folder / "MANIFEST").is_file(), f"{folder} has no MANIFEST: {sorted(p.name for p in folder.iterdir())}"
    version, files = map(int, (folder / "MANIFEST").read_text().split())
    parts = sorted(p.name for p in folder.iterdir() if p.name != "MANIFEST")
    assert parts == [f"part-{i:03d}.txt" for i in range(files)], f"{folder} is incomplete: {parts}"
    contents = {(folder / name).read_text() for name in parts}
    assert contents == {f"version {version}\n"}, f"{folder} mixes versions: {contents}"
    return version


def promote(target: Path, version: int, files: int = FILES) -> None:
    with atomic_dir(target) as staging:
        write_version(staging, version, files)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_model_dir_is_the_study_folder_under_the_root(tmp_path: Path) -> None:
    assert model_dir(tmp_path, "imdb-bert") == tmp_path / "imdb-bert"
    assert model_dir(str(tmp_path), "imdb-bert") == tmp_path / "imdb-bert"


def test_atomic_dir_creates_the_first_model_and_its_parents(tmp_path: Path) -> None:
    target = model_dir(tmp_path / "models" / "team", "s")
    promote(target, 1)
    assert version_of(target) == 1
    assert leftovers(target.parent) == []


def test_atomic_dir_replaces_the_previous_model_completely(tmp_path: Path) -> None:
    target = model_dir(tmp_path, "s")
    promote(target, 1, files=30)
    (target / "only-in-v1.bin").write_bytes(b"old weights")
    promote(target, 2, files=5)
    assert version_of(target) == 2  # no file of version 1 survives, not even extra ones
    assert leftovers(tmp_path) == []


def test_an_exception_inside_leaves_the_previous_model_untouched(tmp_path: Path) -> None:
    target = model_dir(tmp_path, "s")
    promote(target, 1)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(RuntimeError, match="copy failed"), atomic_dir(target) as staging:
        write_version(staging, 2, FILES // 2)
        raise RuntimeError("copy failed")
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert leftovers(tmp_path) == []


def test_an_exception_inside_a_first_promotion_leaves_nothing(tmp_path: Path) -> None:
    target = model_dir(tmp_path, "s")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as staging:
        write_version(staging, 1, 3)
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_parent_raises_storage_error(tmp_path: Path) -> None:
    (tmp_path / "models").write_text("a file where the folder should be")
    with pytest.raises(StorageError, match="cannot write the model directory"), atomic_dir(tmp_path / "models" / "s"):
        pass


def test_clean_stale_removes_only_leftovers(tmp_path: Path) -> None:
    promote(model_dir(tmp_path, "s"), 1)
    stale = [tmp_path / ".staging-s-0badc0de", tmp_path / ".retired-s-0badc0de"]
    for folder in stale:
        folder.mkdir()
        (folder / "weights.bin").write_bytes(b"x")
    (tmp_path / ".gitignore").write_text("*\n")
    other = tmp_path / ".staging-t-0badc0de"  # another study's promotion in progress
    other.mkdir()
    assert sorted(clean_stale(tmp_path, "s")) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitignore", ".staging-t-0badc0de", "s"]
    assert version_of(tmp_path / "s") == 1
    assert clean_stale(tmp_path, "s") == []
    assert clean_stale(tmp_path / "missing", "s") == []


def test_recover_does_nothing_without_a_crash(tmp_path: Path) -> None:
    target = model_dir(tmp_path, "s")
    assert recover(target) is None  # never promoted
    promote(target, 1)
    assert recover(target) is None
    assert version_of(target) == 1


def _crash(spawn_worker: Spawn, target: Path, version: int, point: str) -> None:
    proc = spawn_worker("crash", target, version, FILES, point)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err


@pytest.mark.timeout(60)
def test_a_crash_between_the_renames_is_recovered(tmp_path: Path, spawn_worker: Spawn) -> None:
    target = model_dir(tmp_path, "s")
    promote(target, 1)
    _crash(spawn_worker, target, 2, "between-renames")
    assert not target.exists()  # the window recover() exists for
    assert recover(target) == target
    assert version_of(target) == 1
    clean_stale(tmp_path, "s")
    assert leftovers(tmp_path) == []  # the new version's staging folder is gone too


@pytest.mark.timeout(60)
def test_a_crash_while_removing_the_old_model_keeps_the_new_one(tmp_path: Path, spawn_worker: Spawn) -> None:
    target = model_dir(tmp_path, "s")
    promote(target, 1)
    _crash(spawn_worker, target, 2, "during-cleanup")
    assert recover(target) is None
    assert version_of(target) == 2
    assert leftovers(tmp_path), "the half-deleted old model should still be beside it"
    clean_stale(tmp_path, "s")
    assert leftovers(tmp_path) == []


@pytest.mark.timeout(60)
def test_recover_after_two_crashes_restores_the_last_complete_model(tmp_path: Path, spawn_worker: Spawn) -> None:
    target = model_dir(tmp_path, "s")
    promote(target, 1)
    _crash(spawn_worker, target, 2, "during-cleanup")  # v2 in place, v1 half-deleted beside it
    _crash(spawn_worker, target, 3, "between-renames")  # v2 moved aside, v3 never placed
    recover(target)
    assert version_of(target) == 2


@pytest.mark.timeout(60)
def test_cleaning_the_root_keeps_another_studys_only_copy(tmp_path: Path, spawn_worker: Spawn) -> None:
    crashed, _other = model_dir(tmp_path, "a"), model_dir(tmp_path, "b")
    promote(crashed, 1)
    _crash(spawn_worker, crashed, 2, "between-renames")
    # What promoting study b does first (studies/_promote.py): tidy b's leftovers only.
    clean_stale(tmp_path, "b")
    recover(crashed)
    assert version_of(crashed) == 1


def _fork_replacing(target: Path, first: int) -> tuple[int, int]:
    """Fork a process that promotes versions first, first+1, ... forever; returns (pid, ready fd).

    A byte arrives on the fd once version ``first`` is in place. A fork, not a fresh
    interpreter, so the kill lands after milliseconds instead of after the imports.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            os.close(read_fd)
            version = first
            while True:
                promote(target, version, files=CRASH_FILES)
                if version == first:
                    os.write(write_fd, b"r")
                version += 1
        finally:
            os._exit(1)
    os.close(write_fd)
    return pid, read_fd


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sigkill_at_random_moments_never_leaves_a_missing_or_mixed_model(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = tmp_path / "models"
    target = model_dir(root, "s")
    promote(target, 0, files=CRASH_FILES)
    version = 0
    for _ in range(20):
        pid, ready = _fork_replacing(target, version + 1)
        try:
            assert os.read(ready, 1) == b"r", "the promoting process died before its first promotion"
            time.sleep(rng.uniform(0, 0.05))
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(ready)
        # What promote() does before writing: put back a model a crash left aside, drop leftovers.
        recover(target)
        now = version_of(target)
        assert now > version, f"went back from version {version} to {now}"
        version = now
        clean_stale(root, "s")
        assert sorted(p.name for p in root.iterdir()) == ["s"]
