"""The Ray Tune driver: start or join Ray, build the Tuner around the bridge, run it, stop it cleanly.

The searcher, the scheduler and the stopper Ray gets are thin adapters over one
:class:`~studies._bridge.StudyBridge`, which owns every Optuna call. Ray's own
console output is turned down: the progress display and the study record say
what happened to each trial.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from storage import contained
from studies._errors import StudyError

if TYPE_CHECKING:
    import optuna

    from storage import StudyLock
    from studies._bridge import StudyBridge
    from studies._claim import StudyClaim
    from studies._observers import TrialObserver
    from studies._spec import StudySpec
    from trainers import Prepared


def init_ray(address: str | None) -> None:
    """Join ``address`` (checked by :func:`check_ray_address`) or, when ``None``, start a local Ray quietly."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise StudyError(
            f"cannot join the Ray cluster at {address}: {str(e).splitlines()[0]} "
            "(start it with `ray start --head`, or drop --ray-address to run locally)"
        ) from e


def run_tune(
    spec: StudySpec,
    study: optuna.Study,
    prepared: Prepared | None,
    lock: StudyLock,
    launcher_id: str,
    ray_address: str | None,
    stream: TextIO | None,
    trainable: Callable[..., None] | None,
    extra: dict[str, Any],
    observers: Sequence[TrialObserver] = (),
    claim: StudyClaim | None = None,
) -> StudyBridge:
    """Run the study's trials on Ray Tune until the budget is met, the launch times out or is stopped.

    Args:
        spec: The validated spec.
        study: The open study.
        prepared: The prepared task (``None`` with a custom ``trainable``).
        lock: The study lock, held around "check the budget, then ask".
        launcher_id: This launch's lease id.
        ray_address: A checked Ray address, or ``None`` for a local Ray.
        stream: Where the progress display goes.
        trainable: A function trainable to run instead of fine-tuning.
        extra: :attr:`TrialContext.extra` for that trainable.
        observers: Followers of the trials (notes, retention, ...).
        claim: The launch's claim: dead co-launchers are reaped, a lost lease stops the launch.

    Returns:
        The bridge, with what this launch started and finished.

    Raises:
        KeyboardInterrupt: After Ctrl-C, once every running trial is recorded.
        StudyError: When ``budget.max_consecutive_failures`` trials in a row failed, or the launch
            lost its lease (it could not renew it for longer than the stale limit).
    """
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ray Tune reports failed trials and missing result files itself; the study
    # record and the progress display already say what happened to each trial.
    for name in ("ray.tune", "ray.train", "ray.air", "ray._private"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    from ray import tune

    from studies._bridge import StudyBridge
    from studies._context import ObjectiveContext, TrialContext
    from studies._progress import Progress
    from studies._tracking import wandb_context
    from studies._trainable import run_trial
    from studies._tune_adapters import OptunaPrunerScheduler, OptunaSearcher, StopSwitch

    init_ray(ray_address)
    work_dir = Path(spec.work_dir).resolve()
    bridge = StudyBridge(study, spec, lock, launcher_id, observers=observers, claim=claim)
    context = TrialContext(
        study_name=spec.name,
        prepared=prepared.to_dict() if prepared is not None else None,
        trainer=spec.trainer.model_dump(mode="json"),
        objective=ObjectiveContext.model_validate(spec.objective[0].model_dump()),
        select=spec.select,
        cpus=spec.resources.cpus,
        trial_root=str(contained(work_dir, "trials", spec.name, what="trial folder")),
        wandb=wandb_context(spec.wandb.model_dump(), study.user_attrs.get("uid", spec.name)),
        memory_limits={
            "rss_mb": spec.retention.max_memory_growth_mb,
            "cuda_mb": spec.retention.max_gpu_memory_growth_mb,
        },
        extra=extra,
    )
    resources = {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus}
    switch = StopSwitch(bridge)
    function = tune.with_resources(tune.with_parameters(trainable or run_trial, context=context), resources)
    tuner = tune.Tuner(
        function,
        tune_config=tune.TuneConfig(
            search_alg=OptunaSearcher(bridge),
            scheduler=OptunaPrunerScheduler(bridge),
            num_samples=-1,
            max_concurrent_trials=spec.budget.max_concurrent,
            reuse_actors=True,
            time_budget_s=spec.budget.timeout,
        ),
        run_config=tune.RunConfig(
            name=f"{spec.name}-{launcher_id[:8]}",
            storage_path=str(contained(work_dir, "ray", what="Ray results folder")),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[Progress(bridge, stream)],
            stop=switch,
        ),
    )
    with graceful_interrupt(switch, stream):
        try:
            tuner.fit()
        finally:
            concluded = bridge.conclude_unfinished()
            if concluded and stream is not None:
                print(
                    f"{concluded} running trial(s) recorded as FAIL (interrupted); "
                    f"their parameters run first on `studies resume {spec.name}`",
                    file=stream,
                    flush=True,
                )
    if switch.interrupted:
        raise KeyboardInterrupt
    if bridge.lease_lost:
        raise StudyError(
            f"stopped: this launcher could not renew its lease in the store for over "
            f"{claim.stale_after if claim else 0:.0f} s, so another launcher may have taken over its trials; "
            f"check the store, then `studies resume {spec.name}`"
        )
    if bridge.given_up and bridge.last_failure is not None:
        number, kind, message = bridge.last_failure
        raise StudyError(
            f"stopped: {bridge.failures_in_a_row} trials in a row failed (trial {number}, {kind}: {message}); "
            f"fix the cause, then `studies resume {spec.name}` (budget.max_consecutive_failures sets the limit)"
        )
    return bridge


@contextlib.contextmanager
def graceful_interrupt(switch: Any, stream: TextIO | None) -> Iterator[None]:
    """The first Ctrl-C stops the trials and records them; a second one quits at once.

    Ray Tune's own handler would end ``fit()`` quietly, as if the study had
    simply run out of time, and leave the running trials RUNNING in the store.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def first(signum: int, frame: Any) -> None:
        switch.interrupted = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if stream is not None:
            print("stopping: recording the running trials (Ctrl-C again to quit at once)", file=stream, flush=True)

    previous = signal.signal(signal.SIGINT, first)
    tune_handler = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if tune_handler is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = tune_handler
