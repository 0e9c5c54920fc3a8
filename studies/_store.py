"""The study's record in the store: its spec, its launches, its orphaned trials.

At launch the validated spec (secrets redacted) is stored as a study record
(:mod:`studies._records`), its identity hash and the package version as study
user attributes, so ``studies resume NAME`` rebuilds everything from the store alone.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from studies._errors import ConflictError, NotFoundError
from studies._records import set_study_record, study_record
from studies._version import __version__

if TYPE_CHECKING:
    from collections.abc import Collection

    import optuna

    from storage import LeaseBook
    from studies._spec import StudySpec

_log = logging.getLogger(__name__)

HARMLESS = (
    "budget",
    "resources",
    "wandb",
    "promotion",
    "storage",
    "work_dir",
    "artifact_dir",
    "description",
    "enqueue",
)


def directions(spec: StudySpec) -> list[Literal["minimize", "maximize"]]:
    return [o.direction for o in spec.objective]


def find_study(storage: Any, name: str) -> Any | None:
    """The study summary of ``name`` in ``storage``, or ``None``."""
    import optuna

    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if summary.study_name == name:
            return summary
    return None


def load_study(storage: Any, name: str, spec: StudySpec | None = None) -> optuna.Study:
    """Load an existing study with the sampler and pruner its spec names."""
    import optuna

    from studies._registry import build_pruner, build_sampler

    if find_study(storage, name) is None:
        raise NotFoundError(f"no study named {name!r} in the store: check the name with `studies list`")
    if spec is None:
        spec = stored_spec(optuna.load_study(study_name=name, storage=storage))
    return optuna.load_study(study_name=name, storage=storage, sampler=build_sampler(spec), pruner=build_pruner(spec))


def stored_spec(study: optuna.Study) -> StudySpec:
    """The spec a study was launched with, as stored."""
    from studies._presets import validate_spec

    raw = study_record(study, "spec")
    if raw is None:
        raise NotFoundError(
            f"study {study.study_name!r} was not created by this tool (it has no stored spec): "
            "launch it from a spec file instead"
        )
    return validate_spec(raw, source=f"stored spec of {study.study_name}")


def open_or_create(storage: Any, spec: StudySpec) -> tuple[optuna.Study, bool]:
    """Create the study, or load it if its stored identity matches ``spec``.

    Returns:
        The study and whether it was created by this call.

    Raises:
        ConflictError: If a study of that name exists with a different task,
            model, trainer, objective, search space, sampler or pruner.
    """
    import optuna

    from studies._registry import build_pruner, build_sampler

    sampler, pruner = build_sampler(spec), build_pruner(spec)
    existing = find_study(storage, spec.name)
    if existing is None:
        study = optuna.create_study(
            study_name=spec.name, storage=storage, directions=directions(spec), sampler=sampler, pruner=pruner
        )
        _name_metrics(study, spec)
        study.set_user_attr("uid", uuid.uuid4().hex[:10])
        study.set_user_attr("launch_dir", str(Path.cwd()))  # what the spec's relative paths are relative to
        _record_spec(study, spec, created=True)
        return study, True
    study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner)
    old = study.user_attrs.get("spec_hash")
    if old is None:
        raise ConflictError(
            f"study {spec.name!r} exists but was not created by this tool: use --new-name NAME to start a new study"
        )
    if old != spec.identity_hash():
        changed = _changed_sections(study_record(study, "spec", {}), spec)
        raise ConflictError(
            f"study {spec.name!r} exists with a different {', '.join(changed) or 'spec'}: "
            f"resume it unchanged (`studies resume {spec.name}`), or start over with --new-name NAME "
            f"or `studies delete {spec.name}`"
        )
    if study.metric_names is None:  # a store from before metric names were set
        _name_metrics(study, spec)
    _record_spec(study, spec, created=False)
    return study, False


def _name_metrics(study: optuna.Study, spec: StudySpec) -> None:
    """Name the objective values (``accuracy``, ...) for the dashboard, reports and the CLI."""
    import warnings

    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.set_metric_names([o.metric for o in spec.objective])


def _changed_sections(old: dict[str, Any], spec: StudySpec) -> list[str]:
    new = spec.identity()
    old = dict(old)
    if isinstance(old.get("model"), dict) and not old["model"].get("trust_remote_code"):
        # identity() leaves trust_remote_code out when it is off; compare the stored spec the same way
        old["model"] = {k: v for k, v in old["model"].items() if k != "trust_remote_code"}
    return [key for key in new if old.get(key) != new[key]]


def _record_spec(study: optuna.Study, spec: StudySpec, *, created: bool) -> None:
    """Store the spec; on a relaunch, record which harmless sections changed."""
    redacted = spec.redacted()
    if not created:
        before = study_record(study, "spec", {})
        changes = {
            k: {"from": before.get(k), "to": redacted.get(k)} for k in HARMLESS if before.get(k) != redacted.get(k)
        }
        if changes:
            history = list(study_record(study, "spec_changes", []))
            history.append({"at": time.time(), "changes": changes})
            set_study_record(study, "spec_changes", history)
            _log.info("study %s: recorded changes to %s", spec.name, ", ".join(changes))
    set_study_record(study, "spec", redacted)
    study.set_user_attr("spec_hash", spec.identity_hash())
    study.set_user_attr("package_version", __version__)


def reconcile_orphans(
    study: optuna.Study, book: LeaseBook, stale_after: float, keep: Collection[str] = ()
) -> list[int]:
    """Fail the RUNNING trials of dead launchers as ``interrupted`` and re-enqueue their params.

    A trial belongs to the launcher in its ``launcher_id`` user attribute; it is
    an orphan when no live lease has that id. Orphans are never deleted. Resume
    calls this when it starts, and a running launcher calls it for its dead
    co-launchers (under the study lock, so two survivors never both re-enqueue one trial).

    Args:
        study: The study.
        book: The store's leases.
        stale_after: How old a heartbeat may be before its launcher counts as dead.
        keep: Launcher ids whose trials are never orphans (the caller's own).

    Returns:
        The numbers of the trials that were marked FAIL.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return []
    live = {lease.launcher_id for lease in book.live_leases(study.study_name, stale_after)} | set(keep)
    orphans = []
    storage = study._storage
    for trial in running:
        if trial.user_attrs.get("launcher_id") in live:
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, "fail_reason", "interrupted")
            storage.set_trial_user_attr(
                trial._trial_id, "fail_message", "its launcher stopped (crash, kill or timeout) while the trial ran"
            )
            concluded = storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # its launcher, or another survivor, concluded it meanwhile
        if concluded:
            # A launcher killed while the sampler was still choosing leaves a trial with some
            # or none of its parameters and no Ray trial: there is nothing to run again.
            if trial.params and "ray_trial_id" in trial.user_attrs:
                study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
            orphans.append(trial.number)
    if orphans:
        _log.warning(
            "study %s: marked interrupted trials %s as FAIL and queued their params again", study.study_name, orphans
        )
    return orphans


def delete_study(storage: Any, name: str, book: LeaseBook) -> None:
    import optuna

    if find_study(storage, name) is None:
        raise NotFoundError(f"no study named {name!r} in the store: check the name with `studies list`")
    optuna.delete_study(study_name=name, storage=storage)
    book.forget(name)


def rename_spec(spec: StudySpec, new_name: str | None) -> StudySpec:
    """``spec`` under the study name ``new_name`` (``--new-name``); ``None`` keeps the spec's name.

    Raises:
        SpecError: If ``new_name`` breaks the name rule.
    """
    if new_name is None:
        return spec
    from studies._names import require_name

    return spec.model_copy(update={"name": require_name(new_name, "--new-name")})
