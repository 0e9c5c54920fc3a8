"""Followers of a launch: parts of the service that act when trials start, report and finish.

The bridge owns the study's record; observers keep what is derived from it
current (notes, retention of trial files, ...). Each hook runs in the driver
process, after the store has been written. An observer that fails is logged
and otherwise ignored: it must never cost the study a trial.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from studies._spec import StudySpec

_log = logging.getLogger(__name__)


class TrialObserver:
    """Hooks called by the launcher and the bridge; override the ones you need."""

    def launch_started(self, study: optuna.Study, spec: StudySpec) -> None:
        """The study is open and this launch holds its lease; no trial has started yet."""

    def trial_started(self, study: optuna.Study, number: int) -> None:
        """Trial ``number`` has its parameters and is handed to Ray."""

    def trial_reported(self, study: optuna.Study, number: int, step: int) -> None:
        """Trial ``number``'s report at ``step`` is stored (and the pruner has decided)."""

    def trial_failing(self, study: optuna.Study, number: int) -> None:
        """Trial ``number`` is about to be told FAIL: the last moment its system attributes can be written."""

    def trial_finished(self, study: optuna.Study, number: int) -> None:
        """Trial ``number`` is told: COMPLETE, PRUNED or FAIL."""

    def launch_ended(self, study: optuna.Study, spec: StudySpec) -> None:
        """Ray has stopped and every trial this launch started is told (before promotion)."""

    def promoted(self, study: optuna.Study, spec: StudySpec, model_dir: Any) -> None:
        """The best trial's model was promoted to ``model_dir``."""


def notify(observers: Sequence[TrialObserver], hook: str, *args: Any) -> None:
    """Call ``hook`` on every observer; log, never raise, what one of them raises."""
    for observer in observers:
        try:
            getattr(observer, hook)(*args)
        except Exception as e:
            _log.warning("%s.%s failed: %s: %s", type(observer).__name__, hook, type(e).__name__, e)


def default_observers(spec: StudySpec) -> list[TrialObserver]:
    """The observers every launch of ``spec`` runs with."""
    from studies._retention import RetentionObserver
    from studies.browse import BrowseObserver

    return [RetentionObserver(spec), BrowseObserver(spec)]
