"""open_storage: a real Optuna store on every backend, and errors that hide the password."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from storage import StorageError, open_storage

ROOT = Path(__file__).resolve().parents[2]


def test_open_storage_gives_a_usable_optuna_store(store_url: str, study_name: str) -> None:
    storage = open_storage(store_url)
    assert isinstance(storage, optuna.storages.RDBStorage)
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=3)

    # A second opening (another launcher, the dashboard) sees the same study and trials.
    again = optuna.load_study(study_name=study_name, storage=open_storage(store_url))
    assert len(again.trials) == 3
    assert again.best_value == max(t.value for t in study.trials)
    assert study_name in optuna.get_all_study_names(storage=open_storage(store_url))


def test_open_storage_is_idempotent_on_an_existing_store(store_url: str, study_name: str) -> None:
    optuna.create_study(study_name=study_name, storage=open_storage(store_url))
    for _ in range(2):
        storage = open_storage(store_url)
        assert optuna.load_study(study_name=study_name, storage=storage).study_name == study_name


def test_open_storage_creates_the_sqlite_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs' / 'nested' / 'studies.db'}"
    open_storage(url)
    assert (tmp_path / "runs" / "nested" / "studies.db").is_file()


def test_open_storage_without_create_dirs_fails_clearly_on_a_missing_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'studies.db'}"
    with pytest.raises(StorageError, match="cannot open storage"):
        open_storage(url, create_dirs=False)


def test_open_storage_without_create_refuses_a_missing_sqlite_file_and_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'typo' / 'studies.db'}"
    with pytest.raises(StorageError, match=r"no study store at sqlite:///.*typo/studies\.db"):
        open_storage(url, create=False)
    assert not (tmp_path / "typo").exists()
    open_storage(url)  # launch creates it
    assert optuna.get_all_study_names(storage=open_storage(url, create=False)) == []


def test_a_sqlite_folder_that_cannot_be_created_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    with pytest.raises(StorageError, match="notes.txt is a file, not a folder") as info:
        open_storage(f"sqlite:///{tmp_path / 'notes.txt' / 'runs' / 'studies.db'}")
    assert "sqlite:///PATH" in str(info.value)
    if Path("/proc").is_dir():
        with pytest.raises(StorageError, match="cannot create the folder /proc/x"):
            open_storage("sqlite:////proc/x/studies.db")


def _assert_sqlite_advice(message: str, url: str) -> None:
    """The advice fits SQLite: a writable folder; no server, and not the URL that just failed."""
    assert "server" not in message
    assert "writable" in message or "write to" in message
    assert f"use --storage {url}" not in message


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_sqlite_file_that_cannot_be_created_gets_sqlite_advice() -> None:
    url = "sqlite:////proc/studies.db"  # /proc takes no new files, even from root
    with pytest.raises(StorageError, match="the folder /proc is not writable") as info:
        open_storage(url)
    _assert_sqlite_advice(str(info.value), url)


def _open_storage_error(url: str) -> str:
    """The StorageError that opening ``url`` raises; as root, in a process without root's file powers.

    Root passes every permission check (CAP_DAC_OVERRIDE), so for root the store is opened in a
    child process that ``setpriv`` (util-linux) starts without that capability.
    """
    if os.geteuid() != 0:
        with pytest.raises(StorageError) as info:
            open_storage(url)
        return str(info.value)
    code = (
        "import sys\nfrom storage import StorageError, open_storage\n"
        "try:\n    open_storage(sys.argv[1])\nexcept StorageError as e:\n    print(e)\nelse:\n    print('opened')"
    )
    dropped = "-dac_override,-dac_read_search"
    result = subprocess.run(
        ["setpriv", f"--inh-caps={dropped}", f"--bounding-set={dropped}", "--", sys.executable, "-c", code, url],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_sqlite_file_in_a_read_only_folder_gets_sqlite_advice(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        url = f"sqlite:///{folder / 'studies.db'}"
        message = _open_storage_error(url)
        assert "is not writable" in message
        _assert_sqlite_advice(message, url)
    finally:
        folder.chmod(0o755)


def test_a_folder_given_as_the_sqlite_file_gets_sqlite_advice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}"
    with pytest.raises(StorageError, match="is a folder, not a SQLite file") as info:
        open_storage(url)
    _assert_sqlite_advice(str(info.value), url)


@pytest.mark.postgres
def test_open_storage_accepts_a_bare_postgresql_url(postgres_url: str, study_name: str) -> None:
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which the project does not install.
    import sqlalchemy as sa

    bare = sa.make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    assert bare.startswith("postgresql://")
    optuna.create_study(study_name=study_name, storage=open_storage(bare))
    assert study_name in optuna.get_all_study_names(storage=open_storage(bare))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:hunter2@127.0.0.1:1/test",
        "postgresql+psycopg2://postgres:hunter2@127.0.0.1:1/test",
        "postgresql+psycopg2://postgres:hunter2@127.0.0.1:1/test?connect_timeout=5",
        "postgresql+psycopg2://127.0.0.1:1/test?user=postgres&password=hunter2",
    ],
)
def test_unreachable_server_raises_storage_error_without_the_password(url: str) -> None:
    with pytest.raises(StorageError) as info:
        open_storage(url)
    message = str(info.value)
    assert "hunter2" not in message
    assert "127.0.0.1" in message  # which server, so the user can fix it
    assert "--storage sqlite:///" in message  # what to type instead


def test_missing_driver_raises_storage_error_with_the_fix_and_no_password(
    without_modules: Callable[..., None],
) -> None:
    without_modules("pymysql")
    with pytest.raises(StorageError) as info:
        open_storage("mysql+pymysql://u:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(info.value)
    assert "pymysql" in str(info.value)
    assert "pip install" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "mongodb://u:hunter2@h/db",
        "studies.db",
        "redis://:hunter2@h:6379/0",
    ],
)
def test_unsupported_scheme_lists_the_supported_ones(url: str) -> None:
    with pytest.raises(StorageError) as info:
        open_storage(url)
    message = str(info.value)
    assert "hunter2" not in message
    assert "sqlite:///" in message
    assert "postgresql://" in message
    assert "mysql+pymysql://" in message
