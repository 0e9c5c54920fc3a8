"""``studies storage check URL`` and ``studies storage copy SRC DST``: look at a store, move studies between stores.

``check`` connects without creating anything and says whether the store is
reachable, which driver serves it, whether Optuna's schema is current (with the
upgrade command when it is not) and how many studies it holds. ``copy`` is
Optuna's ``copy_study`` for one study or all: trials, intermediate values and
the study attributes this service keeps (spec, identity, launch folder), so
``studies resume NAME --storage DST`` continues the copy. It never overwrites:
a study that exists in the destination stops the copy before anything is written.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from storage import StorageError, dialect, engine_url, open_storage, redact, sqlite_path
from studies._errors import ConflictError, NotFoundError


def register(sub: Any) -> None:
    """Add ``storage check`` and ``storage copy`` to the ``studies`` command."""
    group = sub.add_parser("storage", help="check a study store, or copy studies between stores")
    commands = group.add_subparsers(dest="storage_command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="is the store reachable, its driver installed, its schema current")
    check.add_argument("url", metavar="URL", help="the store, e.g. postgresql://user@host/db or sqlite:///studies.db")
    check.set_defaults(handler=cmd_check)

    copy = commands.add_parser("copy", help="copy studies (trials and the service's attributes) to another store")
    copy.add_argument("source", metavar="SRC", help="the store to copy from")
    copy.add_argument("destination", metavar="DST", help="the store to copy to (created if a new SQLite file)")
    copy.add_argument("--study", metavar="NAME", help="copy only this study (default: every study in SRC)")
    copy.set_defaults(handler=cmd_copy)


def cmd_check(args: argparse.Namespace) -> int:
    for line in check_store(args.url):
        print(line)
    return 0


def check_store(url: str) -> list[str]:
    """What ``storage check`` prints, one line per fact.

    Raises:
        StorageError: Unsupported URL, missing driver (with the pip extra), unreachable
            server or missing SQLite file; the message never holds the password.
    """
    import sqlalchemy as sa

    shown = redact(url)
    family = dialect(url)
    full = engine_url(url)  # names the pip extra when the driver is missing
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StorageError(f"no study store at {shown} ({path} does not exist): check the path")
    connect_args = {} if family == "sqlite" else {"connect_timeout": 10}
    engine = sa.create_engine(full, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            tables = set(sa.inspect(conn).get_table_names())
    except sa.exc.SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise StorageError(f"store {shown} is not reachable: {redact(reason)} (check the server and the URL)") from e
    finally:
        engine.dispose()
    driver = sa.make_url(full).get_driver_name()
    lines = [f"store {shown}: reachable ({family}, driver {driver})"]
    if "studies" not in tables or "alembic_version" not in tables:
        return [*lines, "schema: no Optuna tables yet (`studies launch` creates them)", "studies: 0"]
    from optuna.storages import RDBStorage

    storage = RDBStorage(full, skip_compatibility_check=True, skip_table_creation=True)
    try:
        current, head = storage.get_current_version(), storage.get_head_version()
        if current == head:
            lines.append(f"schema: Optuna {current} (current)")
        else:
            lines.append(
                f"schema: Optuna {current}, older than this Optuna's {head}: "
                f"upgrade it with `optuna storage upgrade --storage '{shown}'` (back the store up first)"
            )
        lines.append(f"studies: {len(storage.get_all_studies())}")
    finally:
        storage.engine.dispose()
    return lines


def cmd_copy(args: argparse.Namespace) -> int:
    for name in copy_studies(args.source, args.destination, args.study):
        print(f"copied study {name} to {redact(args.destination)}")
    return 0


def copy_studies(source: str, destination: str, study: str | None = None) -> list[str]:
    """Copy ``study`` (or every study) from ``source`` to ``destination``; return the names copied.

    Raises:
        NotFoundError: If ``source`` has no such study (or none at all).
        ConflictError: If a study of that name exists in ``destination``; nothing is copied then.
    """
    import optuna

    from storage import close_storage

    if engine_url(source) == engine_url(destination):
        raise ConflictError("SRC and DST are the same store: give another destination")
    src = open_storage(source, create=False)
    dst = None
    try:
        names = sorted(s.study_name for s in src.get_all_studies())
        if study is not None:
            if study not in names:
                raise NotFoundError(f"no study named {study!r} in {redact(source)}: check the name with `studies list`")
            names = [study]
        if not names:
            raise NotFoundError(f"no studies in {redact(source)}: nothing to copy")
        dst = open_storage(destination)
        existing = {s.study_name for s in dst.get_all_studies()}
        taken = [n for n in names if n in existing]
        if taken:
            raise ConflictError(
                f"study {taken[0]!r} already exists in {redact(destination)}: copy refuses to overwrite; "
                "delete it there first (`studies delete`) or copy another study with --study"
            )
        for name in names:
            try:
                optuna.copy_study(from_study_name=name, from_storage=src, to_storage=dst)
            except BaseException:
                _drop_partial(dst, name)
                raise
        return names
    finally:
        close_storage(src)
        if dst is not None:
            close_storage(dst)


def _drop_partial(storage: Any, name: str) -> None:
    """Delete a half-copied study, so a failed copy leaves nothing behind."""
    import optuna

    with contextlib.suppress(KeyError, StorageError, optuna.exceptions.StorageInternalError):
        optuna.delete_study(study_name=name, storage=storage)
