"""``studies --version``, ``status``/``list --json`` against their documented schemas, ``status --watch``."""

from __future__ import annotations

import json
import warnings

import jsonschema
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from studies import __version__
from studies.browse.status import SCHEMA_DIR


def schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


def validate(record: dict, name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(schema(name))
    jsonschema.validate(record, schema(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture
def small_store(tmp_path):
    """A store with a two-objective study (one COMPLETE, one FAIL with its reason) and an empty one."""
    url = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(study_name="two", storage=url, directions=["maximize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "eval_loss"])
    dist = {"learning_rate": FloatDistribution(1e-4, 1e-2, log=True)}
    study.add_trial(
        create_trial(
            values=[0.8, 0.4],
            params={"learning_rate": 1e-3},
            distributions=dist,
            user_attrs={"wandb_run_id": "abc-trial-0", "best_model_dir": "/m/0"},
        )
    )
    study.add_trial(
        create_trial(
            state=TrialState.FAIL,
            params={"learning_rate": 5e-3},
            distributions=dist,
            user_attrs={"fail_reason": "oom", "fail_message": "CUDA out of memory"},
        )
    )
    optuna.create_study(study_name="empty", storage=url)
    return url


def test_version_prints_the_package_version(studies_main, capsys):
    with pytest.raises(SystemExit) as stop:
        studies_main("--version")
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"studies {__version__}"


def test_status_and_list_json_follow_their_schemas(small_store, studies_main):
    two = json.loads(studies_main("status", "two", "--json", "--storage", small_store).stdout)
    validate(two, "status")
    assert two["metric_names"] == ["accuracy", "eval_loss"] and two["directions"] == ["maximize", "minimize"]
    assert two["counts"] == {"COMPLETE": 1, "PRUNED": 0, "FAIL": 1, "RUNNING": 0, "WAITING": 0}
    assert two["best"] == [{"number": 0, "values": [0.8, 0.4], "params": {"learning_rate": 1e-3}}]
    assert two["trials"][1]["fail_reason"] == "oom" and two["trials"][0]["links"]["wandb_run_id"] == "abc-trial-0"
    empty = json.loads(studies_main("status", "empty", "--json", "--storage", small_store).stdout)
    validate(empty, "status")
    assert empty["best"] == [] and empty["trials"] == [] and empty["budget"] is None
    listing = json.loads(studies_main("list", "--json", "--storage", small_store).stdout)
    validate(listing, "list")
    assert [s["study"] for s in listing["studies"]] == ["two", "empty"]


def test_a_record_off_its_schema_is_caught():
    with pytest.raises(jsonschema.ValidationError):
        validate({"schema": "studies.list/1", "storage": "sqlite://", "studies": [{"study": "x"}]}, "list")


def test_status_text_shows_each_failure_reason_and_the_links(small_store, studies_main):
    out = studies_main("status", "two", "--storage", small_store).stdout
    assert "trial 1 FAIL (oom: CUDA out of memory)" in out
    assert "trial 0 COMPLETE: wandb run abc-trial-0, model /m/0" in out


def test_watch_ends_when_the_study_is_done(small_store, studies_main):
    run = studies_main("status", "two", "--watch", "--interval", "0.1", "--storage", small_store)
    assert run.returncode == 0
    assert "study two: finished 1 (complete 1, pruned 0), failed 1, running 0, queued 0" in run.stdout
    assert "elapsed " in run.stdout


@pytest.mark.slow
def test_the_quickstart_status_json_follows_its_schema(quickstart, studies_main):
    record = json.loads(studies_main("status", "quickstart", "--json", "--storage", quickstart.url).stdout)
    validate(record, "status")
    assert record["budget"] == 2 and record["promoted"]["trial"] == record["best"][0]["number"]
    assert all(t["links"]["best_model_dir"] for t in record["trials"])
