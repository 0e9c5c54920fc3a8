"""The commands that read and edit the store: ``status``, ``list``, ``delete`` and ``dashboard``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from storage import LeaseBook, open_storage, redact, resolve_url
from studies._cli_common import port_number, short, storage_option, table
from studies._errors import StudyError


def register(sub: Any) -> None:
    """Add ``status``, ``list``, ``delete`` and ``dashboard`` to the ``studies`` command."""
    status = sub.add_parser("status", help="a study's trials and best trial")
    status.add_argument("study")
    status.add_argument("--json", action="store_true", help="print one JSON object (shape: studies.status/1)")
    status.add_argument("--watch", action="store_true", help="live view until the study is done (Ctrl-C stops)")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between --watch redraws (default 2)")
    storage_option(status)
    status.set_defaults(handler=cmd_status)

    listing = sub.add_parser("list", help="the studies in the store")
    listing.add_argument("--json", action="store_true", help="print one JSON object (shape: studies.list/1)")
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
    dashboard.add_argument(
        "--artifact-dir",
        action="append",
        metavar="DIR",
        help="artifact folder to serve (repeatable; default: the folder each study's spec names)",
    )
    storage_option(dashboard)
    dashboard.set_defaults(handler=cmd_dashboard)


def cmd_list(args: argparse.Namespace) -> int:
    import optuna

    url = resolve_url(args.storage)
    storage = open_storage(url, create=False)
    if args.json:
        from studies.browse.status import list_record

        print(json.dumps(list_record(storage, redact(url)), indent=2))
        return 0
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
    if args.watch:
        from studies.browse.status import watch

        if not args.interval > 0:
            raise StudyError(f"--interval {args.interval:g} must be a positive number of seconds")
        watch(lambda: optuna.load_study(study_name=args.study, storage=storage), args.interval, sys.stdout)
        return 0
    if args.json:
        return _print_status_json(study, url)
    trials = study.get_trials(deepcopy=False)
    params = sorted({k for t in trials for k in t.params})
    rows = [("#", "STATE", "VALUE", "STEPS", *params, "NOTE")]
    for t in trials:
        value = ", ".join(f"{v:.4f}" for v in t.values) if t.values else "-"
        note = _failure(t) or ("enqueued" if t.user_attrs.get("enqueued") else "")
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
    from studies.browse.status import link_lines

    for line in link_lines(study):
        print(f"  {line}")
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


def _failure(trial: Any) -> str:
    """A failed trial's reason and message for the NOTE column, cut to fit a line."""
    reason = trial.user_attrs.get("fail_reason", "")
    message = trial.user_attrs.get("fail_message", "")
    text = f"{reason}: {message}" if reason and message else reason
    return text if len(text) <= 80 else text[:79] + "…"


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


def _print_status_json(study: Any, url: str) -> int:
    from studies._claim import STALE_AFTER_SECONDS
    from studies.browse.status import status_record

    book = LeaseBook(url)
    try:
        live = book.live_leases(study.study_name, STALE_AFTER_SECONDS)
    finally:
        book.close()
    print(json.dumps(status_record(study, redact(url), live), indent=2, default=str))
    return 0


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
    from pathlib import Path

    url = resolve_url(args.storage)
    storage = open_storage(url, create=False)
    # Bind once before the server starts: a bind error is then one clear line.
    check_can_serve(args.host, args.port)
    if not is_loopback(args.host):
        print(
            f"warning: --host {args.host} makes the dashboard reachable from other machines, with no login: "
            "anyone who reaches it can read and edit the studies; use 127.0.0.1 and an SSH tunnel instead",
            file=sys.stderr,
            flush=True,
        )
    from studies.browse.artifacts import UnionArtifactStore, store_roots
    from studies.browse.server import make_dashboard_server

    roots = [Path(d).resolve() for d in args.artifact_dir] if args.artifact_dir else store_roots(storage)
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        raise StudyError(f"--artifact-dir {missing[0]} is not a folder: give the artifact_dir of a study's spec")
    try:
        server = make_dashboard_server(storage, args.host, args.port, UnionArtifactStore(roots) if roots else None)
    except OSError as e:  # another process took the port since the check
        raise StudyError(_cannot_serve(args.host, args.port, e)) from e
    address = f"[{args.host}]" if ":" in args.host else args.host
    print(f"optuna-dashboard on {redact(url)}: http://{address}:{args.port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    import ipaddress

    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address


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
