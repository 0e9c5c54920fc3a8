"""Storage URLs: where they come from, how they are shown, how SQLite paths resolve."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DEFAULT_URL = "sqlite:///studies.db"
ENV_VAR = "STUDIES_STORAGE"

_SUPPORTED = ("sqlite", "postgresql", "mysql")
# ``user:password@host`` after a scheme, even a malformed one (``postgresql:/``,
# ``postgresql:``, ``postgresql//``), or at the start of a word when there is no
# scheme at all. The password runs to the last ``@`` before the host, so a raw ``@``
# or space in it is hidden too.
_PASSWORD = re.compile(
    r"""
    (?P<head>
        (?:
            (?P<scheme>(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*[:/]+|://)[^:/@\s]*
            | (?<![^\s'"=,;(<\[])[^:/@\s'"=,;(<\[]*
        ):
    )
    (?P<password>(?(scheme)
        # Up to the first @ like SQLAlchemy, then on over "@..." and " ..." parts
        # without / or ? (those end a host: a later @ in the path or query, or a
        # second URL, stays out).
        [^@\s]*(?:[@ \t][^@\s/?]*)*
        # Without a scheme: no space, / or ? at all, so prose is left alone.
        | [^@\s/?]*(?:@[^@\s/?]*)*
    ))
    (?P<tail>@)
    """,
    re.VERBOSE,
)
_QUERY_SECRET = re.compile(r"(?P<key>(?:password|passwd|pwd|sslpassword)=)[^&]*", re.IGNORECASE)


class StorageError(Exception):
    """The study store cannot be reached or used; the message says how to fix it."""


def resolve_url(cli: str | None = None, spec: str | None = None) -> str:
    """Pick the storage URL by precedence: CLI flag, then ``STUDIES_STORAGE``, then spec, then default.

    Args:
        cli: The ``--storage`` value, if given.
        spec: The spec's ``storage`` value, if given.

    Returns:
        The URL to open, not yet validated.
    """
    for candidate in (cli, os.environ.get(ENV_VAR), spec):
        if candidate:
            return candidate
    return DEFAULT_URL


def redact(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``; safe to print, log or store.

    ``url`` may be a malformed URL, or a message holding several: every
    ``user:password@host`` in it is hidden.
    """
    parsed = _parse(url)
    if parsed is not None and parsed.password is not None:
        url = parsed.render_as_string(hide_password=True)
    # A message, a malformed URL, or a password SQLAlchemy would not see (raw "@" in it, no scheme).
    url = _PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", url)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}***", url)


def _parse(url: str) -> URL | None:
    """``url`` as SQLAlchemy reads it, when it is one well-formed URL and nothing else."""
    if any(c.isspace() for c in url) or url.count("@") > 1:
        return None
    try:
        from sqlalchemy.engine import make_url
    except ImportError:
        return None
    try:
        return make_url(url)
    except Exception:  # ArgumentError, ValueError: not a URL SQLAlchemy understands
        return None


def dialect(url: str) -> str:
    """The database family of ``url`` (``sqlite``, ``postgresql`` or ``mysql``).

    Raises:
        StorageError: If the URL is not one of the supported kinds.
    """
    scheme = url.split("://", 1)[0] if "://" in url else ""
    family = scheme.split("+", 1)[0]
    if family not in _SUPPORTED:
        raise StorageError(
            f"storage URL {redact(url)!r} is not supported: use sqlite:///path/to/studies.db, "
            "postgresql://user@host/db or mysql+pymysql://user@host/db"
        )
    return family


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or ``None`` for other URLs and in-memory SQLite."""
    if dialect(url) != "sqlite":
        return None
    path = url.split("://", 1)[1]
    if path.startswith("/"):
        path = path[1:]
    if path in ("", ":memory:"):
        return None
    return Path(path)


_DEFAULT_DRIVERS = {
    "postgresql": (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")),
    "mysql": (("pymysql", "mysql+pymysql"), ("MySQLdb", "mysql+mysqldb")),
}
_INSTALL = {"postgresql": "pip install 'hpo-studies[postgres]'", "mysql": "pip install 'hpo-studies[mysql]'"}


def engine_url(url: str) -> str:
    """``url`` with an explicit, installed database driver (``postgresql+psycopg2://...``).

    A bare ``postgresql://`` means psycopg 3 to SQLAlchemy 2.1 and psycopg2 to
    older versions; pick whichever is installed so both work.

    Raises:
        StorageError: If no driver for the URL's database is installed, or the
            password holds a raw ``@`` (the driver would take the rest of the
            password for the host name, and print it in its errors).
    """
    import importlib.util

    family = dialect(url)
    scheme, rest = url.split("://", 1)
    if family not in _DEFAULT_DRIVERS:
        return url
    if any("@" in m["password"] for m in _PASSWORD.finditer(url)):
        raise StorageError(
            f"storage URL {redact(url)!r} has a raw '@' in its password: write it as %40 "
            "(and other special characters percent-encoded too, e.g. user:p%40ss@host/db)"
        )
    if "+" in scheme:
        module = {"psycopg2": "psycopg2", "psycopg": "psycopg", "pymysql": "pymysql", "mysqldb": "MySQLdb"}.get(
            scheme.split("+", 1)[1], scheme.split("+", 1)[1]
        )
        if importlib.util.find_spec(module) is None:
            raise StorageError(f"storage {redact(url)} needs the {module} driver: {_INSTALL[family]}")
        return url
    for module, full_scheme in _DEFAULT_DRIVERS[family]:
        if importlib.util.find_spec(module) is not None:
            return f"{full_scheme}://{rest}"
    raise StorageError(f"storage {redact(url)} needs a {family} driver: {_INSTALL[family]}")
