"""What each ``studies`` subcommand does; ``_cli`` only parses arguments."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from storage import LeaseBook, open_storage, redact, resolve_url
from studies._errors import StudyError


def cmd_validate(args: argparse.Namespace) -> int:
    from studies._presets import load_spec
    from studies._registry import check_names

    spec = load_spec(args.spec, args.overrides)
    check_names(spec)
    print(f"{spec.name}: valid ({len(spec.search_space.params)} parameters, {spec.budget.n_trials} trials)")
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    from studies._launcher import launch
    from studies._presets import load_spec
    from studies._store import rename_spec

    spec = rename_spec(load_spec(args.spec, args.overrides), args.new_name)
    outcome = launch(
        spec,
        storage_url=args.storage,
        ray_address=args.ray_address,
        join=args.join,
        stream=None if args.quiet else sys.stderr,
    )
    return _summarize(outcome)


def cmd_resume(args: argparse.Namespace) -> int:
    from studies._resume import resume

    outcome = resume(
        args.study,
        storage_url=args.storage,
        overrides=args.overrides,
        ray_address=args.ray_address,
        join=args.join,
        stream=None if args.quiet else sys.stderr,
    )
    return _summarize(outcome)


def _summarize(outcome: Any) -> int:
    done = ", ".join(f"{n} {k.lower()}" for k, n in outcome.finished.items() if n) or "no trials"
    print(f"study {outcome.study_name}: this launch started {outcome.started} trials ({done})")
    if outcome.best_value:
        print(f"best value: {outcome.best_value[0]:.4f}")
    if outcome.promoted:
        print(f"promoted model: {outcome.promoted}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    import optuna

    url = resolve_url(args.storage)
    storage = open_storage(url)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=True)
    if not summaries:
        print(f"no studies in {redact(url)}")
        return 0
    rows = [("STUDY", "TRIALS", "COMPLETE", "PRUNED", "FAIL", "RUNNING", "BEST")]
    for s in summaries:
        trials = optuna.load_study(study_name=s.study_name, storage=storage).get_trials(deepcopy=False)
        count = {
            state: sum(t.state.name == state for t in trials) for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
        }
        best = "-"
        if s.best_trial is not None and s.best_trial.values:
            best = ", ".join(f"{v:.4f}" for v in s.best_trial.values)
        rows.append((s.study_name, str(len(trials)), *(str(count[k]) for k in count), best))
    _table(rows)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import optuna

    from studies._progress import best_summary
    from studies._store import find_study

    url = resolve_url(args.storage)
    storage = open_storage(url)
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
                *(_short(t.params.get(p)) for p in params),
                note,
            )
        )
    print(f"study {study.study_name} in {redact(url)}: {len(trials)} trials")
    _table(rows)
    best = best_summary(study)
    if best:
        print(best)
    promoted = study.user_attrs.get("promoted")
    if promoted:
        print(f"promoted: trial {promoted['trial']} at {promoted['dir']}")
    book = LeaseBook(url)
    from studies._launcher import STALE_AFTER_SECONDS

    live = book.live_leases(args.study, STALE_AFTER_SECONDS)
    book.close()
    if live:
        print(f"running: {len(live)} launcher(s) ({', '.join(f'{x.host}:{x.pid}' for x in live)})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from studies._promote import promote_stored

    path = promote_stored(args.study, args.storage)
    print(f"promoted model: {path}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from studies._store import delete_study

    url = resolve_url(args.storage)
    if not args.yes:
        if not sys.stdin.isatty():
            raise StudyError(f"refusing to delete {args.study!r} without confirmation: add --yes")
        answer = input(f"delete study {args.study!r} and all its trials from {redact(url)}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 0
    book = LeaseBook(url)
    try:
        delete_study(open_storage(url), args.study, book)
    finally:
        book.close()
    print(f"deleted study {args.study}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from optuna_dashboard import run_server

    url = resolve_url(args.storage)
    storage = open_storage(url)
    print(f"optuna-dashboard on {redact(url)}: http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    try:
        run_server(storage, host=args.host, port=args.port)
    except OSError as e:
        raise StudyError(f"cannot serve on {args.host}:{args.port}: {e.strerror}: pick another --port") from e
    return 0


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if math.isfinite(value) else str(value)
    return str(value)


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
