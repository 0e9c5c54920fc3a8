"""open_storage: a real Optuna store on every backend, and errors that hide the password."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from storage import StorageError, open_storage


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


def test_missing_driver_raises_storage_error_with_the_fix_and_no_password() -> None:
    try:
        import pymysql  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pymysql is installed here: no missing driver to report")
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
