"""Searching what matters, end to end: a conditional space on a 4-class task, and the specs refused up front."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from studies._records import trial_record
from tests.studies.test_cli_e2e import sets, studies

SPEC = {
    "name": "four-topics",
    "task": {
        "dataset": "synthetic",
        "synthetic_classes": 4,
        "train_size": 320,
        "eval_size": 80,
        "test_size": 80,
        "max_length": 32,
    },
    "model": {"name": "tiny-bert"},
    # From scratch, tiny-bert needs about 80 steps to tell the four topics apart.
    "trainer": {
        "num_train_epochs": 2,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 80,
        "warmup_ratio": 0.1,
    },
    "objective": {"metric": "f1_macro", "direction": "maximize"},
    "search_space": {
        "learning_rate": {"type": "float", "low": 1.0e-3, "high": 3.0e-3, "log": True},
        "lr_scheduler_type": {"type": "categorical", "choices": ["linear", "cosine_with_restarts"]},
        "num_cycles": {"type": "int", "low": 1, "high": 3, "when": {"lr_scheduler_type": "cosine_with_restarts"}},
        "max_length": {"type": "categorical", "choices": [16, 32]},
    },
    "sampler": {"name": "tpe", "seed": 0},
    "budget": {"n_trials": 2, "max_concurrent": 2},
    "wandb": {"mode": "disabled"},
    "enqueue": [
        {"learning_rate": 2.0e-3, "lr_scheduler_type": "cosine_with_restarts", "num_cycles": 2, "max_length": 16},
        {"learning_rate": 2.0e-3, "lr_scheduler_type": "linear", "max_length": 32},
    ],
}


def _dashboard_params(storage: str, study_id: int) -> list[set[str]]:
    """The parameter names optuna-dashboard's API shows for each trial of the study."""
    import io

    from optuna_dashboard import wsgi

    app = wsgi(storage)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/api/studies/{study_id}",
        "QUERY_STRING": "after=0",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
    }
    status = []
    body = b"".join(app(environ, lambda s, h, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), status
    return [{p["name"] for p in t["params"]} for t in json.loads(body)["trials"]]


@pytest.mark.slow
def test_conditional_space_on_a_four_class_task_end_to_end(tmp_path: Path):
    spec = tmp_path / "four.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    run = studies("launch", str(spec), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]

    storage = f"sqlite:///{tmp_path}/studies.db"
    study = optuna.load_study(study_name="four-topics", storage=storage)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    # A store that asked for every distribution would hold num_cycles for the linear trial too.
    for t in trials:  # only the active parameters are stored
        cosine = t.params["lr_scheduler_type"] == "cosine_with_restarts"
        active = {"learning_rate", "lr_scheduler_type", "max_length"} | ({"num_cycles"} if cosine else set())
        assert set(t.params) == active
        assert set(trial_record(t, "reports")[-1]) >= {"f1_macro", "f1_weighted", "mcc", "roc_auc", "accuracy"}
    assert {t.params["lr_scheduler_type"] for t in trials} == {"linear", "cosine_with_restarts"}
    assert _dashboard_params(storage, study._study_id) == [set(t.params) for t in trials]

    record = json.loads((tmp_path / "models" / "four-topics" / "promotion.json").read_text())
    assert record["label_names"] == ["book", "film", "game", "music"]  # string labels are sorted
    assert record["positive_label"] == "film"  # the second label: what binary F1 would score
    metrics = {"accuracy", "f1", "f1_macro", "f1_weighted", "mcc", "roc_auc", "eval_loss"}
    assert set(record["test"]) == metrics and set(record["validation"]) >= metrics
    # One class for everything scores 0.1; guessing at the class rates, 0.25.
    assert record["test"]["f1_macro"] > 0.35
    model = {"name": "tiny-bert", "source": "tiny-bert", "revision": None, "commit": None}
    assert record["revisions"]["model"] == model
    assert record["revisions"]["dataset"]["source"] == "synthetic" and record["revisions"]["dataset"]["commit"] is None
    card = (tmp_path / "models" / "four-topics" / "README.md").read_text()
    assert "| f1_macro |" in card and "| roc_auc |" in card and "F1 is the macro F1" in card


CONDITION_ON_UNKNOWN = "search_space.num_cycles={type: int, low: 1, high: 3, when: {scheduler: cosine_with_restarts}}"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["objective.metric=train_loss"], "objective metric 'train_loss' is not an evaluation metric: choose from"),
        (["objective.metric=f2"], "objective metric 'f2' is not reported: choose from accuracy, f1, f1_macro"),
        ([CONDITION_ON_UNKNOWN], "num_cycles: its condition names the unknown parameter 'scheduler'"),
        (
            ["task.labels=[negative, positive]", "task.positive_label=good"],
            "positive_label 'good' is not among task.labels",
        ),
    ],
)
def test_specs_that_would_fail_every_trial_are_refused_at_validate(tmp_path: Path, overrides, expected):
    run = studies("validate", "quickstart", *sets(overrides), cwd=tmp_path, timeout=120)
    assert run.returncode == 2, run.stderr
    assert expected in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_refused_spec_launches_nothing(tmp_path: Path):
    run = studies("launch", "quickstart", *sets(["objective.metric=train_loss"]), cwd=tmp_path, timeout=120)
    assert run.returncode == 2 and "'train_loss' is not an evaluation metric" in run.stderr
    assert not list(tmp_path.iterdir())  # no store, no cache, no run folder


def test_a_searched_max_length_beyond_the_model_is_refused_at_preparation(tmp_path: Path):
    # (task.max_length itself is checked by the same code: tests/trainers/test_trainers_search_data.py)
    overrides = ["model.name=minilm-l6", "search_space.max_length={type: categorical, choices: [64, 1024]}"]
    run = studies("launch", "quickstart", *sets(overrides), cwd=tmp_path, timeout=300)
    assert run.returncode == 2, run.stderr
    assert "max_length 1024 is beyond what model.name 'minilm-l6' takes (512 positions)" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    store = tmp_path / "studies.db"
    assert not store.exists() or optuna.get_all_study_names(f"sqlite:///{store}") == []
