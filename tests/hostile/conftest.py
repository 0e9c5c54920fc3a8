"""Fixtures for hostile and careless input: the CLI run in this process, in a sandbox that must stay empty."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    """What one ``studies`` command did: its exit code and everything it printed."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return (self.out + self.err).splitlines()


def run_cli(argv: Sequence[str]) -> Result:
    """Run ``studies ARGV`` in this process (``main()``), capturing stdout, stderr and the exit code."""
    from studies._cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse's usage errors
            code = e.code if isinstance(e.code, int) else 1
    return Result(int(code), out.getvalue(), err.getvalue())


def assert_clean_outcome(result: Result, context: object = "") -> None:
    """Valid (exit 0) or one ``error: ...`` line with exit 2; never a traceback or an internal error."""
    where = f"\n{context!r}" if context else ""
    text = result.out + result.err
    assert "Traceback" not in text, f"traceback printed:{where}\n{text[-2000:]}"
    assert result.code in (0, 2), f"exit {result.code}:{where}\n{text[-2000:]}"
    if result.code == 2:
        assert result.out == "", f"stdout on an error:{where}\n{result.out[-2000:]}"
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, f"not one line:{where}\n{result.err}"


@dataclass
class Sandbox:
    """A working folder, a store URL and the folders a spec may name, all expected to stay empty."""

    cwd: Path
    specs: Path
    store: Path

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.store}"

    def written(self) -> list[str]:
        """Whatever appeared in the working folder or as the store since the sandbox was made."""
        found = sorted(str(p.relative_to(self.cwd)) for p in self.cwd.rglob("*"))
        if self.store.exists():
            found.append(str(self.store))
        return found


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """Run in an empty folder with the store in another; wandb off and no store from the environment."""
    box = Sandbox(cwd=tmp_path / "cwd", specs=tmp_path / "specs", store=tmp_path / "store" / "studies.db")
    for folder in (box.cwd, box.specs, box.store.parent):
        folder.mkdir()
    monkeypatch.chdir(box.cwd)
    monkeypatch.setenv("STUDIES_STORAGE", box.store_url)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield box
    assert not box.written(), f"files were written: {box.written()[:20]}"
    assert os.getcwd() == str(box.cwd)
