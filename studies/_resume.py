"""Resume a study from the store alone: its stored spec, its budget, its orphans.

``resume`` rebuilds the spec that the study was launched with, applies only
harmless ``--set`` changes (budget, resources, wandb, promotion, work_dir),
and launches again: the launch reconciles trials left RUNNING by a dead
launcher (FAIL ``interrupted``, params queued again) and runs until the
study's budget is met, then promotes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from storage import open_storage, redact, resolve_url
from studies._errors import ConflictError, NotFoundError, StudyError
from studies._launcher import Outcome, launch


def resume(
    study_name: str,
    *,
    storage_url: str | None = None,
    overrides: list[str] | None = None,
    ray_address: str | None = None,
    join: bool = False,
    stream: TextIO | None = sys.stderr,
    trainable: Callable[..., None] | None = None,
    context: dict[str, Any] | None = None,
) -> Outcome:
    """Continue ``study_name`` until its budget is met.

    Raises:
        NotFoundError: If the store has no such study, or it has no stored spec.
        ConflictError: If an override changes what the study searches, or a
            live launcher holds the study and ``join`` is not set.
    """
    import optuna

    from studies._names import require_name
    from studies._presets import validate_spec
    from studies._records import study_record
    from studies._store import find_study

    require_name(study_name, "study")
    url = resolve_url(storage_url)
    storage = open_storage(url, create=False)  # a store that does not exist holds no study to resume
    if find_study(storage, study_name) is None:
        raise NotFoundError(f"no study named {study_name!r} in {redact(url)}: check the name with `studies list`")
    study = optuna.load_study(study_name=study_name, storage=storage)
    attrs = study.user_attrs
    stored = study_record(study, "spec")
    if stored is None:
        raise NotFoundError(
            f"study {study_name!r} has no stored spec (it was not created by this tool): launch it from a spec file"
        )
    spec = validate_spec(stored, overrides, source=f"stored spec of {study_name}")
    if spec.identity_hash() != attrs.get("spec_hash"):
        raise ConflictError(
            "on resume --set may change only budget, resources, wandb, promotion and work_dir: "
            "to change the search, launch the spec as a new study with --new-name"
        )
    _check_data_path(study_name, spec.task.dataset, attrs.get("launch_dir"))
    return launch(
        spec, storage_url=url, ray_address=ray_address, join=join, stream=stream, trainable=trainable, context=context
    )


def _check_data_path(study_name: str, dataset: str, launch_dir: str | None) -> None:
    """Refuse a resume from another folder when the study's data file is relative to the one it was launched in.

    The dataset is part of what the study searches, so ``--set task.dataset``
    cannot fix this; running from the launch folder can.
    """
    path = Path(dataset).expanduser()
    if launch_dir is None or path.is_absolute() or path.exists():
        return
    if (Path(launch_dir) / path).exists():
        raise StudyError(
            f"study {study_name!r} reads task.dataset {dataset!r} relative to the folder it was launched in: "
            f"run `studies resume {study_name}` from {launch_dir}"
        )
