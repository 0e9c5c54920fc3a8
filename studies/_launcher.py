"""Launch (or resume) a study: prepare the data, open the study, run Ray Tune, promote.

Order matters for "nothing half-written": the spec is validated and the data
prepared *before* the store is touched, so a bad spec or a missing file leaves
no study behind; a study this launch created is deleted again if the launch
fails before any trial was started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from storage import Heartbeat, LeaseBook, StudyLock, open_storage, redact, resolve_url
from studies._errors import ConflictError, StudyError
from studies._registry import check_names
from studies._store import open_or_create, reconcile_orphans

if TYPE_CHECKING:
    import optuna

    from studies._spec import StudySpec
    from trainers import Prepared

_log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = float(os.environ.get("STUDIES_HEARTBEAT_SECONDS", "10"))
STALE_AFTER_SECONDS = float(os.environ.get("STUDIES_STALE_AFTER_SECONDS", str(6 * HEARTBEAT_SECONDS)))


@dataclass
class Outcome:
    """What a launch did."""

    study_name: str
    storage: str
    started: int
    finished: dict[str, int]
    budget_met: bool
    promoted: Path | None
    best_value: list[float] | None


def prepare_task(spec: StudySpec) -> Prepared:
    """Prepare the study's data and base model once (cached under ``work_dir/cache``)."""
    from trainers import prepare

    return prepare(spec.task, spec.model, Path(spec.work_dir).resolve() / "cache")


def launch(
    spec: StudySpec,
    *,
    storage_url: str | None = None,
    ray_address: str | None = None,
    join: bool = False,
    stream: TextIO | None = sys.stderr,
    trainable: Callable[..., None] | None = None,
    context: dict[str, Any] | None = None,
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
        context: Extra entries for the trainable's context.

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
    prepared = prepare_task(spec) if trainable is None else None
    book = LeaseBook(url)
    lock = StudyLock(url, spec.name)
    with lock:
        study, created = open_or_create(storage, spec)
        live = book.live_leases(spec.name, STALE_AFTER_SECONDS)
        if live and not join:
            holder = live[0]
            raise ConflictError(
                f"study {spec.name!r} is being run by another launcher (host {holder.host}, pid {holder.pid}): "
                "add --join to work on it together, or stop that launcher first"
            )
        launcher_id = book.acquire(spec.name)
        if join or not created:
            # sampler.seed makes a study's first launch repeatable; a later or joined launch
            # seeded the same way would propose the first launch's parameters again.
            study.sampler.reseed_rng()
        reconcile_orphans(study, book, STALE_AFTER_SECONDS)
        for config in spec.enqueue:
            study.enqueue_trial(config, user_attrs={"enqueued": True}, skip_if_exists=True)
    heartbeat = Heartbeat(book, launcher_id, HEARTBEAT_SECONDS).start()
    if stream is not None:
        where = "created" if created else "continuing"
        print(f"study {spec.name} ({where}) in {redact(url)}", file=stream, flush=True)
    try:
        bridge = _run_tune(spec, study, prepared, lock, launcher_id, ray_address, stream, trainable, context or {})
    except BaseException:
        if created and _nothing_started(study):
            _log.info("removing study %s: the launch failed before any trial started", spec.name)
            import optuna

            optuna.delete_study(study_name=spec.name, storage=storage)
        raise
    finally:
        heartbeat.stop()
        book.release(launcher_id)
        book.close()
        lock.close()

    counted, _ = bridge.budget_counts()
    budget_met = counted >= bridge.n_trials()
    promoted = None
    if budget_met and spec.promotion.enabled and prepared is not None and _has_complete(study):
        from studies._promote import current_promotion, promote

        promoted = current_promotion(study, spec)
        if promoted is None:
            promoted = promote(study, spec, prepared, stream=stream)
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


def _nothing_started(study: optuna.Study) -> bool:
    """Whether no trial of the study ever started (queued ones, from ``enqueue``, are not started)."""
    from optuna.trial import TrialState

    return all(t.state == TrialState.WAITING for t in study.get_trials(deepcopy=False))


def check_writable_dirs(spec: StudySpec) -> None:
    """Refuse, before anything runs, folders the launch will have to write to but cannot.

    ``work_dir`` (checkpoints, data cache), ``wandb.dir`` (unless wandb is
    disabled) and ``promotion.dir`` (when promotion is on): an unwritable one
    would otherwise fail every trial, or the promotion after the whole study.

    Raises:
        StudyError: Naming the folder, the spec key that sets it, and the cause.
    """
    import tempfile

    folders = [("work_dir", spec.work_dir)]
    if spec.wandb.mode != "disabled":
        folders.append(("wandb.dir", spec.wandb.dir))
    if spec.promotion.enabled:
        folders.append(("promotion.dir", spec.promotion.dir))
    for key, folder in folders:
        path = Path(folder).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
                pass
        except OSError as e:
            raise StudyError(
                f"{key} '{folder}' is not a writable folder ({e.strerror or e}): "
                f"set {key} to a folder you can write to (--set {key}=PATH)"
            ) from None


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


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Refuse a Ray address nothing listens on, at once.

    Ray itself retries an unreachable GCS address without end, so a typo in
    ``--ray-address`` would hang the launch. ``auto`` and ``local`` are Ray's own
    names and are left to it.

    Raises:
        StudyError: If ``host:port`` is malformed or refuses a TCP connection.
    """
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise StudyError(f"--ray-address '{address}' is not HOST:PORT: give the head's address, e.g. 10.0.0.5:6379")
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError as e:
        raise StudyError(
            f"cannot join the Ray cluster at {address}: nothing answers there ({e.strerror or e}); "
            "start it with `ray start --head`, or drop --ray-address and RAY_ADDRESS to run locally"
        ) from None
    with connection:
        speaks_grpc = _answers_http2(connection)
    if not speaks_grpc:
        raise StudyError(
            f"cannot join the Ray cluster at {address}: something answers there, but not a Ray head "
            "(give the head's GCS port, 6379 unless `ray start --head --port` chose another; 8265 is its dashboard)"
        )


# An HTTP/2 client's connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _answers_http2(connection: Any) -> bool:
    """Whether the peer answers an HTTP/2 preface with a SETTINGS frame, as Ray's gRPC GCS server does.

    A web server (the Ray dashboard's port), Redis or anything else that is
    not gRPC answers differently or closes: Ray itself would retry such an
    address without end.
    """
    try:
        connection.sendall(_HTTP2_PREFACE)
        head = b""
        while len(head) < 9:
            chunk = connection.recv(9 - len(head))
            if not chunk:
                return False
            head += chunk
    except OSError:
        return False
    return head[3] == 0x04  # the frame type of the server's first frame: SETTINGS


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


def _run_tune(
    spec: StudySpec,
    study: optuna.Study,
    prepared: Prepared | None,
    lock: StudyLock,
    launcher_id: str,
    ray_address: str | None,
    stream: TextIO | None,
    trainable: Callable[..., None] | None,
    extra: dict[str, Any],
) -> Any:
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Ray Tune reports failed trials and missing result files itself; the study
    # record and the progress display already say what happened to each trial.
    for name in ("ray.tune", "ray.train", "ray.air", "ray._private"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    from ray import tune

    from studies._bridge import OptunaPrunerScheduler, OptunaSearcher, StopSwitch, StudyBridge
    from studies._progress import Progress
    from studies._tracking import wandb_context
    from studies._trainable import run_trial

    init_ray(ray_address)
    work_dir = Path(spec.work_dir).resolve()
    bridge = StudyBridge(study, spec, lock, launcher_id)
    context = {
        "study_name": spec.name,
        "prepared": prepared.to_dict() if prepared is not None else None,
        "trainer": spec.trainer.model_dump(mode="json"),
        "objective": spec.objective[0].model_dump(),
        "select": spec.select,
        "cpus": spec.resources.cpus,
        "trial_root": str(work_dir / "trials" / spec.name),
        "wandb": wandb_context(spec.wandb.model_dump(), study.user_attrs.get("uid", spec.name)),
        **extra,
    }
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
            storage_path=str(work_dir / "ray"),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[Progress(bridge, stream)],
            stop=switch,
        ),
    )
    with _graceful_interrupt(switch, stream):
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
    if bridge.given_up and bridge.last_failure is not None:
        number, kind, message = bridge.last_failure
        raise StudyError(
            f"stopped: {bridge.failures_in_a_row} trials in a row failed (trial {number}, {kind}: {message}); "
            f"fix the cause, then `studies resume {spec.name}` (budget.max_consecutive_failures sets the limit)"
        )
    return bridge


@contextlib.contextmanager
def _graceful_interrupt(switch: Any, stream: TextIO | None) -> Iterator[None]:
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
