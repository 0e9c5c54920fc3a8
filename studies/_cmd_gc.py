"""The ``gc`` command: apply the retention policy to a study's folders."""

from __future__ import annotations

import argparse
from typing import Any

from storage import open_storage, redact, resolve_url
from studies._cli_common import storage_option
from studies._errors import SpecError, StudyError


def register(sub: Any) -> None:
    """Add ``gc`` to the ``studies`` command."""
    gc = sub.add_parser(
        "gc",
        help="delete concluded trials' checkpoints and all but the best trials' models (the retention policy)",
    )
    gc.add_argument("study")
    gc.add_argument(
        "--keep-best",
        type=int,
        metavar="K",
        help="keep the best K trials' models (default: the study's retention.keep_best)",
    )
    gc.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    storage_option(gc)
    gc.set_defaults(handler=cmd_gc)


def cmd_gc(args: argparse.Namespace) -> int:
    import optuna

    from studies._retention import apply, disk_use, human_bytes, kept_best_models
    from studies._store import find_study, stored_spec

    url = resolve_url(args.storage)
    storage = open_storage(url, create=False)
    if find_study(storage, args.study) is None:
        raise StudyError(f"no study named {args.study!r} in {redact(url)}: check the name with `studies list`")
    study = optuna.load_study(study_name=args.study, storage=storage)
    spec = stored_spec(study)
    if args.keep_best is not None:
        if args.keep_best < 1:
            raise SpecError(f"--keep-best {args.keep_best}: keep at least 1 model (the one promotion needs)")
        spec = spec.model_copy(update={"retention": spec.retention.model_copy(update={"keep_best": args.keep_best})})
    removed = apply(study, spec, dry_run=args.dry_run)
    total = sum(sum(sizes.values()) for sizes in removed.values())
    by_kind: dict[str, int] = {}
    for sizes in removed.values():
        for kind, size in sizes.items():
            by_kind[kind] = by_kind.get(kind, 0) + size
    verb = "would remove" if args.dry_run else "removed"
    kinds = ", ".join(f"{kind.replace('_', ' ')} {human_bytes(size)}" for kind, size in sorted(by_kind.items()))
    detail = f" ({kinds})" if kinds else ""
    print(f"study {args.study}: {verb} {human_bytes(total)} from {len(removed)} trial(s){detail}")
    kept = sorted(kept_best_models(study, spec, study.get_trials(deepcopy=False)))
    use = disk_use(study, spec)
    print(
        f"kept: best models of trial(s) {', '.join(map(str, kept)) or '-'} and everything of unfinished trials; "
        f"the study holds {human_bytes(use['trials'] + use['ray'])} now"
    )
    return 0
