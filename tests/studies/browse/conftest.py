"""One finished quickstart study per test session, shared by the notes, artifacts, report, JSON and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

TINY = [
    "task.train_size=240",
    "task.eval_size=80",
    "task.test_size=80",
    "task.max_length=32",
    "trainer.num_train_epochs=2",
    "budget.n_trials=2",
    "budget.max_concurrent=2",
    "search_space.learning_rate.low=0.001",
]


@pytest.fixture(scope="session")
def quickstart(ray_session, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """The quickstart preset, shrunk, launched to the end (promotion included) in its own folder."""
    from studies import launch, load_spec

    root = tmp_path_factory.mktemp("quickstart")
    url = f"sqlite:///{root}/studies.db"
    paths = [f"work_dir={root}/runs", f"promotion.dir={root}/models", f"wandb.dir={root}/wandb"]
    spec = load_spec("quickstart", [*TINY, *paths])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("STUDIES_STORAGE", raising=False)
        mp.chdir(root)
        outcome = launch(spec, storage_url=url, stream=None)
    assert outcome.promoted is not None, outcome
    yield SimpleNamespace(root=root, url=url, spec=spec, outcome=outcome)


def _run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    env.pop("STUDIES_STORAGE", None)
    return subprocess.run(
        [sys.executable, "-m", "studies._cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def studies_cli():
    """Run ``studies ARGS`` in a child process: ``studies_cli(*args, cwd=folder)``."""
    return _run_cli


@pytest.fixture
def studies_main(capsys):
    """Run ``studies ARGS`` in this process (the same ``main``, without a child's start-up): (code, out, err)."""
    from studies._cli import main

    def run(*args: str) -> SimpleNamespace:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dashboard:
    """``studies dashboard`` in a child process, on a free loopback port."""

    def __init__(self, url: str, cwd: Path, *extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ}
        env.pop("STUDIES_STORAGE", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "studies._cli", "dashboard", "--storage", url, "--port", str(self.port), *extra],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/api/meta", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the dashboard did not start: {self.output[-2000:]}")
            time.sleep(0.3)

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.base}{path}", timeout=30) as r:
            assert r.status == 200, (path, r.status)
            return r.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out, err = self.proc.communicate()
        self.output = (out or "") + (err or "")


@pytest.fixture
def dashboard() -> Iterator:
    """Start dashboards with ``dashboard(url, cwd, *args)``; each is stopped after the test."""
    started: list[Dashboard] = []

    def start(url: str, cwd: Path, *extra: str) -> Dashboard:
        board = Dashboard(url, cwd, *extra)
        started.append(board)
        return board

    yield start
    for board in started:
        board.stop()
