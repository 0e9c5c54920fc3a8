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
import itertools
import json
import math
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from search_spaces import SearchSpace, load_preset, preset_names
from storage import redact
from studies._errors import SpecError
from studies._names import NAME_RULE, name_problem
from studies._yaml import MAX_DEPTH, DuplicateKeyError, LimitError, load_yaml
from trainers import DATA_HYPERPARAMETERS, HYPERPARAMETERS, METRICS, ModelSpec, TaskSpec, TrainerSpec

# What every evaluation reports (trainers.finetune), and so what an objective may name.
OBJECTIVE_METRICS = METRICS
TUNABLE = HYPERPARAMETERS | DATA_HYPERPARAMETERS
# Each distinct max_length/truncation pair a space can give is tokenized at preparation: keep it few.
MAX_DATA_VARIANTS = 16


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


class RetentionSpec(_Section):
    """What a study keeps on disk, and how much a reused worker's memory may grow before it is replaced.

    A trial's epoch checkpoints (and Ray's persisted copies) are deleted once it
    concludes; best-model folders are kept for the ``keep_best`` best trials
    and the trials still running.
    """

    keep_best: int = Field(default=1, ge=1, description="best-model folders kept (the best trials by the objective)")
    max_memory_growth_mb: float | None = Field(
        default=2048,
        gt=0,
        description="a worker whose resident memory grew this much since its first trial is replaced; null: never",
    )
    max_gpu_memory_growth_mb: float | None = Field(
        default=1024,
        gt=0,
        description="the same for CUDA memory (allocated or reserved by torch); null: never",
    )


class StudySpec(_Section):
    """A whole study. ``name`` is the study's key in the store."""

    name: str
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
    retention: RetentionSpec = Field(default_factory=RetentionSpec)

    @field_validator("name", mode="before")
    @classmethod
    def _valid_name(cls, value: Any) -> Any:
        problem = name_problem(value)
        if problem:
            raise ValueError(f"not a valid study name ({problem}): use {NAME_RULE}")
        return value

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
        unknown = sorted(set(self.search_space.params) - TUNABLE)
        if unknown:
            raise ValueError(
                f"search_space: {unknown[0]!r} is not a tunable hyperparameter; "
                f"choose from {', '.join(sorted(TUNABLE))}"
            )
        self._check_space_fits_trainer()
        self._check_data_variants()
        if self.trainer.precision in ("fp16", "bf16") and not self.resources.gpus:
            raise ValueError(
                f"trainer.precision {self.trainer.precision} needs a CUDA GPU but resources.gpus is 0: "
                "set resources.gpus (e.g. 1), or precision auto (fp32 on CPU)"
            )
        metrics = [o.metric for o in self.objective]
        for metric in metrics:
            if metric not in OBJECTIVE_METRICS:
                why = "is not an evaluation metric" if metric == "train_loss" else "is not reported"
                raise ValueError(f"objective metric {metric!r} {why}: choose from {', '.join(OBJECTIVE_METRICS)}")
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objective lists a metric twice ({metrics}): list each once")
        for i, config in enumerate(self.enqueue):
            if not self.search_space.contains(config):
                raise ValueError(
                    f"enqueue[{i}] {config} does not fit the search space: give exactly the active parameters "
                    f"of {', '.join(sorted(self.search_space.params))}, each inside its range"
                )
        return self

    def _check_space_fits_trainer(self) -> None:
        """Every value the space can sample must be a valid trainer setting, or trials would fail one by one."""
        for name, param in self.search_space.params.items():
            section, model = ("task", self.task) if name in DATA_HYPERPARAMETERS else ("trainer", self.trainer)
            settings = model.model_dump()
            for value in param.extremes():
                try:
                    type(model).model_validate({**settings, name: value})
                except ValidationError as e:
                    reason = e.errors()[0]["msg"].removeprefix("Value error, ")
                    raise ValueError(
                        f"search_space.params.{name}: the value {value!r} is not a valid {section}.{name} "
                        f"({reason[:1].lower()}{reason[1:]}): narrow the range or fix the choices"
                    ) from None

    def _check_data_variants(self) -> None:
        """``max_length`` and ``truncation`` are tokenized once per value: they need a few listed values."""
        count = 1
        for name in sorted(DATA_HYPERPARAMETERS & set(self.search_space.params)):
            param = self.search_space.params[name]
            if param.type == "float":
                raise ValueError(f"search_space.params.{name}: use type int or categorical (each value is tokenized)")
            count *= len(param.grid()) + (1 if param.when else 0)
        if count > MAX_DATA_VARIANTS:
            raise ValueError(
                f"search_space: max_length and truncation give {count} distinct tokenizations to prepare: "
                f"give at most {MAX_DATA_VARIANTS} (e.g. a categorical max_length with a few values)"
            )

    def data_variants(self) -> list[dict[str, Any]]:
        """Every ``max_length``/``truncation`` pair a trial may train on, longest first (empty: neither is tuned)."""
        tuned = sorted(DATA_HYPERPARAMETERS & set(self.search_space.params))
        if not tuned:
            return []
        options = []
        for name in tuned:
            param = self.search_space.params[name]
            values = param.grid()
            if param.when:  # inactive in some trials, which train on the task's own value
                values = [*values, getattr(self.task, name)]
            options.append(list(dict.fromkeys(values)))
        variants = [dict(zip(tuned, values)) for values in itertools.product(*options)]
        return sorted(variants, key=lambda v: -int(v.get("max_length", self.task.max_length)))

    def setting_values(self) -> dict[str, list[Any]]:
        """Each trainer setting and every value trials may give it: the section's own and the space's extremes."""
        values = {name: [value] for name, value in self.trainer.model_dump().items()}
        for name, param in self.search_space.params.items():
            if name in values:
                values[name] = [*values[name], *param.extremes()]
        return values

    @property
    def artifact_path(self) -> str:
        """The artifact store's folder; like ``work_dir``, every node must share it on a cluster."""
        return self.artifact_dir or f"{self.work_dir.rstrip('/')}/artifacts"

    @property
    def multi_objective(self) -> bool:
        return len(self.objective) > 1

    def identity(self) -> dict[str, Any]:
        """The parts that define what the study searches; changing them makes a different study."""
        data = self.model_dump(
            mode="json",
            include={"task", "model", "trainer", "objective", "select", "search_space", "sampler", "pruner"},
        )
        if not data["model"]["trust_remote_code"]:
            del data["model"]["trust_remote_code"]  # off, as before the field existed: stored hashes still match
        return data

    def identity_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def redacted(self) -> dict[str, Any]:
        """The spec as JSON-safe data with secrets removed, for the store and model cards."""
        data = self.model_dump(mode="json")
        if data.get("storage"):
            data["storage"] = redact(data["storage"])
        return data


MAX_OVERRIDE_CHARS = 64 * 1024


def parse_overrides(items: list[str] | None) -> list[tuple[list[str], Any]]:
    """Parse ``--set a.b=value`` items; values are read as YAML (``1e-4``, ``true``, ``[1, 2]``).

    Values meet the spec file's limits (:mod:`studies._yaml`); a key path is
    dot-separated names, none empty.
    """
    parsed = []
    for item in items or []:
        key, sep, raw = item.partition("=")
        path = key.strip().split(".")
        if not sep or not key.strip():
            raise SpecError(f"--set {_cut(item)!r} is not of the form key.path=value (e.g. --set budget.n_trials=10)")
        if not all(part.strip() for part in path) or len(path) > MAX_DEPTH:
            raise SpecError(f"--set {_cut(key)!r}: give a dotted path of field names (e.g. budget.n_trials)")
        if len(item) > MAX_OVERRIDE_CHARS:
            raise SpecError(f"--set {_cut(key)}: the value is longer than {MAX_OVERRIDE_CHARS} characters")
        try:
            value = load_yaml(raw) if raw.strip() else None
        except (DuplicateKeyError, LimitError) as e:
            raise SpecError(f"--set {_cut(key.strip())}: {e.problem}") from None
        except yaml.YAMLError:
            value = raw
        parsed.append(([part.strip() for part in path], value))
    return parsed


def _cut(text: str) -> str:
    return text if len(text) <= 80 else f"{text[:60]}...({len(text)} characters)"


def refuse_non_finite(data: Any, source: str, where: str = "") -> None:
    """Refuse NaN and infinities anywhere in a spec: no field of a study means "not a number" or "no limit" by them.

    (``null`` is how a limit is left out, e.g. ``budget.timeout: null``.)

    Raises:
        SpecError: Naming the field.
    """
    if isinstance(data, float) and not math.isfinite(data):
        raise SpecError(f"{source}: {where or 'spec'}: {data} is not a finite number: give a number (or null)")
    if isinstance(data, dict):
        for key, value in data.items():
            refuse_non_finite(value, source, f"{where}.{key}" if where else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            refuse_non_finite(value, source, f"{where}[{i}]")


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


__all__ = ["StudySpec", "apply_overrides", "parse_overrides", "preset_names", "refuse_non_finite"]
