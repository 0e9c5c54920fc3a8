"""The Ray Tune side of the bridge: a searcher, a scheduler and a stopper that defer to one StudyBridge.

Ray decides stops in its scheduler, before the searcher sees a result, so only a
scheduler can let Optuna's pruner stop a trial; the searcher asks the study for
parameters within its budget; the stopper ends every trial after Ctrl-C,
too many failures in a row, or once the launch lost its lease. None of them calls Optuna itself.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from studies._trainable import failure_of

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from studies._bridge import StudyBridge


def describe_failure(ray_trial: Trial) -> tuple[str, str]:
    """``(reason, one-line message)`` for a failed Ray trial."""
    from ray import cloudpickle
    from ray.exceptions import RayActorError, RayTaskError

    exc = None
    try:
        # At on_trial_error time the pickle is in the trial's local folder; it
        # reaches Ray's storage path only at the next sync.
        local = ray_trial.pickled_error_file
        if local and os.path.exists(local):
            with open(local, "rb") as f:
                exc = cloudpickle.load(f)
        else:
            exc = ray_trial.get_pickled_error()
    except Exception:  # an unreadable error file must not take the study down
        exc = None
    if isinstance(exc, RayTaskError):
        return failure_of(exc.cause if getattr(exc, "cause", None) is not None else exc)
    if isinstance(exc, RayActorError):
        return "worker_died", "the trial's worker process died (killed or out of memory)"
    text = str(ray_trial.get_error() or "").strip().splitlines()
    return "error", (text[-1] if text else "unknown error")[:500]


def failure_traceback(ray_trial: Trial) -> str | None:
    """The full traceback Ray recorded for a failed trial's last attempt, if it has one."""
    try:
        local = ray_trial.error_file  # as for the pickle: local first, storage after the next sync
        if local and os.path.exists(local):
            with open(local, encoding="utf-8", errors="replace") as f:
                text = f.read()
        else:
            text = str(ray_trial.get_error() or "")
    except Exception:  # an unreadable error file must not take the study down
        return None
    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip() or None  # Ray colours its task names


class _Detachable:
    """Ray pickles searchers, schedulers and callbacks for its own experiment
    restore. Studies resume from the store instead, so the live bridge (study,
    locks, connections) is left out of the pickle."""

    _bridge: StudyBridge | None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_bridge": None}

    @property
    def bridge(self) -> StudyBridge:
        """The live bridge (absent only from a copy Ray unpickled, which studies never run)."""
        if self._bridge is None:
            raise RuntimeError("this Ray component was unpickled without its study bridge")
        return self._bridge


class OptunaSearcher(_Detachable, Searcher):
    """A Ray ``Searcher`` whose every decision is the :class:`StudyBridge`'s."""

    def __init__(self, bridge: StudyBridge) -> None:
        super().__init__(metric=None, mode=None)
        self._bridge = bridge

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        # The study, not Ray, knows the objective; there is nothing to set.
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]  # str: Searcher.FINISHED
        assert self._bridge is not None
        return self._bridge.ask(trial_id)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the study store is the searcher's state."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore: ``studies resume`` rebuilds from the store."""

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        self.bridge.finish(trial_id, result, error)


class OptunaPrunerScheduler(_Detachable, FIFOScheduler):
    """A Ray scheduler that stops a trial when the study's Optuna pruner says prune."""

    def __init__(self, bridge: StudyBridge) -> None:
        super().__init__()
        self._bridge = bridge

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        self.bridge.attach(trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        self.bridge.attach(trial)
        return TrialScheduler.STOP if self.bridge.report(trial.trial_id, result) else TrialScheduler.CONTINUE

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        self.bridge.note_error(trial.trial_id, describe_failure(trial), failure_traceback(trial))


class StopSwitch(_Detachable, Stopper):
    """Tells Ray to stop every trial: after Ctrl-C, or when too many trials in a row failed."""

    def __init__(self, bridge: StudyBridge) -> None:
        self._bridge = bridge
        self.interrupted = False

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        bridge = self._bridge
        return self.interrupted or (bridge is not None and (bridge.given_up or not bridge.check_lease()))
