"""The Ray <-> Optuna bridge with real Ray and a real Optuna RDB store.

The trainable is ``studies.testing.curve_trainable``: it reports crafted
learning curves, so every expectation about states, values and pruning is exact.
"""

import itertools
import math

import optuna
import pytest
from optuna.trial import TrialState

from studies import launch
from studies._records import study_record, trial_record
from studies._task import trial_value
from studies.testing import curve_trainable

pytestmark = pytest.mark.slow

URL = "sqlite:///studies.db"


def run(spec, context, url=URL):
    return launch(spec, storage_url=url, trainable=curve_trainable, context=context, stream=None)


def trials_by_seed(name, url=URL):
    study = optuna.load_study(study_name=name, storage=url)
    return study, {t.params["seed"]: t for t in study.get_trials()}


def test_states_values_and_intermediate_values_are_exact(ray_session, curve_study):
    curves = {"0": [0.6, 0.7, 0.8], "1": [0.6, 0.4, 0.9], "2": [0.7, 0.9, 0.8], "3": [0.6, 0.7, 0.75]}
    spec = curve_study(seeds=[0, 1, 2, 3], pruner={"name": "threshold", "options": {"lower": 0.5}})
    out = run(spec, {"curves": curves, "fail": {"3": 2}})
    # Seed 3 fails and FAIL does not count by default: a fifth trial fills the budget.
    assert out.started == 5 and out.budget_met
    _, trials = trials_by_seed("curves")
    assert trials[0].state == TrialState.COMPLETE
    assert trials[0].intermediate_values == {1: 0.6, 2: 0.7, 3: 0.8}  # the last one included
    assert trials[1].state == TrialState.PRUNED
    assert trials[1].intermediate_values == {1: 0.6, 2: 0.4}  # everything up to the stop
    assert trials[2].state == TrialState.COMPLETE and trials[2].value == 0.9  # select: best
    assert trials[3].state == TrialState.FAIL
    assert trials[3].user_attrs["fail_reason"] == "error"
    assert trials[3].user_attrs["fail_message"] == "ValueError: crafted failure at step 2"
    for t in trials.values():
        for key in ("launcher_id", "ray_trial_id", "hostname", "node_ip", "wall_seconds", "checkpoint_path"):
            assert key in t.user_attrs, (t.number, key)


def test_select_last_takes_the_last_report(ray_session, curve_study):
    spec = curve_study(seeds=[0], select="last")
    run(spec, {"curves": {"0": [0.6, 0.9, 0.7]}})
    _, trials = trials_by_seed("curves")
    assert trials[0].value == pytest.approx(0.7)
    assert [r["accuracy"] for r in trial_record(trials[0], "reports")] == [0.6, 0.9, 0.7]


def test_trial_value_rules():
    class Spec:
        select = "best"
        objective = [type("O", (), {"metric": "accuracy", "direction": "maximize"})()]

    reports = {1: {"accuracy": 0.5}, 2: {"accuracy": 0.8}, 3: {"accuracy": float("nan")}}
    assert trial_value(Spec, reports) == [0.8]
    Spec.select = "last"
    assert trial_value(Spec, reports) == [0.8]  # a NaN report is never a value
    assert trial_value(Spec, {}) is None


GOOD = [[0.60, 0.70, 0.80, 0.90], [0.62, 0.72, 0.82, 0.92], [0.70, 0.80, 0.85, 0.95]]
# Curve sets per pruner: seeds 0-1 good (startup), 2 bad, 3 good (must survive).
PRUNER_CASES = {
    "none": ({"name": "none"}, [0.3, 0.3, 0.3, 0.3], set()),
    "median": ({"name": "median", "options": {"n_startup_trials": 2}}, [0.3, 0.3, 0.3, 0.3], {2}),
    "percentile": (
        {"name": "percentile", "options": {"percentile": 25.0, "n_startup_trials": 2}},
        [0.3, 0.3, 0.3, 0.3],
        {2},
    ),
    "successive_halving": ({"name": "successive_halving", "options": {"min_resource": 1}}, [0.3, 0.3, 0.3, 0.3], {2}),
    "threshold": ({"name": "threshold", "options": {"lower": 0.5}}, [0.6, 0.45, 0.9, 0.9], {2}),
    "patient": ({"name": "patient", "options": {"patience": 1}}, [0.6, 0.55, 0.5, 0.45], {2}),
}


@pytest.mark.parametrize("name", sorted(PRUNER_CASES))
def test_each_pruner_prunes_where_it_must_and_not_where_it_must_not(ray_session, curve_study, name):
    pruner, bad, expected = PRUNER_CASES[name]
    curves = {"0": GOOD[0], "1": GOOD[1], "2": bad, "3": GOOD[2]}
    spec = curve_study(name=f"p-{name}", seeds=[0, 1, 2, 3], pruner=pruner)
    run(spec, {"curves": curves})
    _, trials = trials_by_seed(f"p-{name}")
    pruned = {seed for seed, t in trials.items() if t.state == TrialState.PRUNED}
    assert pruned == expected
    for seed in pruned:
        # The pruned trial keeps its reports up to the stop, and stopped early.
        assert 1 <= len(trials[seed].intermediate_values) < 4


def test_hyperband_prunes_bad_trials_and_keeps_the_best(ray_session, curve_study):
    seeds = list(range(10))
    curves = {str(s): [0.5 + 0.04 * s + 0.01 * k for k in range(4)] for s in seeds[:4]}
    curves.update({str(s): [0.2, 0.2, 0.2, 0.2] for s in seeds[4:]})
    pruner = {"name": "hyperband", "options": {"min_resource": 1, "max_resource": 4, "reduction_factor": 2}}
    spec = curve_study(name="hb", seeds=seeds, pruner=pruner)
    run(spec, {"curves": curves})
    _, trials = trials_by_seed("hb")
    pruned = {s for s, t in trials.items() if t.state == TrialState.PRUNED}
    assert pruned, "hyperband pruned nothing on a set with six flat, bad curves"
    assert pruned <= set(seeds[4:])
    assert trials[3].state == TrialState.COMPLETE


def _distance(a, b):
    """How far apart two trials' params are: decades of learning rate plus tenths of warmup ratio."""
    lr = abs(math.log10(a.params["learning_rate"]) - math.log10(b.params["learning_rate"]))
    return lr + 10 * abs(a.params["warmup_ratio"] - b.params["warmup_ratio"])


def test_parallel_tpe_spreads_trials_that_run_at_once(ray_session, curve_study):
    # With constant_liar (the default), TPE counts running trials as bad ones and proposes
    # elsewhere; without it, a trial asked while others run often lands next to one of them
    # (close pairs, distance < 0.1, in 5 of 6 seeds of this setting run with plain Optuna,
    # none with the liar).
    space = {
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
    }
    startup = 8
    spec = curve_study(
        name="parallel",
        search_space=space,
        sampler={"name": "tpe", "seed": 0, "options": {"n_startup_trials": startup}},
        budget={"n_trials": 40, "max_concurrent": 4},
        resources={"cpus": 1},
    )
    run(spec, {"step_seconds": 0.15, "steps": 3})
    study = optuna.load_study(study_name="parallel", storage=URL)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 40
    overlapping, close = 0, []
    for a, b in itertools.combinations(trials, 2):
        if a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete:
            overlapping += 1
            if max(a.number, b.number) >= startup and _distance(a, b) < 0.1:
                close.append((a.number, b.number, round(_distance(a, b), 3)))
    assert overlapping >= 40, "trials did not actually run concurrently"
    assert close == [], f"TPE proposed trials next to running ones: {close}"


def test_grid_sampler_never_runs_a_point_twice(ray_session, curve_study):
    spec = curve_study(
        name="grid",
        search_space="bert-paper",
        sampler={"name": "grid", "seed": 0},
        budget={"n_trials": 100, "max_concurrent": 4},
    )
    run(spec, {"steps": 2})
    study = optuna.load_study(study_name="grid", storage=URL)
    points = [tuple(sorted(t.params.items())) for t in study.get_trials()]
    assert len(points) == 18 == len(set(points))


def test_multi_objective_keeps_every_metric_and_does_not_prune(ray_session, curve_study):
    spec = curve_study(
        name="multi",
        seeds=[0, 1, 2],
        objective=[{"metric": "accuracy"}, {"metric": "eval_loss", "direction": "minimize"}],
        sampler={"name": "nsga2", "seed": 0},
        pruner={"name": "median"},
    )
    run(spec, {"curves": {"0": [0.5, 0.6], "1": [0.2, 0.1], "2": [0.7, 0.8]}})
    study, trials = trials_by_seed("multi")
    assert all(t.state == TrialState.COMPLETE for t in trials.values())
    assert trials[2].values == pytest.approx([0.8, 0.2])
    assert [r["eval_loss"] for r in trial_record(trials[0], "reports")] == pytest.approx([0.5, 0.4])
    assert {t.number for t in study.best_trials} == {trials[2].number}


def test_enqueued_configs_run_once_across_launches_and_budget_is_the_studys(ray_session, curve_study):
    spec = curve_study(name="budget", seeds=[5, 6], budget={"n_trials": 2})
    first = run(spec, {})
    assert first.started == 2 and first.budget_met
    again = run(spec, {})
    assert again.started == 0  # the budget is the study's, not the launch's
    bigger = curve_study(name="budget", seeds=[5, 6], budget={"n_trials": 4})
    run(bigger, {})
    study, _ = trials_by_seed("budget")
    seeds = [t.params["seed"] for t in study.get_trials()]
    assert len(seeds) == 4 and seeds.count(5) == 1 and seeds.count(6) == 1
    changes = study_record(study, "spec_changes")
    assert changes[-1]["changes"]["budget"]["to"]["n_trials"] == 4
