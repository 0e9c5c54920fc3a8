"""Declarative search spaces and their conversion to Optuna distributions.

A space is a mapping from a hyperparameter name to one of three kinds of
parameter, written in YAML as::

    learning_rate: {type: float, low: 1.0e-5, high: 1.0e-4, log: true}
    per_device_train_batch_size: {type: categorical, choices: [16, 32]}
    num_train_epochs: {type: int, low: 2, high: 4}

Any parameter may carry a condition, ``when``: it then exists only in trials
where the named parameters took the given values (one value or a list)::

    lr_scheduler_type: {type: categorical, choices: [linear, cosine_with_restarts]}
    num_cycles: {type: int, low: 1, high: 4, when: {lr_scheduler_type: cosine_with_restarts}}

Such a space is sampled define-by-run (:meth:`SearchSpace.sample`): an inactive
parameter is never suggested, so it is absent from the trial's parameters.

Names are the trainer's hyperparameter names (see ``trainers.HYPERPARAMETERS``);
the spec checks them, this module only knows shapes, ranges and conditions.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from search_spaces._conditions import Scalar, check_conditions, is_active, same_value, sampling_order

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    when: dict[str, Scalar | list[Scalar]] | None = Field(
        default=None, description="parent parameter -> the value(s) that make this parameter exist"
    )

    def can_take(self, value: Any) -> bool:
        """Whether sampling can give ``value`` (for checking conditions and enqueued values)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return bool(self.distribution()._contains(float(value)))  # type: ignore[attr-defined]

    def describe(self) -> str:
        return f"{self.low} to {self.high}"  # type: ignore[attr-defined]


class FloatParam(_Param):
    """A real-valued parameter; ``log`` samples uniformly in log space, ``step`` discretizes."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high}): swap them")
        if self.log and self.low <= 0:
            raise ValueError(f"log=true needs low > 0 (got {self.low}): use a positive low or log=false")
        if self.log and self.step is not None:
            raise ValueError("log=true and step cannot be combined: drop one of them")
        return self

    def distribution(self) -> BaseDistribution:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: optuna.Trial, name: str) -> Scalar:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def grid(self) -> list[Scalar]:
        if self.step is None:
            raise ValueError("a float parameter needs a step to be gridded: add step or use categorical")
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def extremes(self) -> list[Scalar]:
        """The values at the edges of the range: a field that takes both takes every value between."""
        return [self.low, self.high]


class IntParam(_Param):
    """An integer parameter in ``[low, high]`` with an optional ``step`` (and ``log``)."""

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(default=1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high}): swap them")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("log=true needs low >= 1 and step 1")
        return self

    def distribution(self) -> BaseDistribution:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: optuna.Trial, name: str) -> Scalar:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def can_take(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            return False
        return self.low <= value <= self.high and (int(value) - self.low) % self.step == 0

    def grid(self) -> list[Scalar]:
        return list(range(self.low, self.high + 1, self.step))

    def extremes(self) -> list[Scalar]:
        """The values at the edges of the range."""
        return [self.low, self.high]


class CategoricalParam(_Param):
    """A choice among listed values (numbers, strings, booleans)."""

    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError(f"choices {self.choices} repeat a value: list each once")
        return self

    def distribution(self) -> BaseDistribution:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(tuple(self.choices))

    def suggest(self, trial: optuna.Trial, name: str) -> Scalar:
        return trial.suggest_categorical(name, self.choices)

    def can_take(self, value: Any) -> bool:
        return any(same_value(value, choice) for choice in self.choices)

    def describe(self) -> str:
        return "one of " + ", ".join(str(c).lower() if isinstance(c, bool) else repr(c) for c in self.choices)

    def grid(self) -> list[Scalar]:
        return list(self.choices)

    def extremes(self) -> list[Scalar]:
        """Every choice (each can be sampled)."""
        return list(self.choices)


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class SearchSpace(BaseModel):
    """A named set of parameters, some maybe conditional; the unit the sampler explores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: dict[str, Param] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_conditions(self) -> SearchSpace:
        check_conditions(self.params)
        return self

    @property
    def conditional(self) -> bool:
        """Whether some parameter exists only under a condition."""
        return any(p.when for p in self.params.values())

    def order(self) -> list[str]:
        """The parameter names in sampling order (each after the parents its condition names)."""
        return sampling_order({name: p.when for name, p in self.params.items()})

    def sample(self, trial: optuna.Trial) -> dict[str, Scalar]:
        """Suggest every active parameter on ``trial``, define-by-run; inactive ones are not suggested.

        Args:
            trial: A trial from ``study.ask()`` (enqueued values are returned as given).

        Returns:
            The active parameters' values, by name.
        """
        values: dict[str, Scalar] = {}
        for name in self.order():
            param = self.params[name]
            if is_active(param.when, values):
                values[name] = param.suggest(trial, name)
        return values

    def active(self, params: dict[str, Any]) -> list[str]:
        """The names that are active when the parameters take the values in ``params``."""
        names: list[str] = []
        seen: dict[str, Any] = {}
        for name in self.order():
            if is_active(self.params[name].when, seen):
                names.append(name)
                if name in params:
                    seen[name] = params[name]
        return names

    def distributions(self) -> dict[str, BaseDistribution]:
        """The Optuna distribution of every parameter, by name (active or not)."""
        return {name: p.distribution() for name, p in self.params.items()}

    def grid(self) -> dict[str, list[Scalar]]:
        """Every parameter's grid values, for the grid sampler.

        Raises:
            ValueError: If a float parameter has no ``step``, or the space is conditional.
        """
        if self.conditional:
            raise ValueError(
                "a conditional space cannot be gridded (the grid sampler needs every parameter in every trial): "
                "use the tpe or random sampler, or drop the conditions"
            )
        return {name: p.grid() for name, p in self.params.items()}

    def grid_size(self) -> int:
        """How many points the full grid has."""
        return math.prod(len(v) for v in self.grid().values())

    def contains(self, params: dict[str, Any]) -> bool:
        """Whether ``params`` names exactly the parameters active at its values, each inside its range."""
        if set(params) != set(self.active(params)):
            return False
        return all(self.params[k].can_take(v) for k, v in params.items())

    def grid_points(self) -> list[dict[str, Scalar]]:
        """Every point of the grid, in a stable order."""
        grid = self.grid()
        names = sorted(grid)
        return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]
