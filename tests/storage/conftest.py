"""The store contract fixtures: every contract test runs on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

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
