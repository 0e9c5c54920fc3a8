"""Weights & Biases runs: one per trial, one per promotion.

``mode: auto`` is ``online`` when an API key is configured (``WANDB_API_KEY``
or a ``wandb login``) and ``offline`` otherwise; offline runs are synced later
with ``wandb sync <dir>/wandb/offline-run-*``. ``disabled`` turns wandb off.
Run ids are derived from the study's uid and the trial number, so a retried
trial continues its own run instead of starting another.

wandb records the process's command line in each run's metadata; a storage URL
given with ``--storage`` or ``--set storage=...`` carries its password there,
so runs are started with the arguments redacted (the host, GPU and program
metadata are kept).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from storage import redact
from studies._context import WandbContext


def resolve_mode(mode: str) -> str:
    """The concrete wandb mode for a spec's ``wandb.mode``."""
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path.home() / ".netrc"
    try:
        if netrc.is_file() and "api.wandb.ai" in netrc.read_text(encoding="utf-8", errors="ignore"):
            return "online"
    except OSError:
        pass
    return "offline"


def wandb_context(spec_wandb: dict[str, Any], study_uid: str) -> WandbContext:
    """The wandb settings shipped to workers (never the API key)."""
    return WandbContext(
        project=spec_wandb["project"],
        entity=spec_wandb.get("entity"),
        mode=resolve_mode(spec_wandb["mode"]),  # type: ignore[arg-type]  # pydantic checks the value
        dir=str(Path(spec_wandb["dir"]).resolve()),
        study_uid=study_uid,
    )


def _run_id(study_uid: str, name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{study_uid}-{name}")[:64]


@contextlib.contextmanager
def _redacted_argv() -> Iterator[None]:
    """Show wandb ``sys.argv`` with passwords replaced by ``***`` while a run starts.

    ``wandb.init`` reads ``sys.argv`` when it sends the run's settings, and records
    them as the run's ``args``; the real list is put back afterwards.
    """
    argv = sys.argv
    sys.argv = [redact(arg) for arg in argv]
    try:
        yield
    finally:
        sys.argv = argv


class TrialRun:
    """A wandb run, or a no-op when wandb is disabled."""

    def __init__(self, run: Any) -> None:
        self._run = run

    @classmethod
    def start(cls, cfg: WandbContext, *, study: str, number: int, params: dict[str, Any]) -> TrialRun:
        return cls._init(cfg, name=f"trial-{number}", group=study, job_type="trial", config={**params, "trial": number})

    @classmethod
    def promotion(cls, cfg: WandbContext, *, study: str, config: dict[str, Any]) -> TrialRun:
        return cls._init(cfg, name="promotion", group=study, job_type="promotion", config=config)

    @classmethod
    def _init(cls, cfg: WandbContext, *, name: str, group: str, job_type: str, config: dict[str, Any]) -> TrialRun:
        if cfg.mode == "disabled":
            return cls(None)
        os.environ.setdefault("WANDB_SILENT", "true")
        os.environ.setdefault("WANDB_CONSOLE", "off")
        import wandb

        Path(cfg.dir).mkdir(parents=True, exist_ok=True)
        with _redacted_argv():
            run = wandb.init(
                project=cfg.project,
                entity=cfg.entity,
                mode=cfg.mode,
                dir=cfg.dir,
                group=group,
                name=name,
                job_type=job_type,
                id=_run_id(cfg.study_uid, name),
                resume="allow",
                config=config,
                reinit="finish_previous",
                settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
            )
        return cls(run)

    def link(self) -> dict[str, str]:
        if self._run is None:
            return {}
        return {"wandb_run_id": self._run.id, "wandb_run_path": str(Path(self._run.dir).parent)}

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self._run is not None:
            self._run.log({**metrics, "step": step})

    def summary(self, values: dict[str, Any]) -> None:
        if self._run is not None:
            self._run.summary.update(values)

    def log_model(self, folder: Path, *, name: str, metadata: dict[str, Any]) -> None:
        if self._run is None:
            return
        import wandb

        artifact = wandb.Artifact(re.sub(r"[^A-Za-z0-9_.-]", "-", name), type="model", metadata=metadata)
        artifact.add_dir(str(folder))
        self._run.log_artifact(artifact, aliases=["best", "latest"])

    def finish(self, exit_code: int = 0) -> None:
        if self._run is not None:
            self._run.finish(exit_code=exit_code)
            self._run = None
