"""The Ray Tune function trainable: one trial = one ``trainers.finetune`` call.

It runs on a Ray worker. It restores the trial's last epoch checkpoint when Ray
retries it, forwards every report to Ray (with the epoch checkpoint) and to the
trial's wandb run, and turns known failures into a :class:`TrialFailure` whose
``reason`` the driver stores (``oom``, ``diverged``, ``error``).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studies._context import TrialContext

_log = logging.getLogger(__name__)


class TrialFailure(Exception):
    """A trial failed for a known reason; pickled back to the driver by Ray."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class WorkerReplaced(TrialFailure):
    """This worker's memory grew past the study's limit since its first trial: the trial needs a fresh worker.

    Raised before the trial does any work, so Ray ends the worker (a worker
    whose trial raised is not reused) and starts the trial again on a new one.
    """

    def __init__(self, message: str) -> None:
        super().__init__("worker_replaced", message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (WorkerReplaced, (self.message,))


# This worker process's memory (MB) when its first trial started: later trials are compared with it.
_BASELINE: dict[str, float] = {}


def worker_memory() -> dict[str, float]:
    """This process's memory in MB: ``rss`` (anonymous resident memory, what grows when memory is
    not given back; ``VmRSS`` where the kernel does not report it) and, with CUDA, torch's
    ``cuda_allocated`` and ``cuda_reserved``."""
    import sys

    memory: dict[str, float] = {}
    fields = {}
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                fields[key] = value
    except OSError:
        pass
    raw = fields.get("RssAnon") or fields.get("VmRSS")
    if raw:
        memory["rss"] = round(int(raw.split()[0]) / 1024, 1)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        memory["cuda_allocated"] = round(torch.cuda.memory_allocated() / 2**20, 1)
        memory["cuda_reserved"] = round(torch.cuda.memory_reserved() / 2**20, 1)
    return memory


def check_worker_memory(limits: dict[str, float | None]) -> dict[str, float]:
    """Measure this worker's memory; refuse the trial when it grew past a limit since the first trial.

    Args:
        limits: ``rss_mb`` and ``cuda_mb``: the growth (MB) allowed for resident and CUDA memory
            (allocated or reserved); ``None``: no limit.

    Returns:
        ``worker_<kind>_mb`` and ``worker_<kind>_growth_mb`` for each kind of :func:`worker_memory`.

    Raises:
        WorkerReplaced: If a growth is past its limit.
    """
    now = worker_memory()
    if not _BASELINE:
        _BASELINE.update(now)
    measured: dict[str, float] = {}
    for kind, value in now.items():
        growth = round(value - _BASELINE.get(kind, value), 1)
        measured[f"worker_{kind}_mb"] = value
        measured[f"worker_{kind}_growth_mb"] = growth
        limit = limits.get("cuda_mb" if kind.startswith("cuda") else "rss_mb")
        if limit is not None and growth > limit:
            setting = "max_gpu_memory_growth_mb" if kind.startswith("cuda") else "max_memory_growth_mb"
            raise WorkerReplaced(
                f"worker {os.getpid()}'s {kind} memory grew {growth:.0f} MB since its first trial "
                f"(retention.{setting} is {limit:.0f})"
            )
    return measured


def _quiet_worker(cpus: float) -> None:
    import torch
    import transformers

    # One intra-op thread per reserved CPU: more threads than the trial's share
    # make concurrent trials on one node fight over cores (10x slower seen on 2 cores).
    torch.set_num_threads(max(1, int(cpus)))

    transformers.logging.set_verbosity_error()
    for name in ("datasets", "transformers", "torch", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


# The keys of the result a failed trial reports last, instead of raising.
FAILURE_REASON = "failure_reason"
FAILURE_MESSAGE = "failure_message"
FAILURE_TRACEBACK = "failure_traceback"


def run_trial(config: dict[str, Any], context: TrialContext) -> None:
    """Fine-tune one trial. ``config`` comes from the searcher, ``context`` is the study's.

    A failure is reported as the trial's last result (``failure_reason``,
    ``failure_message``) rather than raised: Ray retries a raised error up to
    ``budget.max_failures`` times, which is meant for workers that died, not for
    an error that would happen again (a bad setting, out of memory, divergence).
    Ray's own stop request (``SystemExit``) passes through.
    """
    import traceback

    from ray import tune

    try:
        _run_trial(config, context)
    except WorkerReplaced:
        raise  # Ray ends this worker and runs the trial again on a fresh one
    except Exception as e:
        reason, message = failure_of(e)
        _log.warning("trial %s failed (%s): %s", config.get("trial_number"), reason, message)
        text = "".join(traceback.format_exception(e))
        tune.report({FAILURE_REASON: reason, FAILURE_MESSAGE: message, FAILURE_TRACEBACK: text[-100_000:]})


def failure_of(error: BaseException) -> tuple[str, str]:
    """``(reason, one-line message)`` for an exception a trial raised."""
    if isinstance(error, TrialFailure):
        return error.reason, error.message[:500]
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return "error", f"{type(error).__name__}: {first}"[:500]


def _run_trial(config: dict[str, Any], context: TrialContext) -> None:
    import ray
    from ray import tune

    from studies._tracking import TrialRun
    from trainers import DATA_HYPERPARAMETERS, DivergedError, Prepared, TrainerSpec, finetune
    from trainers._runtime import release_memory

    entered = time.time()
    _quiet_worker(context.cpus)
    number = int(config["trial_number"])
    release_memory()  # what the previous trial and Ray's bookkeeping after it left, before measuring
    memory = check_worker_memory(context.memory_limits)
    params = dict(config["params"])
    trial_dir = Path(context.trial_root) / f"trial-{number:04d}"
    trial_dir.mkdir(parents=True, exist_ok=True)

    resume_from = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is None and config.get("resume_from"):
        resume_from = _take_over(config, trial_dir)
        _log.info("trial %d reruns trial %s from %s", number, config.get("retry_of"), resume_from)
    elif checkpoint is not None:
        # Copy the persisted epoch checkpoint next to the trial's outputs: the
        # trainer resumes from it and writes its next checkpoints beside it.
        resume_from = trial_dir / "restored-checkpoint"
        shutil.rmtree(resume_from, ignore_errors=True)
        with checkpoint.as_directory() as folder:
            shutil.copytree(folder, resume_from)
        _log.info("trial %d resumes from %s", number, resume_from)

    node: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "gpu": _gpu_name(),
        "trial_dir": str(trial_dir),
        "best_model_dir": str(trial_dir / "best_model"),
        "worker_pid": os.getpid(),
        **memory,
    }
    run = TrialRun.start(context.wandb, study=context.study_name, number=number, params=params)
    node.update(run.link())
    objective = context.objective

    def report(r: Any) -> None:
        metrics = {k: float(v) for k, v in r.metrics.items()}
        run.log(metrics, step=r.step)
        payload = {**metrics, "step": r.step, **node}
        if r.checkpoint_dir:
            tune.report(payload, checkpoint=tune.Checkpoint.from_directory(str(r.checkpoint_dir)))
        else:
            tune.report(payload)

    started = time.time()
    node["setup_seconds"] = round(started - entered, 3)
    # max_length/truncation pick the trial's tokenized data; the rest are trainer settings.
    prepared = Prepared.from_dict(context.prepared or {}).for_params(params)
    settings = {k: v for k, v in params.items() if k not in DATA_HYPERPARAMETERS}
    try:
        result = finetune(
            prepared,
            TrainerSpec.model_validate(context.trainer),
            settings,
            trial_dir,
            report=report,
            objective=objective.metric,
            greater_is_better=objective.direction == "maximize",
            select=context.select,
            resume_from=resume_from,
        )
    except DivergedError as e:
        run.finish(exit_code=1)
        raise TrialFailure("diverged", str(e)) from None
    except Exception as e:
        run.finish(exit_code=1)
        if _is_oom(e):
            release_memory()
            raise TrialFailure("oom", f"out of GPU memory: {str(e).splitlines()[0][:200]}") from None
        raise
    run.summary(
        {
            "best_model_dir": str(result.best_model_dir),
            "wall_seconds": time.time() - entered,
            "setup_seconds": node["setup_seconds"],
            "trainer_startup_seconds": result.startup_seconds,
        }
    )
    _log.info("trial %d: setup %.2f s, trainer start-up %.2f s", number, node["setup_seconds"], result.startup_seconds)
    run.finish()


def _take_over(config: dict[str, Any], trial_dir: Path) -> Path:
    """Copy an interrupted trial's checkpoint and best model into this rerun's folder; return the checkpoint."""
    resume_from = trial_dir / "restored-checkpoint"
    shutil.rmtree(resume_from, ignore_errors=True)
    shutil.copytree(config["resume_from"], resume_from)
    if config.get("resume_best_model"):
        best = trial_dir / "best_model"
        shutil.rmtree(best, ignore_errors=True)
        shutil.copytree(config["resume_best_model"], best)
    return resume_from


def _is_oom(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()
