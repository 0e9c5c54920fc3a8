"""Storage URLs: precedence, redaction, dialects and SQLite paths (no database needed)."""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Callable
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


# Typos and unencoded characters seen in real --storage values: each one used to be
# printed, and stored in the study's spec, with its password in it.
MALFORMED = [
    ("postgresql:/postgres:s3cr3t@127.0.0.1/db", "s3cr3t", "postgresql:/postgres:***@127.0.0.1/db"),
    ("postgresql:postgres:s3cr3t@127.0.0.1/db", "s3cr3t", "postgresql:postgres:***@127.0.0.1/db"),
    ("postgresql//postgres:s3cr3t@127.0.0.1/db", "s3cr3t", "postgresql//postgres:***@127.0.0.1/db"),
    ("postgresql:///postgres:s3cr3t@127.0.0.1/db", "s3cr3t", "postgresql:///postgres:***@127.0.0.1/db"),
    ("postgresql/postgres:s3cr3t@127.0.0.1/db", "s3cr3t", "postgresql/postgres:***@127.0.0.1/db"),
    ("postgres:s3cr3t@127.0.0.1/db", "s3cr3t", "postgres:***@127.0.0.1/db"),  # no scheme at all
    ("postgresql://postgres:p@ss3cr3t@127.0.0.1/db", "p@ss3cr3t", "postgresql://postgres:***@127.0.0.1/db"),
    ("postgresql://postgres:s3 cr3t@127.0.0.1/db", "s3 cr3t", "postgresql://postgres:***@127.0.0.1/db"),
    ("postgresql://postgres:p@s s3cr3t@127.0.0.1:5432/db", "p@s s3cr3t", "postgresql://postgres:***@127.0.0.1:5432/db"),
    ("postgresql://postgres:s3/cr3t@127.0.0.1/db", "s3/cr3t", "postgresql://postgres:***@127.0.0.1/db"),
    ("postgresql://postgres:s3/cr@3t@127.0.0.1/db", "s3/cr@3t", "postgresql://postgres:***@127.0.0.1/db"),
    ("mysql+pymysql://root:s3cr3t:#!@db.example:3306/db", "s3cr3t:#!", "mysql+pymysql://root:***@db.example:3306/db"),
]


def _pieces(secret: str) -> list[str]:
    """The parts of ``secret`` between its ``@``, ``/``, ``:`` and spaces: none may show."""
    return [piece for piece in re.split(r"[@/: ]", secret) if len(piece) > 1]


@pytest.mark.parametrize(("url", "secret", "shown"), MALFORMED)
def test_redact_hides_passwords_in_malformed_urls(url: str, secret: str, shown: str) -> None:
    assert redact(url) == shown
    for piece in _pieces(secret):
        assert piece not in redact(url)


@pytest.mark.parametrize(("url", "secret", "shown"), MALFORMED)
def test_redact_hides_malformed_urls_inside_a_message(url: str, secret: str, shown: str) -> None:
    for message, expected in [
        (f"storage URL {url!r} is not supported", f"storage URL {shown!r} is not supported"),
        (f'{{"storage": "{url}", "name": "small"}}', f'{{"storage": "{shown}", "name": "small"}}'),
        (f"--set storage={url}", f"--set storage={shown}"),
    ]:
        assert redact(message) == expected


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:***@h/db",
        "postgresql://a:***@h1/db then postgresql://b:***@h2/db",
        *(shown for _, _, shown in MALFORMED),
    ],
)
def test_redact_is_idempotent(url: str) -> None:
    assert redact(url) == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # A raw '@' after the host (in the path or the query) is not part of the password.
        (
            "postgresql://u:pw@host/db?application_name=me@laptop",
            "postgresql://u:***@host/db?application_name=me@laptop",
        ),
        ("postgresql://u:pw@host?application_name=me@laptop", "postgresql://u:***@host?application_name=me@laptop"),
        ("postgresql://u:pw@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
        # Two URLs on a line stay two URLs, even with spaces and '@' between them.
        (
            "postgresql://a:first@h1 and postgresql://b:second@h2/db",
            "postgresql://a:***@h1 and postgresql://b:***@h2/db",
        ),
    ],
)
def test_redact_stops_the_password_at_the_host(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    "text",
    [
        "Error: contact admin@example.com",
        'FATAL:  password authentication failed for user "postgres"',
        "at 12:30:45 user@host said: hi",
        "postgresql://u@[::1]/db",
    ],
)
def test_redact_leaves_text_without_a_password_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_is_quick_on_long_words() -> None:
    started = time.perf_counter()
    for text in ("x" * 50_000, "a" * 50_000 + "@", "postgresql://u:" + "x " * 25_000):
        redact(text)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(("url", "secret", "shown"), [case for case in MALFORMED if "://" not in case[0]])
def test_dialect_rejects_a_malformed_url_without_its_password(url: str, secret: str, shown: str) -> None:
    with pytest.raises(StorageError) as info:
        dialect(url)
    message = str(info.value)
    assert f"storage URL {shown!r} is not supported" in message
    for piece in _pieces(secret):
        assert piece not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:p@ss3cr3t@127.0.0.1/db",
        "postgresql+psycopg2://u:s3cr3t@x@h/db",
        "mysql://u:s3cr3t@x@h/db",
    ],
)
def test_engine_url_refuses_a_raw_at_in_the_password_without_printing_it(url: str) -> None:
    # The driver would read "ss3cr3t@127.0.0.1" as the host name and print it in its error.
    with pytest.raises(StorageError) as info:
        engine_url(url)
    message = str(info.value)
    assert "3cr3t" not in message
    assert "%40" in message and redact(url) in message


def test_engine_url_keeps_a_raw_at_after_the_host() -> None:
    url = "postgresql+psycopg2://u:pw@host/db?application_name=me@laptop"
    assert engine_url(url) == url


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
def test_engine_url_without_the_driver_says_how_to_install_it(
    url: str, modules: list[str], without_modules: Callable[..., None]
) -> None:
    without_modules(*modules)
    with pytest.raises(StorageError) as info:
        engine_url(url)
    assert "hunter2" not in str(info.value)
    assert "pip install" in str(info.value)
