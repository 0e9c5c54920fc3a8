"""Conditional parameters: load-time checks, define-by-run sampling, and TPE finding the right branch."""

from __future__ import annotations

import math

import optuna
import pytest
from pydantic import ValidationError

from search_spaces import SearchSpace

SCHEDULES = {
    "lr_scheduler_type": {"type": "categorical", "choices": ["linear", "cosine_with_restarts"]},
    "num_cycles": {"type": "int", "low": 1, "high": 4, "when": {"lr_scheduler_type": "cosine_with_restarts"}},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
}


def space(params):
    return SearchSpace.model_validate({"params": params})


def test_inactive_parameters_are_never_suggested():
    s = space(SCHEDULES)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = s.sample(trial)
        seen.add(params["lr_scheduler_type"])
        assert ("num_cycles" in params) == (params["lr_scheduler_type"] == "cosine_with_restarts")
        assert trial.params == params  # what the store holds: the active ones only
        study.tell(trial, 0.0)
    assert seen == {"linear", "cosine_with_restarts"}


def test_a_parameter_is_sampled_after_the_parents_its_condition_names():
    s = space({"child": {**SCHEDULES["num_cycles"]}, "lr_scheduler_type": SCHEDULES["lr_scheduler_type"]})
    assert s.order() == ["lr_scheduler_type", "child"]


def test_nested_and_list_conditions():
    s = space(
        {
            "a": {"type": "categorical", "choices": ["x", "y", "z"]},
            "b": {"type": "categorical", "choices": [True, False], "when": {"a": ["x", "y"]}},
            "c": {"type": "float", "low": 0, "high": 1, "when": {"b": True}},
        }
    )
    assert s.active({"a": "z"}) == ["a"]
    assert s.active({"a": "y", "b": False}) == ["a", "b"]
    assert s.active({"a": "x", "b": True, "c": 0.5}) == ["a", "b", "c"]
    assert s.contains({"a": "x", "b": True, "c": 0.5})
    assert not s.contains({"a": "z", "b": True})  # b is inactive under z
    assert not s.contains({"a": "x", "b": True})  # c is active and missing
    assert not s.contains({"a": "x", "b": 1, "c": 0.5})  # 1 is not True here


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"scheduler": "cosine"}, "num_cycles: its condition names the unknown parameter 'scheduler'"),
        ({"lr_scheduler_type": "cosine"}, "num_cycles: its condition lr_scheduler_type='cosine' can never hold"),
        ({"learning_rate": 0.5}, "num_cycles: its condition learning_rate=0.5 can never hold"),
        ({"num_cycles": 2}, "num_cycles: its condition names itself"),
    ],
)
def test_an_impossible_condition_is_refused_at_load(when, message):
    params = {**SCHEDULES, "num_cycles": {**SCHEDULES["num_cycles"], "when": when}}
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        space(params)


def test_a_cycle_of_conditions_is_refused():
    with pytest.raises(ValidationError, match="conditions form a cycle"):
        space(
            {
                "a": {"type": "categorical", "choices": [1, 2], "when": {"b": 1}},
                "b": {"type": "categorical", "choices": [1, 2], "when": {"a": 1}},
            }
        )


def test_a_conditional_space_cannot_be_gridded():
    with pytest.raises(ValueError, match="conditional space cannot be gridded"):
        space(SCHEDULES).grid()


def _branch_objective(s: SearchSpace):
    """Branch ``good`` can reach 1.0 (at x = 0.8); branch ``bad`` tops out at 0.5 whatever y is."""

    def objective(trial: optuna.Trial) -> float:
        params = s.sample(trial)
        if params["branch"] == "good":
            return 1.0 - (params["x"] - 0.8) ** 2
        return 0.5 - 0.1 * abs(params["y"] - 0.5)

    return objective


BRANCHES = {
    "branch": {"type": "categorical", "choices": ["bad", "good"]},
    "x": {"type": "float", "low": 0.0, "high": 1.0, "when": {"branch": "good"}},
    "y": {"type": "float", "low": 0.0, "high": 1.0, "when": {"branch": "bad"}},
}


def test_tpe_finds_the_right_branch_of_a_conditional_space():
    s = space(BRANCHES)
    sampler = optuna.samplers.TPESampler(seed=1, multivariate=True, group=True, n_startup_trials=10)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_branch_objective(s), n_trials=60)
    trials = study.trials
    for t in trials:  # inactive parameters are absent, not filled in
        assert set(t.params) == ({"branch", "x"} if t.params["branch"] == "good" else {"branch", "y"})
    late = [t.params["branch"] for t in trials[30:]]
    assert late.count("good") >= 0.8 * len(late), late
    assert study.best_params["branch"] == "good"
    assert math.isclose(study.best_params["x"], 0.8, abs_tol=0.1)
    # The random sampler on the same budget is no better at staying on the good branch.
    rand = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    rand.optimize(_branch_objective(s), n_trials=60)
    assert [t.params["branch"] for t in rand.trials[30:]].count("good") < late.count("good")
