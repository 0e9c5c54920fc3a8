"""Fixtures shared by every test package: the study stores to test against."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

POSTGRES_ENV = "STUDIES_TEST_POSTGRES"
POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB_ENV = "STUDIES_TEST_MARIADB"
MARIADB_DEFAULT = "mysql+pymysql://root@127.0.0.1:3306/test"


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``), where only tests that need a GPU may skip."""
    return os.environ.get("CI", "").lower() in ("true", "1")


def _unavailable(reason: str) -> NoReturn:
    """Skip, except in CI, where a real-component test must run or fail."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this test must not be skipped)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under ``CI=true`` a skip is a failure, unless the test is marked ``gpu`` (CI has no GPU)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail") and item.get_closest_marker("gpu") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where only GPU tests may skip: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A whole module skipped at import (``importorskip``) is a failure under ``CI=true`` too."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where only GPU tests may skip: {reason}"


def _with_installed_driver(url: str) -> str:
    """``url`` with psycopg2 named when SQLAlchemy's default driver for a bare scheme is missing.

    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3, 2.0 as psycopg2. Only the
    fixture's own check connects this way; the tests get the URL as given, which the storage
    package must open itself (``storage.engine_url``).
    """
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    if parsed.drivername != "postgresql":
        return url
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError:
        return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL of a database created for this test session and dropped after it.

    The server is ``$STUDIES_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
    a fresh ``studies_test_<random>`` database keeps reruns and parallel sessions apart. Without
    the CREATEDB privilege the tests share the given database (they use unique study names).
    """
    given = os.environ.get(POSTGRES_ENV, POSTGRES_DEFAULT)
    # FORCE (PostgreSQL 13+) ends the sessions a failed test left open on it.
    yield from _scratch_database(
        given, _with_installed_driver(given), "PostgreSQL", POSTGRES_ENV, '"{}"', " WITH (FORCE)"
    )


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A MariaDB/MySQL URL of a database created for this test session and dropped after it.

    The server is ``$STUDIES_TEST_MARIADB`` (default ``mysql+pymysql://root@127.0.0.1:3306/test``);
    like :func:`postgres_url`, a fresh ``studies_test_<random>`` database keeps sessions apart.
    """
    given = os.environ.get(MARIADB_ENV, MARIADB_DEFAULT)
    yield from _scratch_database(given, given, "MariaDB", MARIADB_ENV, "`{}`", "")


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[object]:
    """A PostgreSQL cluster of this test module's own, which tests may stop and restart."""
    from _pg_cluster import PrivateCluster, available  # tests/ is on sys.path (rootdir conftest)

    reason = available()
    if reason is not None:
        _unavailable(reason)
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite store in this test's temporary folder (absolute path: ``sqlite:////tmp/...``)."""
    return f"sqlite:///{tmp_path / 'studies.db'}"


def _scratch_database(
    given: str, admin_url: str, server: str, env: str, quote: str, drop_options: str
) -> Iterator[str]:
    """Yield the URL of a database created on ``given``'s server for this session, dropped after it.

    Without the privilege to create one, yield ``given`` itself (tests use unique study names).
    """
    import sqlalchemy as sa

    from storage import redact

    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except (ImportError, sa.exc.SQLAlchemyError) as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        _unavailable(f"no {server} at {redact(given)} ({reason}); set {env} to a reachable server")

    name = quote.format(f"studies_test_{uuid.uuid4().hex[:12]}")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.SQLAlchemyError:
        admin.dispose()
        yield given
        return
    try:
        yield sa.make_url(given).set(database=name[1:-1]).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}{drop_options}"))
        admin.dispose()
