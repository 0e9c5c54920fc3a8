"""Launch (or resume) a study: check, prepare the data, open the study, run the trials, promote.

Order matters for "nothing half-written": the spec is validated and the data
prepared *before* the store is touched, so a bad spec or a missing file leaves
no study behind; a study this launch created is deleted again if the launch
fails before any trial was started. The pieces live in their own modules:
:mod:`studies._preflight` (checks), :mod:`studies._claim` (lock, lease,
heartbeat), :mod:`studies._driver` (Ray Tune) and :mod:`studies._promote`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from storage import close_storage, open_storage, redact, resolve_url
from storage._retry import StoreUnreachable
from studies._claim import StudyClaim
from studies._errors import StudyError
from studies._observers import TrialObserver, default_observers, notify
from studies._preflight import check_disk_space, check_ray_address, check_writable_dirs
from studies._registry import check_names
from studies._store import open_or_create, reconcile_orphans
from studies._task import prepare_task

if TYPE_CHECKING:
    import optuna

    from studies._spec import StudySpec

_log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a launch did.

    Attributes:
        study_name: The study.
        storage: The store's URL, password redacted.
        started: Trials this launch started.
        finished: How those trials ended, by state (``COMPLETE``, ``PRUNED``, ``FAIL``).
        budget_met: Whether the study has its ``n_trials`` finished trials.
        promoted: The promoted model's folder, if the best trial's model is promoted.
        best_value: The best value (single objective), else ``None``.
    """

    study_name: str
    storage: str
    started: int
    finished: dict[str, int]
    budget_met: bool
    promoted: Path | None
    best_value: list[float] | None


def launch(
    spec: StudySpec,
    *,
    storage_url: str | None = None,
    ray_address: str | None = None,
    join: bool = False,
    stream: TextIO | None = sys.stderr,
    trainable: Callable[..., None] | None = None,
    context: dict[str, Any] | None = None,
    observers: Sequence[TrialObserver] | None = None,
) -> Outcome:
    """Run ``spec``'s study until its budget is met (or its per-launch timeout).

    Args:
        spec: The validated spec.
        storage_url: ``--storage``; beats ``STUDIES_STORAGE`` and the spec.
        ray_address: ``--ray-address``; else ``RAY_ADDRESS``; else a local Ray.
        join: Work on the study beside a launcher that is already running it.
        stream: Where the progress display goes (``None``: nowhere).
        trainable: Run this function trainable instead of the HF fine-tuning one
            (``studies.testing`` has deterministic ones); it gets no prepared data.
        context: Extra entries for the trainable (``TrialContext.extra``).
        observers: Followers of the trials; default: the service's own (notes, retention).

    Raises:
        StudyError: For anything the user can fix (spec, data, store, conflicts).
    """
    check_names(spec)
    check_writable_dirs(spec)
    ray_address = ray_address or os.environ.get("RAY_ADDRESS") or None
    if ray_address:
        check_ray_address(ray_address)  # before any data is prepared
    url = resolve_url(storage_url, spec.storage)
    storage = open_storage(url)
    try:
        return _launch(spec, url, storage, ray_address, join, stream, trainable, context, observers)
    except Exception as e:
        lost = _unreachable(e)
        if lost is None:
            raise
        raise StudyError(
            f"stopped: {lost}; trials left running are reconciled when the study resumes: "
            f"`studies resume {spec.name}` once the store is back"
        ) from e
    finally:
        close_storage(storage)


def _launch(
    spec: StudySpec,
    url: str,
    storage: Any,
    ray_address: str | None,
    join: bool,
    stream: TextIO | None,
    trainable: Callable[..., None] | None,
    context: dict[str, Any] | None,
    observers: Sequence[TrialObserver] | None,
) -> Outcome:
    prepared = prepare_task(spec) if trainable is None else None
    if prepared is not None:
        check_disk_space(spec, prepared.model_dir, prepared.num_labels)  # before the store is touched
    observers = default_observers(spec) if observers is None else list(observers)
    from studies._driver import run_tune

    with StudyClaim(url, spec.name) as claim:
        with claim.lock:
            study, created = open_or_create(storage, spec)
            try:
                claim.refuse_if_held(join)
                launcher_id = claim.acquire()
                if join or not created:
                    # sampler.seed makes a study's first launch repeatable; a later or joined launch
                    # seeded the same way would propose the first launch's parameters again.
                    study.sampler.reseed_rng()
                reconcile_orphans(study, claim.book, claim.stale_after, keep=(launcher_id,))
                for config in spec.enqueue:
                    study.enqueue_trial(config, user_attrs={"enqueued": True}, skip_if_exists=True)
            except BaseException as e:
                _forget_if_unstarted(study, storage, created, e)
                raise
        try:
            claim.start_heartbeat(study)
            if stream is not None:
                where = "created" if created else "continuing"
                print(f"study {spec.name} ({where}) in {redact(url)}", file=stream, flush=True)
            notify(observers, "launch_started", study, spec)
            try:
                bridge = run_tune(
                    spec,
                    study,
                    prepared,
                    claim.lock,
                    launcher_id,
                    ray_address,
                    stream,
                    trainable,
                    context or {},
                    observers,
                    claim=claim,
                )
            finally:
                notify(observers, "launch_ended", study, spec)
        except BaseException as e:
            _forget_if_unstarted(study, storage, created, e)
            raise

    counted, _ = bridge.budget_counts()
    budget_met = counted >= bridge.n_trials()
    promoted = None
    if budget_met and spec.promotion.enabled and prepared is not None and _has_complete(study):
        from studies._promote import current_promotion, promote_best

        promoted = current_promotion(study, spec)
        if promoted is None:
            promoted = promote_best(study, spec, prepared, stream=stream)
            notify(observers, "promoted", study, spec, promoted)
        elif stream is not None:
            print(
                f"the best trial's model is already promoted at {promoted} "
                f"(`studies promote {spec.name}` evaluates and promotes it again)",
                file=stream,
            )
    elif not budget_met and stream is not None:
        print(
            f"budget not met ({counted}/{bridge.n_trials()} finished): continue with `studies resume {spec.name}`",
            file=stream,
        )
    return Outcome(
        study_name=spec.name,
        storage=redact(url),
        started=bridge.started_here,
        finished=dict(bridge.finished_here),
        budget_met=budget_met,
        promoted=promoted,
        best_value=_best_values(study),
    )


def _unreachable(error: BaseException) -> StoreUnreachable | None:
    """The :class:`StoreUnreachable` behind ``error`` (Ray may wrap what its searcher raised), if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, StoreUnreachable):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _forget_if_unstarted(study: optuna.Study, storage: Any, created: bool, error: BaseException) -> None:
    """Delete a study this launch created when none of its trials ever started (queued ones are not started)."""
    import optuna
    from optuna.trial import TrialState

    if _unreachable(error) is not None:
        return  # the store is gone: nothing can be deleted, and waiting for it again helps no one
    if created and all(t.state == TrialState.WAITING for t in study.get_trials(deepcopy=False)):
        _log.info("removing study %s: the launch failed before any trial started", study.study_name)
        optuna.delete_study(study_name=study.study_name, storage=storage)


def _has_complete(study: optuna.Study) -> bool:
    from optuna.trial import TrialState

    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _best_values(study: optuna.Study) -> list[float] | None:
    try:
        if len(study.directions) > 1:
            return None
        return [study.best_value]
    except ValueError:
        return None


__all__ = ["Outcome", "launch", "prepare_task"]
