"""What a study keeps on disk: the retention policy for the files trials write.

A trial writes, under ``work_dir``: its epoch checkpoint (model, optimizer and
scheduler state) in ``trials/<study>/trial-NNNN/checkpoints/``, a copy restored
from Ray when it was retried (``restored-checkpoint/``), its best model
(``best_model/``), and Ray persists a copy of each reported checkpoint under
``ray/``. The checkpoints are needed only to resume that trial, so they go once
the trial is concluded (COMPLETE, PRUNED or FAIL). Best-model folders are kept
for the ``retention.keep_best`` best COMPLETE trials (by the first objective)
and for every trial not concluded yet, so the promoted model is always there.

What was removed, and how many bytes it held, is recorded in the study's
``removed_files`` user attribute, by trial number: Optuna does not let a
concluded trial's own attributes change.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studies._observers import TrialObserver

if TYPE_CHECKING:
    import optuna

    from studies._spec import StudySpec

_log = logging.getLogger(__name__)

REMOVED_ATTR = "removed_files"
# The parts of a trial's folder, by what they are.
CHECKPOINT_PARTS = ("checkpoints", "restored-checkpoint")
BEST_MODEL_PART = "best_model"
_CONCLUDED = ("COMPLETE", "PRUNED", "FAIL")


def folder_bytes(path: Path) -> int:
    """The bytes held by the files under ``path`` (0 if it does not exist)."""
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    total = 0
    for item in path.rglob("*"):
        try:
            if item.is_file() and not item.is_symlink():
                total += item.stat().st_size
        except OSError:  # removed while we looked
            continue
    return total


def _launch_relative(study: optuna.Study, path: str) -> Path:
    """``path`` as the launcher saw it: relative paths are relative to the study's launch folder."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute():
        return candidate
    launch_dir = study.user_attrs.get("launch_dir")
    return Path(launch_dir) / candidate if launch_dir else candidate


def trial_root(study: optuna.Study, spec: StudySpec) -> Path:
    """The folder that holds the study's trial folders."""
    return _launch_relative(study, spec.work_dir) / "trials" / spec.name


def trial_dir(study: optuna.Study, spec: StudySpec, trial: optuna.trial.FrozenTrial) -> Path:
    """The trial's own folder (where the trainable wrote it, else where it would have)."""
    recorded = trial.user_attrs.get("trial_dir")
    if recorded:
        return Path(recorded)
    return trial_root(study, spec) / f"trial-{trial.number:04d}"


def ray_checkpoints(trial: optuna.trial.FrozenTrial) -> list[Path]:
    """Ray's persisted checkpoint folders of the trial (``checkpoint_NNNNNN`` in its Ray trial folder)."""
    folders: set[Path] = set()
    ray_path = trial.user_attrs.get("ray_trial_path")
    if ray_path and Path(ray_path).is_dir():
        folders.update(p for p in Path(ray_path).glob("checkpoint_*") if p.is_dir())
    checkpoint = trial.user_attrs.get("checkpoint_path")
    if checkpoint and Path(checkpoint).is_dir():
        folders.add(Path(checkpoint))
    return sorted(folders)


@dataclass
class Removal:
    """Files of one trial the policy removes now."""

    number: int
    paths: dict[str, list[Path]] = field(default_factory=dict)

    def add(self, kind: str, path: Path) -> None:
        self.paths.setdefault(kind, []).append(path)


def kept_best_models(study: optuna.Study, spec: StudySpec, trials: list[Any]) -> set[int]:
    """The numbers of the COMPLETE trials whose best model is kept: the ``keep_best`` best by the first objective."""
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.values]
    maximize = spec.objective[0].direction == "maximize"
    ranked = sorted(complete, key=lambda t: t.values[0], reverse=maximize)
    return {t.number for t in ranked[: spec.retention.keep_best]}


def plan(study: optuna.Study, spec: StudySpec) -> list[Removal]:
    """What the policy removes from the study's folders now (only what exists)."""
    from studies._rerun import reruns_pending

    trials = study.get_trials(deepcopy=False)
    keep = kept_best_models(study, spec, trials)
    rerun_from = reruns_pending(trials)
    removals = []
    for trial in trials:
        if trial.state.name not in _CONCLUDED or trial.number in rerun_from:
            continue  # a running trial, or an interrupted one whose rerun may still start from its checkpoint
        removal = Removal(trial.number)
        folder = trial_dir(study, spec, trial)
        for part in CHECKPOINT_PARTS:
            if (folder / part).exists():
                removal.add("checkpoints", folder / part)
        for path in ray_checkpoints(trial):
            removal.add("ray_checkpoints", path)
        if trial.number not in keep and (folder / BEST_MODEL_PART).exists():
            removal.add("best_model", folder / BEST_MODEL_PART)
        if removal.paths:
            removals.append(removal)
    return removals


def apply(study: optuna.Study, spec: StudySpec, *, dry_run: bool = False) -> dict[int, dict[str, int]]:
    """Remove what :func:`plan` names and record it; return the bytes removed, by trial and kind.

    Args:
        study: The study.
        spec: Its spec (``work_dir`` and ``retention``).
        dry_run: Only measure what would be removed.
    """
    removed: dict[int, dict[str, int]] = {}
    for removal in plan(study, spec):
        sizes: dict[str, int] = {}
        for kind, paths in removal.paths.items():
            for path in paths:
                sizes[kind] = sizes.get(kind, 0) + folder_bytes(path)
                if not dry_run:
                    shutil.rmtree(path, ignore_errors=True)
        removed[removal.number] = sizes
    if removed and not dry_run:
        _record(study, removed)
        _log.info(
            "study %s: removed %.1f MB of concluded trials' files (%s)",
            study.study_name,
            sum(sum(s.values()) for s in removed.values()) / 1e6,
            ", ".join(f"trial {n}: {'+'.join(s)}" for n, s in sorted(removed.items())),
        )
    return removed


def _record(study: optuna.Study, removed: dict[int, dict[str, int]]) -> None:
    """Merge ``removed`` into the study's ``removed_files`` attribute ({trial: {kind: bytes}})."""
    record: dict[str, dict[str, int]] = dict(study.user_attrs.get(REMOVED_ATTR) or {})
    for number, sizes in removed.items():
        entry = dict(record.get(str(number), {}))
        for kind, size in sizes.items():
            entry[kind] = entry.get(kind, 0) + size
        record[str(number)] = entry
    study.set_user_attr(REMOVED_ATTR, record)


def disk_use(study: optuna.Study, spec: StudySpec) -> dict[str, int]:
    """Bytes the study holds now: its trial folders and Ray's trial folders, and what the policy removed so far."""
    trials = study.get_trials(deepcopy=False)
    ray_folders = {Path(t.user_attrs["ray_trial_path"]) for t in trials if t.user_attrs.get("ray_trial_path")}
    removed = study.user_attrs.get(REMOVED_ATTR) or {}
    return {
        "trials": folder_bytes(trial_root(study, spec)),
        "ray": sum(folder_bytes(p) for p in ray_folders),
        "removed": sum(sum(entry.values()) for entry in removed.values()),
    }


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


class RetentionObserver(TrialObserver):
    """Applies the policy whenever a trial concludes, and once more when the launch ends."""

    def __init__(self, spec: StudySpec) -> None:
        self.spec = spec

    def trial_finished(self, study: optuna.Study, number: int) -> None:
        apply(study, self.spec)

    def launch_ended(self, study: optuna.Study, spec: StudySpec) -> None:
        apply(study, self.spec)
