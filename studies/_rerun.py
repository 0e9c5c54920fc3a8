"""Where the rerun of an interrupted trial starts: the interrupted trial's last epoch checkpoint.

A trial that was running when its launcher stopped (Ctrl-C, a timeout, a crash
or a SIGKILL) is FAIL ``interrupted`` and its parameters are queued again with
``retry_of``. The rerun continues from the interrupted trial's last reported
epoch: its checkpoint and best model are kept by the retention policy until the
rerun concludes, and its reports up to that epoch become the rerun's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studies._records import trial_record

if TYPE_CHECKING:
    import optuna

REPORT_FILE = "report.json"  # what trainers writes into a checkpoint once it is complete


@dataclass
class RerunStart:
    """What a rerun takes over from the trial it reruns.

    Attributes:
        original: The interrupted trial's number.
        checkpoint: Its last complete epoch checkpoint.
        best_model: Its best model folder, if any.
        reports: Its reports up to the checkpoint's step, by step.
    """

    original: int
    checkpoint: Path
    best_model: Path | None
    reports: dict[int, dict[str, float]] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        """The entries the trainable reads from the trial's config."""
        return {
            "resume_from": str(self.checkpoint),
            "resume_best_model": str(self.best_model) if self.best_model else None,
            "retry_of": self.original,
        }


def last_checkpoint(trial_dir: Path) -> tuple[Path, int] | None:
    """The newest complete epoch checkpoint in a trial folder, and its step."""
    found = []
    for folder in (trial_dir / "checkpoints").glob("checkpoint-*"):
        report = folder / REPORT_FILE
        if report.is_file() and (folder / "trainer_state.json").is_file():
            try:
                found.append((int(json.loads(report.read_text())["step"]), folder))
            except (ValueError, KeyError, OSError):
                continue
    if not found:
        return None
    step, folder = max(found)
    return folder, step


def rerun_start(study: optuna.Study, trial: optuna.trial.Trial) -> RerunStart | None:
    """Where ``trial`` starts, if it reruns an interrupted trial whose checkpoint is still there."""
    original_number = trial.user_attrs.get("retry_of")
    if original_number is None:
        return None
    originals = [t for t in study.get_trials(deepcopy=False) if t.number == original_number]
    if not originals or originals[0].user_attrs.get("fail_reason") != "interrupted":
        return None
    original = originals[0]
    folder = original.user_attrs.get("trial_dir")
    if not folder:
        return None
    found = last_checkpoint(Path(folder))
    if found is None:
        return None
    checkpoint, step = found
    best = Path(folder) / "best_model"
    reports = {
        int(r["step"]): {k: v for k, v in r.items() if k != "step"}
        for r in trial_record(original, "reports", [])
        if int(r["step"]) <= step
    }
    # The worker may have saved (and reported) the checkpoint's epoch just before its launcher died,
    # before the store recorded it: the checkpoint's own report file has it.
    saved = json.loads((checkpoint / REPORT_FILE).read_text())
    reports.setdefault(step, {k: float(v) for k, v in saved.get("metrics", {}).items()})
    return RerunStart(
        original=original.number,
        checkpoint=checkpoint,
        best_model=best if (best / "config.json").is_file() else None,
        reports=reports,
    )


def reruns_pending(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """The numbers of interrupted trials whose rerun has not concluded (their files are still needed)."""
    return {
        int(t.user_attrs["retry_of"])
        for t in trials
        if t.state.name in ("WAITING", "RUNNING") and t.user_attrs.get("retry_of") is not None
    }
