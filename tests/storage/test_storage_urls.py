"""Storage URLs: precedence, redaction, dialects and SQLite paths (no database needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from storage import DEFAULT_URL, ENV_VAR, StorageError, dialect, engine_url, redact, resolve_url, sqlite_path

CLI = "postgresql://cli@db/cli"
ENV = "postgresql://env@db/env"
SPEC = "sqlite:///spec.db"


@pytest.mark.parametrize(
    ("cli", "env", "spec", "expected"),
    [
        (CLI, ENV, SPEC, CLI),
        (None, ENV, SPEC, ENV),
        (None, None, SPEC, SPEC),
        (None, None, None, DEFAULT_URL),
        (CLI, None, None, CLI),
        (None, ENV, None, ENV),
        ("", "", "", DEFAULT_URL),  # an empty value means "not given", not "an empty URL"
    ],
)
def test_resolve_url_precedence_is_cli_then_env_then_spec_then_default(
    monkeypatch: pytest.MonkeyPatch, cli: str | None, env: str | None, spec: str | None, expected: str
) -> None:
    if env is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, env)
    assert resolve_url(cli, spec) == expected


def test_env_var_and_default_are_the_documented_ones() -> None:
    assert ENV_VAR == "STUDIES_STORAGE"
    assert DEFAULT_URL == "sqlite:///studies.db"


@pytest.mark.parametrize(
    ("url", "secret", "shown"),
    [
        ("postgresql://user:secret@host/db", "secret", "postgresql://user:***@host/db"),
        ("postgresql+psycopg2://user:s3cr%40t@host:5432/db", "s3cr%40t", "postgresql+psycopg2://user:***@host:5432/db"),
        ("mysql+pymysql://u:p@h/db", ":p@", "mysql+pymysql://u:***@h/db"),
        ("postgresql://host/db?user=u&password=hunter2", "hunter2", "postgresql://host/db?user=u&password=***"),
        (
            "postgresql://u:one@host/db?sslmode=require&sslpassword=two",
            "two",
            "postgresql://u:***@host/db?sslmode=require&sslpassword=***",
        ),
        ("mysql+pymysql://h/db?PWD=hunter2&charset=utf8", "hunter2", "mysql+pymysql://h/db?PWD=***&charset=utf8"),
    ],
)
def test_redact_hides_passwords(url: str, secret: str, shown: str) -> None:
    assert redact(url) == shown
    assert secret not in redact(url)


def test_redact_hides_every_url_in_a_message() -> None:
    message = "tried postgresql://a:first@h1/db, then postgresql://b:second@h2/db"
    assert redact(message) == "tried postgresql://a:***@h1/db, then postgresql://b:***@h2/db"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///studies.db",
        "sqlite:////abs/path/studies.db",
        "sqlite://",
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgresql://127.0.0.1:5432/test",
        "mysql+pymysql://user@host/db?charset=utf8mb4",
    ],
)
def test_redact_leaves_passwordless_urls_alone(url: str) -> None:
    assert redact(url) == url


def test_redact_hides_a_password_without_user() -> None:
    # libpq and SQLAlchemy accept an empty user name: the password is "secret".
    assert "secret" not in redact("postgresql://:secret@host/db")


@pytest.mark.parametrize(
    ("url", "family"),
    [
        ("sqlite:///studies.db", "sqlite"),
        ("sqlite://", "sqlite"),
        ("postgresql://u@h/db", "postgresql"),
        ("postgresql+psycopg2://u@h/db", "postgresql"),
        ("mysql+pymysql://u@h/db", "mysql"),
    ],
)
def test_dialect_names_the_database_family(url: str, family: str) -> None:
    assert dialect(url) == family


@pytest.mark.parametrize("url", ["postgres://u:hunter2@h/db", "mongodb://u:hunter2@h/db", "studies.db", ""])
def test_dialect_rejects_unsupported_urls_listing_the_supported_ones_without_the_password(url: str) -> None:
    with pytest.raises(StorageError) as info:
        dialect(url)
    message = str(info.value)
    assert "hunter2" not in message
    for example in ("sqlite:///", "postgresql://", "mysql+pymysql://"):
        assert example in message


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///studies.db", Path("studies.db")),
        ("sqlite:///runs/studies.db", Path("runs/studies.db")),
        ("sqlite:////abs/dir/studies.db", Path("/abs/dir/studies.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql://u@h/db", None),
    ],
)
def test_sqlite_path(url: str, path: Path | None) -> None:
    assert sqlite_path(url) == path


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("url", ["sqlite:///studies.db", "sqlite://", "postgresql+psycopg2://u:p@h/db"])
def test_engine_url_keeps_urls_that_need_no_driver_choice(url: str) -> None:
    assert engine_url(url) == url


def test_engine_url_names_an_installed_driver_for_a_bare_postgresql_url() -> None:
    url = engine_url("postgresql://u:p@h:5432/db?sslmode=require")
    scheme, rest = url.split("://", 1)
    assert rest == "u:p@h:5432/db?sslmode=require"
    family, driver = scheme.split("+")
    assert family == "postgresql"
    assert _installed(driver), f"{driver} is not installed"


@pytest.mark.parametrize(
    ("url", "modules"),
    [
        ("postgresql+pg8000://u:hunter2@h/db", ["pg8000"]),
        ("mysql://u:hunter2@h/db", ["pymysql", "MySQLdb"]),
    ],
)
def test_engine_url_without_the_driver_says_how_to_install_it(url: str, modules: list[str]) -> None:
    if any(_installed(m) for m in modules):
        pytest.skip(f"{modules} installed here: no missing driver to report")
    with pytest.raises(StorageError) as info:
        engine_url(url)
    assert "hunter2" not in str(info.value)
    assert "pip install" in str(info.value)
