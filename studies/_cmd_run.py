"""The commands that run studies: ``launch``, ``resume``, ``promote`` and ``validate``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from storage import open_storage, redact, resolve_url
from studies._cli_common import storage_option


def register(sub: Any) -> None:
    """Add ``validate``, ``launch``, ``resume`` and ``promote`` to the ``studies`` command."""
    launch = sub.add_parser("launch", help="run a study from a spec file or preset until its budget is met")
    launch.add_argument(
        "spec", metavar="SPEC_OR_PRESET", help="a YAML spec, or a preset name (quickstart, imdb-bert, ...)"
    )
    launch.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="KEY=VALUE",
        help="override a spec field, e.g. --set budget.n_trials=10",
    )
    launch.add_argument("--new-name", metavar="NAME", help="run the spec as a new study with this name")
    launch.add_argument("--join", action="store_true", help="work on the study beside a launcher already running it")
    launch.add_argument(
        "--ray-address", metavar="ADDR", help="Ray cluster to join (else RAY_ADDRESS, else a local Ray)"
    )
    launch.add_argument("--quiet", action="store_true", help="no progress display")
    storage_option(launch)
    launch.set_defaults(handler=cmd_launch)

    resume = sub.add_parser("resume", help="continue a study from the store (after a stop or a crash)")
    resume.add_argument("study")
    resume.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="KEY=VALUE",
        help="change a harmless field (budget, resources, wandb, ...)",
    )
    resume.add_argument("--join", action="store_true", help="work on the study beside a launcher already running it")
    resume.add_argument("--ray-address", metavar="ADDR")
    resume.add_argument("--quiet", action="store_true")
    storage_option(resume)
    resume.set_defaults(handler=cmd_resume)

    promote = sub.add_parser("promote", help="(re)promote a study's best trial to its model directory")
    promote.add_argument("study")
    storage_option(promote)
    promote.set_defaults(handler=cmd_promote)

    validate = sub.add_parser("validate", help="check a spec (and --set overrides) without running it")
    validate.add_argument("spec", metavar="SPEC_OR_PRESET")
    validate.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE")
    validate.set_defaults(handler=cmd_validate)


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
    try:
        outcome = launch(
            spec,
            storage_url=args.storage,
            ray_address=args.ray_address,
            join=args.join,
            stream=None if args.quiet else sys.stderr,
        )
    except KeyboardInterrupt:
        raise _interrupted(spec.name, resolve_url(args.storage, spec.storage)) from None
    return _summarize(outcome)


def cmd_resume(args: argparse.Namespace) -> int:
    from studies._resume import resume

    try:
        outcome = resume(
            args.study,
            storage_url=args.storage,
            overrides=args.overrides,
            ray_address=args.ray_address,
            join=args.join,
            stream=None if args.quiet else sys.stderr,
        )
    except KeyboardInterrupt:
        raise _interrupted(args.study, resolve_url(args.storage)) from None
    return _summarize(outcome)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a launch; ``hint`` says what is left of the study and how to go on."""

    def __init__(self, hint: str) -> None:
        super().__init__(hint)
        self.hint = hint


def _interrupted(study_name: str, url: str) -> Interrupted:
    """What to tell the user after Ctrl-C: resume the study if the store kept it, else that nothing was kept.

    A launch deletes a study it created when no trial had started yet, so the
    store is asked rather than assumed.
    """
    from studies._store import find_study

    try:
        kept = find_study(open_storage(url, create=False), study_name) is not None
    except (Exception, KeyboardInterrupt):
        return Interrupted("")
    if not kept:
        return Interrupted(f"no trial of study {study_name} had started, so nothing was kept in {redact(url)}")
    # `studies resume` reads --storage and STUDIES_STORAGE only (not the spec): name the store when needed.
    where = "" if url == resolve_url(None) else f" --storage {redact(url)}"
    return Interrupted(f"continue with `studies resume {study_name}{where}`")


def _summarize(outcome: Any) -> int:
    started = f"{outcome.started} trial{'' if outcome.started == 1 else 's'}"
    done = ", ".join(f"{n} {k.lower()}" for k, n in outcome.finished.items() if n)
    if outcome.started and not done:
        done = "none finished"
    print(f"study {outcome.study_name}: this launch started {started}" + (f" ({done})" if done else ""))
    if outcome.best_value:
        print(f"best value: {outcome.best_value[0]:.4f}")
    if outcome.promoted:
        print(f"promoted model: {outcome.promoted}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from studies._names import require_name
    from studies._promote import promote

    require_name(args.study, "study")
    open_storage(resolve_url(args.storage), create=False)  # a mistyped store is an error, not a new empty one
    path = promote(args.study, args.storage)
    print(f"promoted model: {path}")
    return 0
