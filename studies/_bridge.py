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
``interrupted``) and a one-line ``fail_message`` in its user attributes; a
failure's full traceback is written to ``traceback.txt`` in the trial folder,
whose path is the ``traceback_file`` user attribute.

With a :class:`~studies._claim.StudyClaim`, the bridge also looks after the
launch's co-launchers: it reconciles the orphans of dead ones every second while
the budget is blocked by running trials (the claim's reaper thread does so every
heartbeat interval as well), and
stops starting trials once its own lease was lost. A trial that another
launcher already concluded (it judged this one dead) is left as it is.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

from studies._budget import budget_counts, n_trials
from studies._observers import notify
from studies._records import set_trial_record
from studies._rerun import rerun_start
from studies._spec import OBJECTIVE_METRICS
from studies._task import trial_value
from studies._trainable import FAILURE_MESSAGE, FAILURE_REASON, FAILURE_TRACEBACK

if TYPE_CHECKING:
    from collections.abc import Sequence

    import optuna
    from ray.tune.experiment import Trial

    from storage import StudyLock
    from studies._claim import StudyClaim
    from studies._observers import TrialObserver
    from studies._spec import StudySpec

_log = logging.getLogger(__name__)

FINISHED_STATES = ("COMPLETE", "PRUNED")
# Failures that are not the trial's: its parameters are queued to run again.
REQUEUED_FAILURES = ("interrupted", "worker_replaced")
_ASK_RETRY_SECONDS = 1.0


@dataclass
class _Live:
    """What the bridge knows of one trial this launch started."""

    trial: optuna.trial.Trial
    started: float
    reports: dict[int, dict[str, float]] = field(default_factory=dict)
    pruned: bool = False
    error: tuple[str, str] | None = None
    traceback: str | None = None
    concluded_elsewhere: bool = False
    attempts: int = 0
    ray_trial: Trial | None = None
    linked: bool = False


class StudyBridge:
    """Driver-side owner of every Optuna call made while Ray runs a study.

    Args:
        study: The Optuna study (RDB storage).
        spec: The validated spec of the study.
        lock: The study's cross-process lock, held around "check budget, ask".
        launcher_id: This launch's lease id, written on each trial it starts.
        observers: Told when a trial starts, reports and finishes (after the store is written).
        claim: The launch's claim: reaps dead co-launchers' orphans, says when the lease was lost.
    """

    def __init__(
        self,
        study: optuna.Study,
        spec: StudySpec,
        lock: StudyLock,
        launcher_id: str,
        observers: Sequence[TrialObserver] = (),
        claim: StudyClaim | None = None,
    ) -> None:
        self.study = study
        self._claim = claim
        self._next_reap = 0.0
        self.lease_lost = False
        self.trial_root = Path(spec.work_dir).resolve() / "trials" / spec.name
        self.observers = list(observers)
        self.spec = spec
        self._lock = lock
        self._launcher_id = launcher_id
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
        """``(finished trials that count, trials running anywhere)`` for this study (see :mod:`studies._budget`)."""
        return budget_counts(self.study, self.spec)

    def n_trials(self) -> int:
        return n_trials(self.spec)

    # -- co-launchers ---------------------------------------------------------

    def check_lease(self) -> bool:
        """Whether this launch still holds its lease; once lost, it starts no trial and stops the running ones."""
        if not self.lease_lost and self._claim is not None and self._claim.lease_lost:
            self.lease_lost = True
            _log.error(
                "this launcher could not renew its lease for over %.0f s: another launcher may have judged it dead; "
                "it stops its trials instead of racing that one",
                self._claim.stale_after,
            )
        return not self.lease_lost

    def reap(self, force: bool = False) -> None:
        """Reconcile dead co-launchers' orphans, at most once per heartbeat interval unless ``force``."""
        if self._claim is None or (not force and time.monotonic() < self._next_reap):
            return
        self._next_reap = time.monotonic() + self._claim.heartbeat_seconds
        if self._claim.reap(self.study):
            self._next_ask = 0.0  # the freed budget can be used at once

    # -- searcher side --------------------------------------------------------

    def ask(self, ray_trial_id: str) -> dict[str, Any] | str | None:
        """Start a trial if the budget allows; ``Searcher.FINISHED`` when it is spent."""
        if not self.check_lease():
            return Searcher.FINISHED
        if time.monotonic() < self._next_ask:
            return None
        self.reap()
        with self._lock:
            counted, running = self.budget_counts()
            if counted >= self.n_trials() or self.given_up:
                return Searcher.FINISHED
            if counted + running >= self.n_trials():
                # Others' running trials may still fail and free budget, or belong to a dead
                # launcher: look again in a second.
                self._next_ask = time.monotonic() + _ASK_RETRY_SECONDS
                self._next_reap = 0.0
                return None
            trial = self.study.ask()
            # Define-by-run: a conditional parameter is suggested only when its condition holds,
            # so an inactive one is absent from the trial (not filled with a default).
            params = self.spec.search_space.sample(trial)
            trial.set_user_attr("launcher_id", self._launcher_id)
            trial.set_user_attr("ray_trial_id", ray_trial_id)
        live = _Live(trial=trial, started=time.time())
        with self._guard:
            self._live[ray_trial_id] = live
            self.started_here += 1
        config = {"params": params, "trial_number": trial.number}
        start = rerun_start(self.study, trial)
        if start is not None:
            config.update(start.config())
            self._take_over_reports(live, start.reports)
            _log.info(
                "trial %d reruns trial %d from its step %d", trial.number, start.original, max(start.reports, default=0)
            )
        _log.info("trial %d started with %s", trial.number, params)
        notify(self.observers, "trial_started", self.study, trial.number)
        return config

    def _take_over_reports(self, live: _Live, reports: dict[int, dict[str, float]]) -> None:
        """Record the interrupted trial's reports up to its checkpoint as the rerun's own."""
        for step in sorted(reports):
            live.reports[step] = reports[step]
            value = None if self.spec.multi_objective else reports[step].get(self.spec.objective[0].metric)
            if value is not None:
                live.trial.report(value, step)
        if reports:
            set_trial_record(
                self.study,
                live.trial._trial_id,
                "reports",
                [{"step": s, **live.reports[s]} for s in sorted(live.reports)],
            )

    def finish(self, ray_trial_id: str, result: dict[str, Any] | None, error: bool) -> None:
        """Tell the study how the trial ended (see the module docstring for the rules)."""

        from optuna.exceptions import UpdateFinishedTrialError

        with self._guard:
            live = self._live.pop(ray_trial_id, None)
        if live is None:
            return
        trial = live.trial
        try:
            if live.concluded_elsewhere:
                raise UpdateFinishedTrialError("concluded by another launcher")
            if live.ray_trial is not None and live.ray_trial.checkpoint is not None:
                trial.set_user_attr("checkpoint_path", live.ray_trial.checkpoint.path)
            trial.set_user_attr("wall_seconds", round(time.time() - live.started, 3))
            if live.attempts:
                trial.set_user_attr("retries", live.attempts - (1 if error else 0))
            self.outcomes[ray_trial_id] = self._conclude(live, result, error)
        except UpdateFinishedTrialError:
            # Another launcher judged this one dead and concluded the trial (FAIL interrupted, queued again).
            _log.warning("trial %d was concluded by another launcher meanwhile; its record is kept", trial.number)
            self.outcomes[ray_trial_id] = "concluded elsewhere"
            return
        notify(self.observers, "trial_finished", self.study, trial.number)

    def conclude_unfinished(self) -> int:
        """Tell every trial still running when Ray stopped (timeout, interrupt, given up); return how many.

        Ray ends a stopped experiment without telling the searcher about its
        running trials, so they would stay RUNNING in the store. A trial the
        pruner had already stopped is PRUNED; any other is FAIL (``interrupted``)
        and its parameters are queued to run again.
        """
        from storage import StoreUnreachable

        with self._guard:
            left = list(self._live)
        for ray_trial_id in left:
            try:
                self.finish(ray_trial_id, None, False)
            except StoreUnreachable:
                _log.warning("the store is unreachable: %d running trial(s) are left to `studies resume`", len(left))
                return 0  # waiting for the store once per trial would only delay the one line that matters
        return len(left)

    def _conclude(self, live: _Live, result: dict[str, Any] | None, error: bool) -> str:
        """Tell the trial's final state; return it as the progress display shows it."""
        from optuna.trial import TrialState

        trial = live.trial
        if live.pruned:
            return self._tell(trial, None, TrialState.PRUNED)
        if error:
            kind, message = live.error or ("error", "the trial failed (see the Ray trial log)")
            outcome = self._fail(trial, kind, message, live.traceback)
            if kind == "worker_replaced":  # no Ray retry was left to run it on a fresh worker
                self.study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
            return outcome
        if result and result.get(FAILURE_REASON):
            reason, message = str(result[FAILURE_REASON]), str(result.get(FAILURE_MESSAGE, ""))
            return self._fail(trial, reason, message, result.get(FAILURE_TRACEBACK))
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

    def _fail(self, trial: optuna.trial.Trial, kind: str, message: str, traceback: str | None = None) -> str:
        from optuna.trial import TrialState

        trial.set_user_attr("fail_reason", kind)
        trial.set_user_attr("fail_message", message[:500])
        if traceback:
            path = self._keep_traceback(trial.number, traceback)
            if path is not None:  # before the FAIL: observers of the failure find it
                trial.set_user_attr("traceback_file", str(path))
        level = logging.INFO if kind == "interrupted" else logging.WARNING  # the launcher says it once for all
        _log.log(level, "trial %d failed (%s): %s", trial.number, kind, message)
        notify(self.observers, "trial_failing", self.study, trial.number)  # the last moment it can be edited
        self._tell(trial, None, TrialState.FAIL)
        if kind not in REQUEUED_FAILURES:  # the launch stopping or a worker replaced is not the trial's fault
            with self._guard:
                self.failures_in_a_row += 1
                self.last_failure = (trial.number, kind, message)
        return f"FAIL ({kind})"

    def _keep_traceback(self, number: int, text: str) -> Path | None:
        """Write a failed trial's full traceback into its trial folder; ``None`` when that cannot be written."""
        path = self.trial_root / f"trial-{number:04d}" / "traceback.txt"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as e:
            _log.warning("cannot keep the traceback of trial %d in %s: %s", number, path, e)
            return None
        return path

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
        from optuna.exceptions import UpdateFinishedTrialError

        self.reap()
        if not self.check_lease():
            return True
        step = int(result["step"])
        metrics = {k: float(v) for k, v in result.items() if k in REPORTED_METRICS and _is_number(v)}
        live.reports[step] = metrics
        trial = live.trial
        try:
            if not live.linked:
                self._link(live, result)
            set_trial_record(
                self.study, trial._trial_id, "reports", [{"step": s, **live.reports[s]} for s in sorted(live.reports)]
            )
            value = None if self.spec.multi_objective else metrics.get(self.spec.objective[0].metric)
            if value is not None:
                self._report_value(live, step, value)
        except UpdateFinishedTrialError:
            live.concluded_elsewhere = True  # another launcher judged this one dead: stop the trial
            return True
        notify(self.observers, "trial_reported", self.study, trial.number, step)
        return live.pruned

    def _report_value(self, live: _Live, step: int, value: float) -> None:
        """Store the objective's intermediate value at ``step`` and ask the pruner."""
        trial = live.trial
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
            "worker_pid",
            *(key for key in result if key.startswith("worker_") and key.endswith("_mb")),
        ):
            if result.get(key) not in (None, ""):
                live.trial.set_user_attr(key, result[key])
        if live.ray_trial is not None:
            live.trial.set_user_attr("ray_trial_path", live.ray_trial.path)
        live.linked = True

    def note_error(self, ray_trial_id: str, failure: tuple[str, str], traceback: str | None = None) -> None:
        """Remember why a trial's last attempt failed (called for retries and final failures).

        Args:
            ray_trial_id: The Ray trial.
            failure: ``(reason, one-line message)``, from :func:`studies._tune_adapters.describe_failure`.
            traceback: The attempt's full traceback, as Ray recorded it.
        """
        with self._guard:
            live = self._live.get(ray_trial_id)
        if live is None:
            return
        live.attempts += 1
        live.error = failure
        live.traceback = traceback


# The evaluation metrics, the epoch's mean training loss and the epoch: what a report keeps.
REPORTED_METRICS = (*OBJECTIVE_METRICS, "train_loss", "epoch")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
