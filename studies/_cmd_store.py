"""The commands that read and edit the store: ``status``, ``list``, ``delete`` and ``dashboard``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from storage import LeaseBook, open_storage, redact, resolve_url
from studies._cli_common import port_number, short, storage_option, table
from studies._errors import StudyError


def register(sub: Any) -> None:
    """Add ``status``, ``list``, ``delete`` and ``dashboard`` to the ``studies`` command."""
    status = sub.add_parser("status", help="a study's trials and best trial")
    status.add_argument("study")
    storage_option(status)
    status.set_defaults(handler=cmd_status)

    listing = sub.add_parser("list", help="the studies in the store")
    storage_option(listing)
    listing.set_defaults(handler=cmd_list)

    delete = sub.add_parser("delete", help="delete a study and its trials from the store")
    delete.add_argument("study")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    storage_option(delete)
    delete.set_defaults(handler=cmd_delete)

    dashboard = sub.add_parser("dashboard", help="open optuna-dashboard on the store")
    dashboard.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    dashboard.add_argument("--port", type=port_number, default=8080)
    storage_option(dashboard)
    dashboard.set_defaults(handler=cmd_dashboard)


def cmd_list(args: argparse.Namespace) -> int:
    import optuna

    url = resolve_url(args.storage)
    storage = open_storage(url, create=False)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
    if not summaries:
        print(f"no studies in {redact(url)}")
        return 0
    rows: list[tuple[str, ...]] = [("STUDY", "TRIALS", "COMPLETE", "PRUNED", "FAIL", "RUNNING", "BEST")]
    for s in summaries:
        trials = optuna.load_study(study_name=s.study_name, storage=storage).get_trials(deepcopy=False)
        count = {
            state: sum(t.state.name == state for t in trials) for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
        }
        best = "-"
        if s.best_trial is not None and s.best_trial.values:
            best = ", ".join(f"{v:.4f}" for v in s.best_trial.values)
        rows.append((s.study_name, str(len(trials)), *(str(count[k]) for k in count), best))
    table(rows)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import optuna

    from studies._progress import best_summary
    from studies._store import find_study

    url = resolve_url(args.storage)
    storage = open_storage(url, create=False)
    if find_study(storage, args.study) is None:
        raise StudyError(f"no study named {args.study!r} in {redact(url)}: check the name with `studies list`")
    study = optuna.load_study(study_name=args.study, storage=storage)
    trials = study.get_trials(deepcopy=False)
    params = sorted({k for t in trials for k in t.params})
    rows = [("#", "STATE", "VALUE", "STEPS", *params, "NOTE")]
    for t in trials:
        value = ", ".join(f"{v:.4f}" for v in t.values) if t.values else "-"
        note = t.user_attrs.get("fail_reason", "") or ("enqueued" if t.user_attrs.get("enqueued") else "")
        if "retry_of" in t.user_attrs:
            note = f"rerun of {t.user_attrs['retry_of']}"
        rows.append(
            (
                str(t.number),
                t.state.name,
                value,
                str(len(t.intermediate_values)),
                *(short(t.params.get(p)) for p in params),
                note,
            )
        )
    print(f"study {study.study_name} in {redact(url)}: {len(trials)} trials")
    table(rows)
    best = best_summary(study)
    if best:
        print(best)
    promoted = study.user_attrs.get("promoted")
    if promoted:
        print(f"promoted: trial {promoted['trial']} at {promoted['dir']}")
    disk = _disk_line(study)
    if disk:
        print(disk)
    book = LeaseBook(url)
    from studies._claim import STALE_AFTER_SECONDS

    live = book.live_leases(args.study, STALE_AFTER_SECONDS)
    book.close()
    if live:
        print(f"running: {len(live)} launcher(s) ({', '.join(f'{x.host}:{x.pid}' for x in live)})")
    return 0


def _disk_line(study: Any) -> str | None:
    """``disk: ...`` for a study created by this tool (its spec says where its files are)."""
    from studies._retention import disk_use, human_bytes
    from studies._store import stored_spec

    try:
        spec = stored_spec(study)
    except StudyError:  # not created by this tool, or its stored spec no longer validates: no folders to measure
        return None
    use = disk_use(study, spec)
    removed = f"; {human_bytes(use['removed'])} removed by the retention policy" if use["removed"] else ""
    held = human_bytes(use["trials"] + use["ray"])
    return f"disk: {held} (trial folders {human_bytes(use['trials'])}, Ray {human_bytes(use['ray'])}){removed}"


def cmd_delete(args: argparse.Namespace) -> int:
    from studies._store import delete_study, find_study

    url = resolve_url(args.storage)
    storage = open_storage(url, create=False)
    if find_study(storage, args.study) is None:
        raise StudyError(f"no study named {args.study!r} in {redact(url)}: check the name with `studies list`")
    if not args.yes:
        if not sys.stdin.isatty():
            raise StudyError(f"refusing to delete {args.study!r} without confirmation: add --yes")
        try:
            answer = input(f"delete study {args.study!r} and all its trials from {redact(url)}? [y/N] ")
        except EOFError:  # Ctrl-D: no
            answer = ""
            print()
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 0
    book = LeaseBook(url)
    try:
        delete_study(storage, args.study, book)
    finally:
        book.close()
    print(f"deleted study {args.study}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    url = resolve_url(args.storage)
    storage = open_storage(url, create=False)
    # Bind once before the server starts: its banner would come before a bind error otherwise.
    check_can_serve(args.host, args.port)
    from optuna_dashboard import run_server

    address = f"[{args.host}]" if ":" in args.host else args.host
    print(f"optuna-dashboard on {redact(url)}: http://{address}:{args.port}/ (Ctrl-C to stop)", flush=True)
    try:
        run_server(storage, host=args.host, port=args.port)
    except OSError as e:  # another process took the port since the check
        raise StudyError(_cannot_serve(args.host, args.port, e)) from e
    return 0


def check_can_serve(host: str, port: int) -> None:
    """Bind ``host:port`` the way the dashboard's server will, and let go of it again.

    Raises:
        StudyError: If the port is out of range or taken, or the host is not an address of this machine.
    """
    import socket

    if not 1 <= port <= 65535:
        raise StudyError(f"--port {port} is not a port number: give one from 1 to 65535")
    # Like Bottle's WSGIRefServer: IPv6 when the host has a colon, address reuse on.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        raise StudyError(_cannot_serve(host, port, e)) from None


def _cannot_serve(host: str, port: int, error: OSError) -> str:
    import errno
    import socket

    anywhere = "use 127.0.0.1 (this machine only), 0.0.0.0 (every network) or an address of this machine"
    if isinstance(error, socket.gaierror):
        return f"cannot serve on --host {host}: the name does not resolve ({error.strerror}): {anywhere}"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"cannot serve on --host {host}: it is not an address of this machine: {anywhere}"
    if error.errno == errno.EADDRINUSE:
        return f"cannot serve on {host}:{port}: the port is in use (another dashboard?): pick another --port"
    if error.errno == errno.EACCES:
        return f"cannot serve on {host}:{port}: ports below 1024 need administrator rights: pick another --port"
    return f"cannot serve on {host}:{port}: {error.strerror or error}: check --host and --port"
