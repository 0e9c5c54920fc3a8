"""What the driver sends every trial's worker: a typed, picklable model, not a loose dict."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class WandbContext(BaseModel):
    """The wandb settings a worker needs to start the trial's run (never an API key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str
    entity: str | None = None
    mode: Literal["online", "offline", "disabled"]
    dir: str
    study_uid: str


class ObjectiveContext(BaseModel):
    """The metric that picks a trial's kept model, and its direction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    direction: Literal["maximize", "minimize"]


class TrialContext(BaseModel):
    """The study-wide part of every trial's input; the searcher adds the trial's own ``config``.

    Attributes:
        study_name: The study's name.
        prepared: ``trainers.Prepared.to_dict()`` of the study's data and base model
            (``None`` for test trainables that need no data).
        trainer: The spec's ``trainer`` section, as JSON.
        objective: The first objective: what picks a trial's kept model.
        select: ``best`` or ``last``.
        cpus: CPUs reserved per trial (the worker's thread count).
        trial_root: The folder holding one ``trial-NNNN`` folder per trial.
        wandb: The trial runs' wandb settings.
        memory_limits: ``rss_mb`` and ``cuda_mb``: how much a reused worker's resident and CUDA
            memory may grow since its first trial before it is replaced (``None``: no limit).
        extra: Anything else a custom trainable needs (``studies.testing`` reads its
            crafted curves from here).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    study_name: str
    prepared: dict[str, Any] | None = None
    trainer: dict[str, Any] = Field(default_factory=dict)
    objective: ObjectiveContext
    select: Literal["best", "last"] = "best"
    cpus: float = 1
    trial_root: str
    wandb: WandbContext
    memory_limits: dict[str, float | None] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
