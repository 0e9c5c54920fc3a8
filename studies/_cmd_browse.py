"""The command that draws a study: ``report``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from storage import open_storage, redact, resolve_url
from studies._cli_common import storage_option
from studies._errors import NotFoundError


def register(sub: Any) -> None:
    """Add ``report`` to the ``studies`` command."""
    report = sub.add_parser("report", help="draw a study's plots (PNG and HTML) and write summary.md")
    report.add_argument("study")
    report.add_argument("--out", metavar="DIR", help="report folder (default reports/STUDY)")
    report.add_argument(
        "--no-attach", action="store_true", help="do not attach the plots to the study's artifacts (dashboard)"
    )
    storage_option(report)
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    import optuna

    from studies._store import find_study
    from studies.browse.report import write_report

    url = resolve_url(args.storage)
    storage = open_storage(url, create=False)
    if find_study(storage, args.study) is None:
        raise NotFoundError(f"no study named {args.study!r} in {redact(url)}: check the name with `studies list`")
    study = optuna.load_study(study_name=args.study, storage=storage)
    out = Path(args.out or Path("reports") / args.study)
    report = write_report(study, out)
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.name in ("COMPLETE", "PRUNED")]
    if not finished:
        print(f"study {args.study} has no COMPLETE or PRUNED trial yet: only the timeline and summary are drawn")
    elif len(finished) == 1:
        print(f"study {args.study} has one finished trial: the plots that compare trials are left out")
    print(f"report of {args.study} in {out}/: summary.md and {len(report.plots)} plots (PNG + HTML)")
    for name, title in report.plots:
        print(f"  {name}.png  {title}")
    for name, why in report.skipped:
        print(f"  (not drawn) {name}: {why}")
    if not args.no_attach and "spec_hash" in study.user_attrs:
        from studies.browse.artifacts import attach

        for name, _ in report.plots:
            attach(study, None, out / f"{name}.png")
        if report.summary is not None:
            attach(study, None, report.summary)
        print("attached the PNGs and summary.md to the study's artifacts (see `studies dashboard`)")
    return 0
