"""What counts against a study's ``budget.n_trials``, read from the store.

Every sampler: COMPLETE and PRUNED trials count, FAIL ones when
``budget.count_failed`` is set; trials RUNNING anywhere hold budget until they
end. A grid study counts *points*: a point is done once a trial with its
parameters is COMPLETE, PRUNED or FAIL for any reason but ``interrupted`` (an
interrupted point is queued again), failures always included; Optuna's
GridSampler treats a failed point as visited and, with the grid used up, would
propose a visited point again, so the budget never lets it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from studies._spec import StudySpec


def n_trials(spec: StudySpec) -> int:
    """The number of finished trials (grid: points) the study needs."""
    if spec.sampler.name == "grid":
        return min(spec.budget.n_trials, spec.search_space.grid_size())
    return spec.budget.n_trials


def budget_counts(study: optuna.Study, spec: StudySpec) -> tuple[int, int]:
    """``(finished trials that count, trials running anywhere)``; for a grid, points instead of trials."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    trials = study.get_trials(deepcopy=False, states=states)
    if spec.sampler.name == "grid":
        return _grid_counts(trials)
    counts = {state: 0 for state in states}
    for trial in trials:
        counts[trial.state] += 1
    counted = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
    if spec.budget.count_failed:
        counted += counts[TrialState.FAIL]
    return counted, counts[TrialState.RUNNING]


def _point(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def _grid_counts(trials: list[optuna.trial.FrozenTrial]) -> tuple[int, int]:
    from optuna.trial import TrialState

    done = {
        _point(t.params)
        for t in trials
        if t.state != TrialState.RUNNING
        and not (t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") == "interrupted")
    }
    running = [t for t in trials if t.state == TrialState.RUNNING]
    return len(done), sum(1 for t in running if not t.params or _point(t.params) not in done)
