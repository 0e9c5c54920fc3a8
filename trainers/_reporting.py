"""The bridge from the HF Trainer's loop to the trial's ``report`` callback.

The Trainer evaluates at the end of an epoch and then saves a checkpoint; the
callback reports from ``on_save``, so the checkpoint named in a report exists
when the caller sees it. It also keeps the trial's best model, stops a
diverged trial, and times the start-up.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainers._atomic import publish, staging_dir
from trainers._metrics import METRICS

logger = logging.getLogger(__name__)

REPORT_FILE = "report.json"  # written into each checkpoint and the best model: the report it belongs to
# Checkpoint files that are training state, not part of a model folder.
_TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json", "training_args.bin")


class DivergedError(Exception):
    """The training or evaluation loss became NaN or infinite: the trial cannot recover."""


@dataclasses.dataclass(frozen=True)
class Report:
    """One evaluation of a trial.

    Attributes:
        step: The epoch just finished, from 1.
        metrics: every metric of ``trainers._metrics.METRICS`` (on the validation split),
            ``train_loss`` (the epoch's mean) and ``epoch``.
        checkpoint_dir: The Trainer checkpoint written for this epoch (model,
            optimizer, scheduler and RNG state), to resume from; it is replaced
            by the next epoch's, so persist it during the ``report`` call.
    """

    step: int
    metrics: dict[str, float]
    checkpoint_dir: Path | None = None


def is_better(value: float, best: float | None, greater_is_better: bool) -> bool:
    """Whether ``value`` improves on ``best`` (``None``: nothing yet)."""
    return best is None or (value > best if greater_is_better else value < best)


def read_report(folder: Path) -> Report | None:
    """The report saved in a checkpoint or best model folder, if any."""
    path = folder / REPORT_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Report(step=data["step"], metrics=data["metrics"], checkpoint_dir=None)


def _write_report(folder: Path, report: Report) -> None:
    (folder / REPORT_FILE).write_text(json.dumps({"step": report.step, "metrics": report.metrics}, indent=2))


def copy_model_files(checkpoint: Path, target: Path) -> None:
    """Copy a checkpoint's model and tokenizer files (not its training state) into ``target`` atomically."""
    with staging_dir(target) as staging:
        for file in checkpoint.iterdir():
            if file.is_file() and file.name not in _TRAINING_STATE and not file.name.startswith("rng_state"):
                shutil.copy2(file, staging / file.name)
        publish(staging, target, replace=True)


def _remove_older_checkpoints(current: Path) -> None:
    """Keep only the newest checkpoint: the older ones were persisted by the caller when they were reported."""
    for other in current.parent.glob("checkpoint-*"):
        if other != current and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)


def _check_finite(name: str, value: float, epoch: float | None, learning_rate: float) -> None:
    if not math.isfinite(value):
        raise DivergedError(
            f"the {name} became {value} at epoch {epoch or 0:.2f} with learning_rate {learning_rate:g}: "
            "lower the learning rate (or its search range) or max_grad_norm"
        )


def make_callback(
    report: Callable[[Report], None],
    *,
    objective: str,
    greater_is_better: bool,
    select: str,
    best_dir: Path,
    best: Report | None,
    started: float,
) -> Any:
    """Build the ``TrainerCallback`` that reports each epoch (transformers is imported here, not at module level).

    Args:
        report: The trial's reporting callback.
        objective: The metric that picks the best model.
        greater_is_better: The objective's direction.
        select: ``best`` keeps the best report's model, ``last`` the last one's.
        best_dir: Where the kept model is written.
        best: The best report so far (when resuming), or ``None``.
        started: ``time.perf_counter()`` when the trial started, for the start-up time.
    """
    from transformers import TrainerCallback

    class ReportingCallback(TrainerCallback):
        def __init__(self) -> None:
            self.best = best
            self.last: Report | None = None
            self.reported = 0
            self.startup_seconds: float | None = None
            self._train_loss = math.nan
            self._eval: dict[str, float] = {}

        def on_optimizer_step(self, args, state, control, **kwargs):
            if self.startup_seconds is None:
                self.startup_seconds = time.perf_counter() - started
                logger.info("first optimizer step %.2f s after the trial started", self.startup_seconds)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self._train_loss = float(logs["loss"])
                _check_finite("training loss", self._train_loss, state.epoch, args.learning_rate)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            self._eval = dict(metrics or {})
            _check_finite("evaluation loss", float(self._eval.get("eval_loss", 0.0)), state.epoch, args.learning_rate)

        def on_save(self, args, state, control, model=None, processing_class=None, **kwargs):
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            logged = {name: name if name.startswith("eval_") else f"eval_{name}" for name in METRICS}
            metrics = {name: float(self._eval[key]) for name, key in logged.items() if key in self._eval}
            metrics.update(train_loss=self._train_loss, epoch=float(state.epoch))
            current = Report(step=round(state.epoch), metrics=metrics, checkpoint_dir=checkpoint)
            _write_report(checkpoint, current)
            _remove_older_checkpoints(checkpoint)
            self.last = current
            best_value = self.best.metrics[objective] if self.best else None
            if select == "last" or is_better(metrics[objective], best_value, greater_is_better):
                with staging_dir(best_dir) as staging:
                    model.save_pretrained(staging)
                    processing_class.save_pretrained(staging)
                    _write_report(staging, current)
                    publish(staging, best_dir, replace=True)
                self.best = current
            self.reported += 1
            report(current)

    return ReportingCallback()
