"""Where the study's large machine-readable records live in the store.

The spec, the history of spec changes, the launches and every trial's
per-report metrics are JSON records that would drown optuna-dashboard's
user-attribute tables, so they are Optuna *system* attributes with a
``studies:`` prefix. Scripts read them through Optuna's public storage API::

    storage = optuna.storages.RDBStorage(url)
    study_id = storage.get_study_id_from_name("quickstart")
    spec = storage.get_study_system_attrs(study_id)["studies:spec"]
    reports = study.trials[0].system_attrs["studies:reports"]

Stores written before this layout kept them as user attributes (``spec``,
``spec_changes``, ``reports``); every reader here falls back to those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

PREFIX = "studies:"
# Record names that older stores kept as user attributes of the same name.
STUDY_RECORDS = ("spec", "spec_changes", "launches")
TRIAL_RECORDS = ("reports",)


def study_record(study: optuna.Study, name: str, default: Any = None) -> Any:
    """The study's record ``name`` (system attribute first, then the old user attribute)."""
    system = study._storage.get_study_system_attrs(study._study_id)
    if PREFIX + name in system:
        return system[PREFIX + name]
    return study.user_attrs.get(name, default)


def set_study_record(study: optuna.Study, name: str, value: Any) -> None:
    study._storage.set_study_system_attr(study._study_id, PREFIX + name, value)


def trial_record(trial: optuna.trial.FrozenTrial, name: str, default: Any = None) -> Any:
    """A finished or running trial's record ``name`` (system attribute first, then the old user attribute)."""
    if PREFIX + name in trial.system_attrs:
        return trial.system_attrs[PREFIX + name]
    return trial.user_attrs.get(name, default)


def set_trial_record(study: optuna.Study, trial_id: int, name: str, value: Any) -> None:
    """Set a record on a trial that is still running (Optuna refuses to edit finished ones)."""
    study._storage.set_trial_system_attr(trial_id, PREFIX + name, value)
