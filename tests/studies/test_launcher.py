"""The launcher's checks before anything runs, and its clean-up when a launch fails early."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import optuna
import pytest

from studies import StudyError, launch
from studies._preflight import check_ray_address, check_writable_dirs
from studies.testing import curve_trainable


@pytest.fixture
def web_server():
    """A plain HTTP server on a free port: what answers when the Ray dashboard port is given instead of the head's."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_address_where_something_else_answers_is_refused_at_once(web_server):
    with pytest.raises(StudyError, match="something answers there, but not a Ray head"):
        check_ray_address(web_server, timeout=5)


def test_a_running_ray_head_is_accepted(ray_session):
    check_ray_address(ray_session.get_runtime_context().gcs_address)


@pytest.mark.parametrize("key", ["work_dir", "wandb.dir", "promotion.dir"])
def test_unwritable_folders_are_refused_before_anything_runs(curve_study, tmp_path, key):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    section, _, field = key.partition(".")
    where = str(blocker / "sub")
    overrides = {section: {field: where, "mode": "offline"} if section == "wandb" else {field: where}}
    if section == "work_dir":
        overrides = {"work_dir": where}
    spec = curve_study(name="unwritable", **overrides)
    with pytest.raises(StudyError, match=rf"^{key} '{where}' is not a writable folder \(.*\): set {key} to a folder"):
        check_writable_dirs(spec)


def test_wandb_dir_is_not_needed_when_wandb_is_disabled(curve_study, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    check_writable_dirs(curve_study(name="nowandb", wandb={"mode": "disabled", "dir": str(blocker / "wandb")}))


def test_a_launch_interrupted_before_any_trial_leaves_no_study_even_with_queued_configs(
    ray_session, curve_study, tmp_path: Path, monkeypatch
):
    url = f"sqlite:///{tmp_path}/studies.db"
    spec = curve_study(name="early", seeds=(1, 2))  # two enqueued configs: WAITING trials, never started

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("studies._driver.run_tune", interrupted)
    with pytest.raises(KeyboardInterrupt):
        launch(spec, storage_url=url, trainable=curve_trainable, stream=None)
    assert optuna.get_all_study_names(url) == []


def test_resume_from_another_folder_names_the_launch_folder_of_a_relative_data_file(
    ray_session, curve_study, tmp_path: Path, monkeypatch
):
    from studies._resume import resume

    url = f"sqlite:///{tmp_path}/studies.db"
    (tmp_path / "reviews.csv").write_text("text,label\nfine,1\nawful,0\n")
    spec = curve_study(name="relative", task={"dataset": "reviews.csv"}, budget={"n_trials": 1})
    launch(spec, storage_url=url, trainable=curve_trainable, stream=None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(StudyError, match=rf"run `studies resume relative` from {tmp_path}$"):
        resume("relative", storage_url=url, overrides=["budget.n_trials=2"], trainable=curve_trainable, stream=None)
    monkeypatch.chdir(tmp_path)
    outcome = resume("relative", storage_url=url, overrides=["budget.n_trials=2"], trainable=curve_trainable)
    assert outcome.budget_met


def test_a_resumed_launch_does_not_propose_the_first_launchs_parameters_again(ray_session, curve_study, tmp_path):
    from studies._resume import resume

    url = f"sqlite:///{tmp_path}/studies.db"
    space = {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}}
    spec = curve_study(name="reseeded", search_space=space, budget={"n_trials": 2})
    launch(spec, storage_url=url, trainable=curve_trainable, stream=None)
    resume("reseeded", storage_url=url, overrides=["budget.n_trials=4"], trainable=curve_trainable, stream=None)
    rates = [t.params["learning_rate"] for t in optuna.load_study(study_name="reseeded", storage=url).trials]
    assert len(rates) == 4 and len(set(rates)) == 4  # a re-seeded random sampler would repeat trials 0 and 1


def test_resume_on_a_store_that_does_not_exist_creates_nothing(tmp_path: Path):
    from studies import StorageError
    from studies._resume import resume

    missing = tmp_path / "typo" / "studies.db"
    with pytest.raises(StorageError, match="no study store at"):
        resume("anything", storage_url=f"sqlite:///{missing}", stream=None)
    assert not (tmp_path / "typo").exists()


def test_orphans_are_queued_again_only_when_they_had_started(tmp_path: Path):
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    from storage import LeaseBook
    from studies._store import reconcile_orphans

    url = f"sqlite:///{tmp_path}/studies.db"
    study = optuna.create_study(study_name="orphans", storage=url)
    space = {"learning_rate": FloatDistribution(1e-5, 1e-3, log=True)}
    started = study.ask(space)  # the bridge sets ray_trial_id once the sampler has chosen every parameter
    started.set_user_attr("ray_trial_id", "abc_00001")
    study.ask(space)  # its launcher was killed before the trial reached Ray
    study.ask()  # ... or before any parameter was chosen
    book = LeaseBook(url)
    try:
        assert reconcile_orphans(study, book, stale_after=60) == [0, 1, 2]
    finally:
        book.close()
    queued = study.get_trials(states=(TrialState.WAITING,))
    assert [(t.user_attrs["retry_of"], t.system_attrs["fixed_params"]) for t in queued] == [(0, started.params)]
