"""The store contract fixtures: every contract test runs on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import importlib.abc
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

STORES = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty-or-shared store of each supported kind (server stores skip without a server)."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def study_name() -> str:
    """A study name no other test, rerun or parallel session uses."""
    return f"study-{uuid.uuid4().hex[:12]}"


WORKER = Path(__file__).with_name("_worker.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spawn_worker() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``_worker.py`` in a new process; any still running at teardown is killed."""
    started: list[subprocess.Popen[str]] = []

    # The worker imports the storage package of this tree, like the tests, whatever is installed.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}

    def spawn(*args: object) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


class _Without(importlib.abc.MetaPathFinder):
    """One of Python's module finders, blind to the named top-level modules (as if not installed)."""

    def __init__(self, finder: Any, names: set[str]) -> None:
        self.finder = finder
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname.split(".")[0] in self.names or not hasattr(self.finder, "find_spec"):
            return None
        return self.finder.find_spec(fullname, path, target)

    def invalidate_caches(self) -> None:
        if hasattr(self.finder, "invalidate_caches"):
            self.finder.invalidate_caches()


@pytest.fixture
def without_modules(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make the given driver modules unfindable and unimportable for this test, installed or not."""

    def hide(*names: str) -> None:
        for loaded in [m for m in sys.modules if m.split(".")[0] in names]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setattr(sys, "meta_path", [_Without(finder, set(names)) for finder in sys.meta_path])

    return hide
