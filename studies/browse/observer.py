"""Keeps the dashboard's view of a study current while it runs: notes, launches, artifacts."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studies._observers import TrialObserver
from studies._records import set_study_record, study_record
from studies._version import __version__
from studies.browse import artifacts, notes

if TYPE_CHECKING:
    import optuna

    from studies._spec import StudySpec

_log = logging.getLogger(__name__)


def storage_url(study: optuna.Study) -> str:
    """The study's store as a URL a user can type, password redacted."""
    from storage import redact

    backend = getattr(study._storage, "_backend", study._storage)
    return redact(str(getattr(backend, "url", "?")))


class BrowseObserver(TrialObserver):
    """Writes the study note, trial notes and artifacts that optuna-dashboard shows.

    Args:
        spec: The spec of the launch it follows.
    """

    def __init__(self, spec: StudySpec) -> None:
        self.spec = spec

    def launch_started(self, study: optuna.Study, spec: StudySpec) -> None:
        launches = list(study_record(study, "launches", []))
        since = launches[-1]["at"] if launches else 0.0
        changed = sorted({k for c in study_record(study, "spec_changes", []) if c["at"] > since for k in c["changes"]})
        launches.append({"at": time.time(), "host": socket.gethostname(), "version": __version__, "changes": changed})
        set_study_record(study, "launches", launches)
        self._study_note(study)

    def trial_started(self, study: optuna.Study, number: int) -> None:
        self._study_note(study)

    def trial_reported(self, study: optuna.Study, number: int, step: int) -> None:
        self._trial_note(study, number)

    def trial_failing(self, study: optuna.Study, number: int) -> None:
        """Attach the trial's full traceback while Optuna still lets the trial be edited."""
        trial = _trial(study, number)
        path = trial.user_attrs.get("traceback_file")
        if path and Path(path).is_file():
            artifacts.attach(study, self.spec, Path(path), trial_id=trial._trial_id)

    def trial_finished(self, study: optuna.Study, number: int) -> None:
        self._trial_note(study, number)
        self._study_note(study)

    def launch_ended(self, study: optuna.Study, spec: StudySpec) -> None:
        from studies._store import find_study

        if find_study(study._storage, study.study_name) is not None:  # a failed first launch deletes its study
            self._study_note(study)

    def promoted(self, study: optuna.Study, spec: StudySpec, model_dir: Any) -> None:
        for name in ("README.md", "promotion.json"):
            path = Path(model_dir) / name
            if path.is_file():
                artifacts.attach(study, spec, path)
        self._study_note(study)

    def _study_note(self, study: optuna.Study) -> None:
        notes.save_note(study, notes.study_note(study, self.spec, storage_url(study)))

    def _trial_note(self, study: optuna.Study, number: int) -> None:
        trial = _trial(study, number)
        notes.save_note(study, notes.trial_note(study, trial, self.spec), trial_id=trial._trial_id)


def _trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return study._storage.get_trial(trial_id)


def refresh_notes(study: optuna.Study, spec: StudySpec) -> None:
    """Rewrite the study note and every trial's note from the store (``studies report`` and old studies)."""
    observer = BrowseObserver(spec)
    for trial in study.get_trials(deepcopy=False):
        notes.save_note(study, notes.trial_note(study, trial, spec), trial_id=trial._trial_id)
    observer._study_note(study)
