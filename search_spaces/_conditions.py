"""Conditional parameters: a parameter that exists only when others took given values.

A parameter's ``when`` maps each parent parameter to the value (or list of
values) that makes it active; several parents must all match. A space is
sampled define-by-run in :func:`sampling_order`, so a parameter whose parents
did not take its values is never suggested and is absent from the trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Scalar = bool | int | float | str | None


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from numbers (``True == 1`` in Python, not here)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def allowed(when_value: Any) -> list[Any]:
    """The values a ``when`` entry accepts: one value, or a list of them."""
    return list(when_value) if isinstance(when_value, list) else [when_value]


def is_active(when: Mapping[str, Any] | None, values: Mapping[str, Any]) -> bool:
    """Whether a parameter with condition ``when`` is active given the values sampled so far."""
    if not when:
        return True
    return all(
        parent in values and any(same_value(values[parent], v) for v in allowed(accepted))
        for parent, accepted in when.items()
    )


def sampling_order(conditions: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """The parameters in declaration order, each after the parents its condition names.

    Args:
        conditions: Each parameter's ``when`` (or ``None``), in declaration order.

    Raises:
        ValueError: If conditions form a cycle (``a`` needs ``b`` and ``b`` needs ``a``).
    """
    order: list[str] = []
    placed: set[str] = set()
    visiting: list[str] = []

    def place(name: str) -> None:
        if name in placed:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise ValueError(f"conditions form a cycle ({cycle}): a parameter cannot depend on itself")
        visiting.append(name)
        for parent in conditions.get(name) or {}:
            place(parent)
        visiting.pop()
        placed.add(name)
        order.append(name)

    for name in conditions:
        place(name)
    return order


def check_conditions(params: Mapping[str, Any]) -> None:
    """Check every condition names a parameter of the space and a value that parameter can take.

    Args:
        params: The space's parameters by name (each with ``when`` and ``can_take``).

    Raises:
        ValueError: Naming the parameter, the condition and the fix.
    """
    names = ", ".join(params)
    for name, param in params.items():
        for parent, accepted in (param.when or {}).items():
            if parent == name:
                raise ValueError(f"{name}: its condition names itself: a condition must name another parameter")
            if parent not in params:
                raise ValueError(
                    f"{name}: its condition names the unknown parameter {parent!r}: "
                    f"name one of the space's parameters ({names})"
                )
            values = allowed(accepted)
            if not values:
                raise ValueError(f"{name}: its condition on {parent!r} lists no value: give one or more values")
            for value in values:
                if not params[parent].can_take(value):
                    shown = str(value).lower() if isinstance(value, bool) else repr(value)
                    raise ValueError(
                        f"{name}: its condition {parent}={shown} can never hold ({parent} takes "
                        f"{params[parent].describe()}): give a value {parent} can take"
                    )
    sampling_order({name: param.when for name, param in params.items()})
