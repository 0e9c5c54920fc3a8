"""The bridge between Ray Tune and the Optuna study: exact trial records.

Ray's stock ``OptunaSearch`` tells a trial COMPLETE with whatever result it had
when Ray stopped it, drops intermediate values and hard-codes ``NopPruner``.
Here one :class:`StudyBridge` owns every Optuna call of a launch and two thin
Ray adapters feed it:

* :class:`OptunaSearcher` (a Ray ``Searcher``) asks the study for parameters,
  under the study lock and within the study's budget, and tells it the outcome;
* :class:`OptunaPrunerScheduler` (a Ray ``TrialScheduler``) records each report
  as an intermediate value, asks the study's Optuna pruner, and answers STOP
  when it says prune, so Ray frees the trial's resources at once.

A trial ends as exactly one of: COMPLETE (the trainable returned), PRUNED (the
pruner stopped it; its intermediate values up to the stop are kept), or FAIL
with ``fail_reason`` (``error``, ``oom``, ``diverged``, ``worker_died``,
``interrupted``) and a one-line ``fail_message`` in its user attributes.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from studies._spec import OBJECTIVE_METRICS
from studies._trainable import FAILURE_MESSAGE, FAILURE_REASON, failure_of

if TYPE_CHECKING:
    import optuna
    from ray.tune.experiment import Trial

    from storage import StudyLock
    from studies._spec import StudySpec

_log = logging.getLogger(__name__)

FINISHED_STATES = ("COMPLETE", "PRUNED")
_ASK_RETRY_SECONDS = 1.0


@dataclass
class _Live:
    """What the bridge knows of one trial this launch started."""

    trial: optuna.trial.Trial
    started: float
    reports: dict[int, dict[str, float]] = field(default_factory=dict)
    pruned: bool = False
    error: tuple[str, str] | None = None
    attempts: int = 0
    ray_trial: Trial | None = None
    linked: bool = False


def trial_value(spec: StudySpec, reports: dict[int, dict[str, float]]) -> list[float] | None:
    """The objective values of a trial from its reports, per ``spec.select``.

    ``select: last`` takes the last report; ``select: best`` the report that is
    best on the first objective (all objectives are read from that one report,
    so a multi-objective value is always a point the model actually reached).
    """
    steps = [s for s in sorted(reports) if all(_finite(reports[s].get(o.metric)) for o in spec.objective)]
    if not steps:
        return None
    if spec.select == "last":
        chosen = steps[-1]
    else:
        first = spec.objective[0]
        pick = max if first.direction == "maximize" else min
        chosen = pick(steps, key=lambda s: reports[s][first.metric])
    return [float(reports[chosen][o.metric]) for o in spec.objective]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class StudyBridge:
    """Driver-side owner of every Optuna call made while Ray runs a study.

    Args:
        study: The Optuna study (RDB storage).
        spec: The validated spec of the study.
        lock: The study's cross-process lock, held around "check budget, ask".
        launcher_id: This launch's lease id, written on each trial it starts.
    """

    def __init__(self, study: optuna.Study, spec: StudySpec, lock: StudyLock, launcher_id: str) -> None:
        self.study = study
        self.spec = spec
        self._lock = lock
        self._launcher_id = launcher_id
        self._dists = spec.search_space.distributions()
        self._live: dict[str, _Live] = {}
        self._guard = threading.RLock()
        self._next_ask = 0.0
        self.started_here = 0
        self.finished_here: dict[str, int] = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
        # How each trial of this launch ended, by Ray trial id, for the progress display.
        self.outcomes: dict[str, str] = {}
        self.pruning = not spec.multi_objective and spec.pruner.name != "none"
        # Trials of this launch that failed in a row (interrupted ones aside), and the last one's reason.
        self.failures_in_a_row = 0
        self.last_failure: tuple[int, str, str] | None = None

    @property
    def given_up(self) -> bool:
        """Whether ``budget.max_consecutive_failures`` trials in a row failed: the launch should stop."""
        limit = self.spec.budget.max_consecutive_failures
        return limit is not None and self.failures_in_a_row >= limit

    # -- budget ---------------------------------------------------------------

    def budget_counts(self) -> tuple[int, int]:
        """``(finished trials that count, trials running anywhere)`` for this study."""
        from optuna.trial import TrialState

        counts = {TrialState.COMPLETE: 0, TrialState.PRUNED: 0, TrialState.FAIL: 0, TrialState.RUNNING: 0}
        for trial in self.study.get_trials(deepcopy=False, states=tuple(counts)):
            counts[trial.state] += 1
        counted = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
        if self.spec.budget.count_failed:
            counted += counts[TrialState.FAIL]
        return counted, counts[TrialState.RUNNING]

    def n_trials(self) -> int:
        if self.spec.sampler.name == "grid":
            return min(self.spec.budget.n_trials, self.spec.search_space.grid_size())
        return self.spec.budget.n_trials

    # -- searcher side --------------------------------------------------------

    def ask(self, ray_trial_id: str) -> dict[str, Any] | str | None:
        """Start a trial if the budget allows; ``Searcher.FINISHED`` when it is spent."""
        if time.monotonic() < self._next_ask:
            return None
        with self._lock:
            counted, running = self.budget_counts()
            if counted >= self.n_trials() or self.given_up:
                return Searcher.FINISHED
            if counted + running >= self.n_trials():
                # Others' running trials may still fail and free budget: ask again later.
                self._next_ask = time.monotonic() + _ASK_RETRY_SECONDS
                return None
            trial = self.study.ask(self._dists)
            trial.set_user_attr("launcher_id", self._launcher_id)
            trial.set_user_attr("ray_trial_id", ray_trial_id)
        with self._guard:
            self._live[ray_trial_id] = _Live(trial=trial, started=time.time())
            self.started_here += 1
        _log.info("trial %d started with %s", trial.number, trial.params)
        return {"params": dict(trial.params), "trial_number": trial.number}

    def finish(self, ray_trial_id: str, result: dict[str, Any] | None, error: bool) -> None:
        """Tell the study how the trial ended (see the module docstring for the rules)."""

        with self._guard:
            live = self._live.pop(ray_trial_id, None)
        if live is None:
            return
        trial = live.trial
        if live.ray_trial is not None and live.ray_trial.checkpoint is not None:
            trial.set_user_attr("checkpoint_path", live.ray_trial.checkpoint.path)
        trial.set_user_attr("wall_seconds", round(time.time() - live.started, 3))
        if live.attempts:
            trial.set_user_attr("retries", live.attempts - (1 if error else 0))
        self.outcomes[ray_trial_id] = self._conclude(live, result, error)

    def conclude_unfinished(self) -> int:
        """Tell every trial still running when Ray stopped (timeout, interrupt, given up); return how many.

        Ray ends a stopped experiment without telling the searcher about its
        running trials, so they would stay RUNNING in the store. A trial the
        pruner had already stopped is PRUNED; any other is FAIL (``interrupted``)
        and its parameters are queued to run again.
        """
        with self._guard:
            left = list(self._live)
        for ray_trial_id in left:
            self.finish(ray_trial_id, None, False)
        return len(left)

    def _conclude(self, live: _Live, result: dict[str, Any] | None, error: bool) -> str:
        """Tell the trial's final state; return it as the progress display shows it."""
        from optuna.trial import TrialState

        trial = live.trial
        if live.pruned:
            return self._tell(trial, None, TrialState.PRUNED)
        if error:
            kind, message = live.error or ("error", "the trial failed (see the Ray trial log)")
            return self._fail(trial, kind, message)
        if result and result.get(FAILURE_REASON):
            return self._fail(trial, str(result[FAILURE_REASON]), str(result.get(FAILURE_MESSAGE, "")))
        if not (result and result.get("done")):
            outcome = self._fail(
                trial, "interrupted", "the launch stopped (timeout or interrupt) before the trial finished"
            )
            self.study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
            return outcome
        values = trial_value(self.spec, live.reports)
        if values is None:
            return self._fail(trial, "no_reports", "the trial finished without reporting a finite objective value")
        return self._tell(trial, values, TrialState.COMPLETE)

    def _fail(self, trial: optuna.trial.Trial, kind: str, message: str) -> str:
        from optuna.trial import TrialState

        trial.set_user_attr("fail_reason", kind)
        trial.set_user_attr("fail_message", message[:500])
        level = logging.INFO if kind == "interrupted" else logging.WARNING  # the launcher says it once for all
        _log.log(level, "trial %d failed (%s): %s", trial.number, kind, message)
        self._tell(trial, None, TrialState.FAIL)
        if kind != "interrupted":  # the launch stopping is not the trial's fault
            with self._guard:
                self.failures_in_a_row += 1
                self.last_failure = (trial.number, kind, message)
        return f"FAIL ({kind})"

    def _tell(self, trial: optuna.trial.Trial, values: list[float] | None, state: Any) -> str:
        try:
            frozen = self.study.tell(trial, values, state=state)
        except RuntimeError as e:
            # GridSampler calls study.stop() once the grid is exhausted, which only
            # works inside optimize(); the tell itself has been stored by then.
            if "stop" not in str(e):
                raise
            frozen = None
        self.finished_here[state.name] = self.finished_here.get(state.name, 0) + 1
        if state.name in FINISHED_STATES:
            with self._guard:
                self.failures_in_a_row = 0
        shown = (frozen.values if frozen is not None else values) or []
        metric = self.spec.objective[0].metric
        return f"{state.name} {metric}={shown[0]:.4g}" if shown else state.name

    # -- scheduler side -------------------------------------------------------

    def attach(self, ray_trial: Trial) -> None:
        with self._guard:
            live = self._live.get(ray_trial.trial_id)
            if live is not None:
                live.ray_trial = ray_trial

    def report(self, ray_trial_id: str, result: dict[str, Any]) -> bool:
        """Record one report; return whether the Optuna pruner says to stop the trial."""
        with self._guard:
            live = self._live.get(ray_trial_id)
        if live is None or "step" not in result:
            return False
        step = int(result["step"])
        metrics = {k: float(v) for k, v in result.items() if k in REPORTED_METRICS and _is_number(v)}
        live.reports[step] = metrics
        trial = live.trial
        if not live.linked:
            self._link(live, result)
        trial.set_user_attr("reports", [{"step": s, **live.reports[s]} for s in sorted(live.reports)])
        if self.spec.multi_objective:
            return False
        value = metrics.get(self.spec.objective[0].metric)
        if value is None:
            return False
        cached = trial._cached_frozen_trial.intermediate_values
        if step in cached:
            # A retried trial re-reports a step: overwrite it (Trial.report would ignore it).
            self.study._storage.set_trial_intermediate_value(trial._trial_id, step, value)
            cached[step] = value
        else:
            trial.report(value, step)
        if self.pruning and trial.should_prune():
            live.pruned = True
            _log.info("trial %d pruned at step %d (%s=%.4f)", trial.number, step, self.spec.objective[0].metric, value)
            return True
        return False

    def _link(self, live: _Live, result: dict[str, Any]) -> None:
        for key in (
            "hostname",
            "node_ip",
            "pid",
            "node_id",
            "gpu",
            "wandb_run_id",
            "wandb_run_path",
            "trial_dir",
            "best_model_dir",
            "setup_seconds",
        ):
            if result.get(key) not in (None, ""):
                live.trial.set_user_attr(key, result[key])
        if live.ray_trial is not None:
            live.trial.set_user_attr("ray_trial_path", live.ray_trial.path)
        live.linked = True

    def note_error(self, ray_trial: Trial) -> None:
        """Remember why a trial's last attempt failed (called for retries and final failures)."""
        with self._guard:
            live = self._live.get(ray_trial.trial_id)
        if live is None:
            return
        live.attempts += 1
        live.error = describe_failure(ray_trial)


REPORTED_METRICS = (*OBJECTIVE_METRICS, "epoch")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    text = (ray_trial.get_error() or "").strip().splitlines()
    return "error", (text[-1] if text else "unknown error")[:500]


class _Detachable:
    """Ray pickles searchers, schedulers and callbacks for its own experiment
    restore. Studies resume from the store instead, so the live bridge (study,
    locks, connections) is left out of the pickle."""

    _bridge: StudyBridge | None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_bridge": None}


class OptunaSearcher(_Detachable, Searcher):
    """A Ray ``Searcher`` whose every decision is the :class:`StudyBridge`'s."""

    def __init__(self, bridge: StudyBridge) -> None:
        super().__init__(metric=None, mode=None)
        self._bridge = bridge

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        # The study, not Ray, knows the objective; there is nothing to set.
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        assert self._bridge is not None
        return self._bridge.ask(trial_id)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the study store is the searcher's state."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore: ``studies resume`` rebuilds from the store."""

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        self._bridge.finish(trial_id, result, error)


class OptunaPrunerScheduler(_Detachable, FIFOScheduler):
    """A Ray scheduler that stops a trial when the study's Optuna pruner says prune."""

    def __init__(self, bridge: StudyBridge) -> None:
        super().__init__()
        self._bridge = bridge

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        self._bridge.attach(trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        self._bridge.attach(trial)
        return TrialScheduler.STOP if self._bridge.report(trial.trial_id, result) else TrialScheduler.CONTINUE

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        self._bridge.note_error(trial)


class StopSwitch(_Detachable, Stopper):
    """Tells Ray to stop every trial: after Ctrl-C, or when too many trials in a row failed."""

    def __init__(self, bridge: StudyBridge) -> None:
        self._bridge = bridge
        self.interrupted = False

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.interrupted or (self._bridge is not None and self._bridge.given_up)
