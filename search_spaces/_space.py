"""Declarative search spaces and their conversion to Optuna distributions.

A space is a mapping from a hyperparameter name to one of three kinds of
parameter, written in YAML as::

    learning_rate: {type: float, low: 1.0e-5, high: 1.0e-4, log: true}
    per_device_train_batch_size: {type: categorical, choices: [16, 32]}
    num_train_epochs: {type: int, low: 2, high: 4}

Names are the trainer's hyperparameter names (see ``trainers.HYPERPARAMETERS``);
the spec checks them, this module only knows shapes and ranges.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

Scalar = bool | int | float | str | None


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    def grid(self) -> list[Scalar]:
        return list(self.choices)

    def extremes(self) -> list[Scalar]:
        """Every choice (each can be sampled)."""
        return list(self.choices)


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class SearchSpace(BaseModel):
    """A named set of parameters; the unit the sampler explores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: dict[str, Param] = Field(min_length=1)

    def distributions(self) -> dict[str, BaseDistribution]:
        """The Optuna distribution of every parameter, by name."""
        return {name: p.distribution() for name, p in self.params.items()}

    def grid(self) -> dict[str, list[Scalar]]:
        """Every parameter's grid values, for the grid sampler.

        Raises:
            ValueError: If a float parameter has no ``step``.
        """
        return {name: p.grid() for name, p in self.params.items()}

    def grid_size(self) -> int:
        """How many points the full grid has."""
        return math.prod(len(v) for v in self.grid().values())

    def contains(self, params: dict[str, Any]) -> bool:
        """Whether ``params`` names exactly this space's parameters, each inside its range."""
        if set(params) != set(self.params):
            return False
        dists = self.distributions()
        return all(dists[k]._contains(dists[k].to_internal_repr(v)) for k, v in params.items())

    def grid_points(self) -> list[dict[str, Scalar]]:
        """Every point of the grid, in a stable order."""
        grid = self.grid()
        names = sorted(grid)
        return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]
