"""What a finished quickstart study shows in optuna-dashboard: metric names, notes, artifacts, short attributes."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna_dashboard import get_note
from optuna_dashboard._note import get_note_from_system_attrs

from studies._records import study_record, trial_record
from studies._store import stored_spec
from studies.browse.artifacts import artifact_root, attached
from studies.browse.observer import BrowseObserver

pytestmark = pytest.mark.slow


def _study(quickstart) -> optuna.Study:
    return optuna.load_study(study_name="quickstart", storage=quickstart.url)


def test_the_objective_is_named_after_its_metric(quickstart):
    assert _study(quickstart).metric_names == ["accuracy"]


def test_the_study_note_says_what_the_study_is_how_far_it_got_and_how_to_resume(quickstart):
    study = _study(quickstart)
    note = get_note(study)
    promoted = study.user_attrs["promoted"]
    assert "`tiny-bert`" in note and "maximize `accuracy`" in note and "| `learning_rate` |" in note
    assert "2 of 2 finished: 2 complete, 0 pruned, 0 failed, 0 running." in note
    assert f"trial {study.best_trial.number}: accuracy=" in note
    assert f"Trial {promoted['trial']} at `{promoted['dir']}`" in note  # the promoted model
    assert f"cd {quickstart.root} && studies resume quickstart --storage {quickstart.url}" in note
    assert "| started (UTC) | host |" in note  # the launches


def test_each_trial_note_has_its_reports_and_links(quickstart):
    study = _study(quickstart)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    for trial in study.trials:
        note = get_note_from_system_attrs(attrs, trial._trial_id)["body"]
        assert note.startswith(f"# Trial {trial.number}: COMPLETE")
        assert "| step | accuracy | f1 | eval_loss |" in note and "\n| 2 |" in note
        assert f"- wandb run: `{trial.user_attrs['wandb_run_id']}`" in note
        assert f"- best model folder: `{trial.user_attrs['best_model_dir']}`" in note
        assert "- checkpoint: `" in note and "- node: `" in note


def test_the_model_card_and_promotion_record_are_study_artifacts(quickstart):
    study = _study(quickstart)
    files = {meta.filename: meta for meta in attached(study)}
    assert {"README.md", "promotion.json"} <= set(files)
    root = artifact_root(study)
    assert root == (quickstart.root / "runs" / "artifacts").resolve()
    record = json.loads((root / files["promotion.json"].artifact_id).read_text())
    assert record["trial"] == study.user_attrs["promoted"]["trial"]


def test_large_records_live_in_system_attributes_and_user_attributes_stay_short(quickstart):
    study = _study(quickstart)
    assert "spec" not in study.user_attrs and "reports" not in study.trials[0].user_attrs
    assert study_record(study, "spec")["name"] == "quickstart"
    assert stored_spec(study).name == "quickstart"
    assert [r["step"] for r in trial_record(study.trials[0], "reports")] == [1, 2]
    assert len(study_record(study, "launches")) == 1
    for attrs in [study.user_attrs, *(t.user_attrs for t in study.trials)]:
        for key, value in attrs.items():
            assert len(json.dumps(value)) < 400, f"user attribute {key} is {len(json.dumps(value))} characters"


def test_a_store_of_the_old_layout_is_still_read(tmp_path, quickstart):
    study = optuna.create_study(study_name="old", storage=f"sqlite:///{tmp_path}/old.db")
    study.set_user_attr("spec", quickstart.spec.redacted())
    assert stored_spec(study).name == "quickstart"
    trial = study.ask()
    trial.set_user_attr("reports", [{"step": 1, "accuracy": 0.5}])
    study.tell(trial, 0.5)
    assert trial_record(study.trials[0], "reports") == [{"step": 1, "accuracy": 0.5}]


def test_a_failing_trial_gets_its_traceback_file_as_an_artifact(tmp_path, quickstart):
    study = optuna.create_study(study_name="failing", storage=f"sqlite:///{tmp_path}/f.db")
    study.set_user_attr("launch_dir", str(tmp_path))
    spec = quickstart.spec.model_copy(update={"work_dir": str(tmp_path / "runs")})
    traceback_file = tmp_path / "traceback.txt"
    traceback_file.write_text("Traceback (most recent call last):\n  ...\nValueError: boom\n")
    trial = study.ask()
    trial.set_user_attr("traceback_file", str(traceback_file))
    trial.set_user_attr("fail_reason", "error")
    BrowseObserver(spec).trial_failing(study, trial.number)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    BrowseObserver(spec).trial_finished(study, trial.number)  # the note of a finished trial can still be written
    (meta,) = attached(study, trial._trial_id)
    assert meta.filename == "traceback.txt"
    assert (tmp_path / "runs" / "artifacts" / meta.artifact_id).read_text().endswith("ValueError: boom\n")
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert "Failed (`error`)" in get_note_from_system_attrs(attrs, trial._trial_id)["body"]
