"""What the launcher, the bridge and the promotion all need: the prepared task and a trial's value."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studies._spec import StudySpec
    from trainers import Prepared


def prepare_task(spec: StudySpec) -> Prepared:
    """Prepare the study's data and base model once (cached under ``work_dir/cache``), and check the model.

    When the search space tunes ``max_length`` or ``truncation``, the data is
    tokenized once per distinct pair (longest first, so a length the model
    cannot take fails before anything else is tokenized); the result carries
    them as ``variants`` and a trial takes its own with ``Prepared.for_params``.
    Tiny-bert's position table is sized for the longest.

    Raises:
        DataError, ModelError: If the data or the model cannot be prepared, or the
            model cannot take a setting trials may give it (one line each).
    """
    import dataclasses
    import itertools

    from trainers import check_model_settings, prepare, variant_key

    cache = Path(spec.work_dir).resolve() / "cache"
    variants = spec.data_variants()
    positions = max([spec.task.max_length, *(int(v.get("max_length", 0)) for v in variants)])
    prepared_variants: dict[str, dict[str, Any]] = {}
    for variant in variants:
        prepared = prepare(spec.task.model_copy(update=variant), spec.model, cache, positions=positions).to_dict()
        # A trial where a conditional max_length/truncation is inactive names only the other one:
        # it trains on the task's own value, so the variant is also found under the shorter key.
        names = list(variant)
        for size in range(1, len(names) + 1):
            for named in itertools.combinations(names, size):
                if all(variant[k] == getattr(spec.task, k) for k in names if k not in named):
                    key = variant_key({k: variant[k] for k in named})
                    if key is not None:
                        prepared_variants.setdefault(key, prepared)
    base = prepare(spec.task, spec.model, cache, positions=positions)
    check_model_settings(base.model_dir, spec.setting_values())
    return dataclasses.replace(base, variants=prepared_variants) if prepared_variants else base


def trial_value(spec: StudySpec, reports: dict[int, dict[str, float]]) -> list[float] | None:
    """The objective values of a trial from its reports, per ``spec.select``.

    ``select: last`` takes the last report; ``select: best`` the report that is
    best on the first objective (all objectives are read from that one report,
    so a multi-objective value is always a point the model actually reached).

    Args:
        spec: The study's spec (its objectives and ``select``).
        reports: The trial's reported metrics by step.

    Returns:
        One value per objective, or ``None`` when no report has them all finite.
    """
    steps = [s for s in sorted(reports) if all(_finite(reports[s].get(o.metric)) for o in spec.objective)]
    if not steps:
        return None
    if spec.select == "last":
        chosen = steps[-1]
    else:
        first = spec.objective[0]
        pick = max if first.direction == "maximize" else min
        chosen = pick(steps, key=lambda s: reports[s][first.metric])
    return [float(reports[chosen][o.metric]) for o in spec.objective]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
