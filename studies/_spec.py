"""The study spec: one YAML file that declares a study, validated with pydantic.

Precedence: ``--set a.b=value`` overrides > the spec file > the defaults
below. ``--set`` edits the raw YAML mapping before validation, so overrides are
checked exactly like the file. The store's URL has its own order, kept in
``storage.resolve_url``: ``--storage`` > ``STUDIES_STORAGE`` > the spec's
``storage`` (which ``--set storage=...`` edits); likewise ``--ray-address`` >
``RAY_ADDRESS`` > a local Ray.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from search_spaces import SearchSpace, load_preset, preset_names
from storage import redact
from studies._errors import SpecError
from studies._yaml import DuplicateKeyError, load_yaml
from trainers import HYPERPARAMETERS, ModelSpec, TaskSpec, TrainerSpec

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
# What every evaluation reports (trainers.finetune), and so what an objective may name.
OBJECTIVE_METRICS = ("accuracy", "f1", "eval_loss", "train_loss")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Section):
    """One metric the study optimizes; ``select`` picks a trial's value from its reports."""

    metric: str = "accuracy"
    direction: Literal["maximize", "minimize"] = "maximize"


class Named(_Section):
    """A pluggable part chosen by name from a registry, with its keyword options."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class SamplerSpec(Named):
    name: str = "tpe"
    seed: int | None = None


class PrunerSpec(Named):
    name: str = "none"


class Budget(_Section):
    """How much work the study gets; counted over every launch of the study."""

    n_trials: int = Field(default=20, ge=1)
    max_concurrent: int = Field(default=1, ge=1)
    timeout: float | None = Field(default=None, gt=0, description="seconds, per launch")
    count_failed: bool = False
    max_failures: int = Field(default=1, ge=0, description="retries of a trial whose worker died")
    max_consecutive_failures: int | None = Field(
        default=5, ge=1, description="stop the launch when this many trials in a row FAIL; null: never stop"
    )


class Resources(_Section):
    """What one trial reserves on a Ray node; fractions share a GPU between trials."""

    cpus: float = Field(default=1, gt=0)
    gpus: float = Field(default=0, ge=0)


class WandbSpec(_Section):
    project: str = "hpo-studies"
    entity: str | None = None
    mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    dir: str = "wandb"


class PromotionSpec(_Section):
    dir: str = "models"
    enabled: bool = True


class StudySpec(_Section):
    """A whole study. ``name`` is the study's key in the store."""

    name: str = Field(pattern=_NAME_PATTERN)
    description: str = ""
    task: TaskSpec = Field(default_factory=TaskSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)
    objective: list[Objective] = Field(default_factory=lambda: [Objective()], min_length=1)
    select: Literal["best", "last"] = "best"
    search_space: SearchSpace
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    budget: Budget = Field(default_factory=Budget)
    resources: Resources = Field(default_factory=Resources)
    enqueue: list[dict[str, Any]] = Field(default_factory=list)
    storage: str | None = None
    work_dir: str = "runs"
    artifact_dir: str | None = Field(
        default=None, description="optuna artifact store (plots, model card, tracebacks); default <work_dir>/artifacts"
    )
    wandb: WandbSpec = Field(default_factory=WandbSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)

    @field_validator("objective", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("search_space", mode="before")
    @classmethod
    def _preset_or_inline(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = load_preset(value)
            except KeyError as e:
                raise ValueError(e.args[0]) from None
        if isinstance(value, dict) and "params" not in value:
            value = {"params": value}
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> StudySpec:
        unknown = sorted(set(self.search_space.params) - HYPERPARAMETERS)
        if unknown:
            raise ValueError(
                f"search_space: {unknown[0]!r} is not a tunable hyperparameter; "
                f"choose from {', '.join(sorted(HYPERPARAMETERS))}"
            )
        self._check_space_fits_trainer()
        if self.trainer.precision in ("fp16", "bf16") and not self.resources.gpus:
            raise ValueError(
                f"trainer.precision {self.trainer.precision} needs a CUDA GPU but resources.gpus is 0: "
                "set resources.gpus (e.g. 1), or precision auto (fp32 on CPU)"
            )
        metrics = [o.metric for o in self.objective]
        for metric in metrics:
            if metric not in OBJECTIVE_METRICS:
                raise ValueError(
                    f"objective metric {metric!r} is not reported: choose from {', '.join(OBJECTIVE_METRICS)}"
                )
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objective lists a metric twice ({metrics}): list each once")
        for i, config in enumerate(self.enqueue):
            if not self.search_space.contains(config):
                raise ValueError(
                    f"enqueue[{i}] {config} does not fit the search space: give exactly "
                    f"{', '.join(sorted(self.search_space.params))}, each inside its range"
                )
        return self

    def _check_space_fits_trainer(self) -> None:
        """Every value the space can sample must be a valid trainer setting, or trials would fail one by one."""
        settings = self.trainer.model_dump()
        for name, param in self.search_space.params.items():
            for value in param.extremes():
                try:
                    TrainerSpec.model_validate({**settings, name: value})
                except ValidationError as e:
                    reason = e.errors()[0]["msg"]
                    raise ValueError(
                        f"search_space.params.{name}: the value {value!r} is not a valid trainer.{name} "
                        f"({reason[:1].lower()}{reason[1:]}): narrow the range or fix the choices"
                    ) from None

    @property
    def artifact_path(self) -> str:
        """The artifact store's folder; like ``work_dir``, every node must share it on a cluster."""
        return self.artifact_dir or f"{self.work_dir.rstrip('/')}/artifacts"

    @property
    def multi_objective(self) -> bool:
        return len(self.objective) > 1

    def identity(self) -> dict[str, Any]:
        """The parts that define what the study searches; changing them makes a different study."""
        return self.model_dump(
            mode="json",
            include={"task", "model", "trainer", "objective", "select", "search_space", "sampler", "pruner"},
        )

    def identity_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def redacted(self) -> dict[str, Any]:
        """The spec as JSON-safe data with secrets removed, for the store and model cards."""
        data = self.model_dump(mode="json")
        if data.get("storage"):
            data["storage"] = redact(data["storage"])
        return data


def parse_overrides(items: list[str] | None) -> list[tuple[list[str], Any]]:
    """Parse ``--set a.b=value`` items; values are read as YAML (``1e-4``, ``true``, ``[1, 2]``)."""
    parsed = []
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set {item!r} is not of the form key.path=value (e.g. --set budget.n_trials=10)")
        try:
            value = load_yaml(raw) if raw.strip() else None
        except DuplicateKeyError as e:
            raise SpecError(f"--set {key.strip()}: {e.problem}") from None
        except yaml.YAMLError:
            value = raw
        parsed.append((key.strip().split("."), value))
    return parsed


def apply_overrides(raw: dict[str, Any], overrides: list[tuple[list[str], Any]]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each override set at its dotted path."""
    data = json.loads(json.dumps(raw, default=str))
    for path, value in overrides:
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise SpecError(f"--set {'.'.join(path)}: {part!r} is not a section (it is {child!r})")
            node = child
        node[path[-1]] = value
    return data


__all__ = ["StudySpec", "apply_overrides", "parse_overrides", "preset_names"]
