"""Resume and crash tolerance with real processes, real Ray and a real Optuna store."""

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from storage import open_storage
from studies import ConflictError, StudyError, launch
from studies._records import study_record
from studies._resume import resume
from studies.testing import curve_trainable

pytestmark = pytest.mark.slow

DRIVER = """
import json, sys
from studies import validate_spec
from studies import launch
from studies.testing import curve_trainable
raw, ctx, url = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
launch(validate_spec(raw), storage_url=url, trainable=curve_trainable, context=ctx, stream=None)
"""


def start_driver(tmp_path: Path, spec, context, url):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    raw = spec.model_dump(mode="json")
    return subprocess.Popen(
        [sys.executable, str(script), json.dumps(raw), json.dumps(context), url],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "driver.log", "w"),
        start_new_session=True,
    )


def wait_for(predicate, timeout=90.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def trials(name, url, states=None):
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url)).get_trials(deepcopy=True, states=states)
    except KeyError:
        return []


def kill_group(proc):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_driver_sigkill_then_resume_finishes_exactly_the_budget(ray_session, curve_study, tmp_path, seed):
    url = f"sqlite:///{tmp_path}/studies.db"
    spec = curve_study(name="crash", budget={"n_trials": 6, "max_concurrent": 2}, sampler={"name": "tpe", "seed": seed})
    context = {"step_seconds": 0.5, "steps": 4}
    driver = start_driver(tmp_path, spec, context, url)
    try:
        wait_for(lambda: len(trials("crash", url, (TrialState.RUNNING, TrialState.COMPLETE))) >= 1)
        time.sleep(random.Random(seed).uniform(0.0, 6.0))
    finally:
        kill_group(driver)  # SIGKILL: no cleanup code of the driver runs

    before = {t.number: t for t in trials("crash", url)}
    complete_before = {n: t for n, t in before.items() if t.state == TrialState.COMPLETE}
    running_before = {n: t for n, t in before.items() if t.state == TrialState.RUNNING}

    out = resume("crash", storage_url=url, trainable=curve_trainable, context=context, stream=None)
    assert out.budget_met

    after = {t.number: t for t in trials("crash", url)}
    finished = [t for t in after.values() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 6
    assert not [t for t in after.values() if t.state == TrialState.RUNNING]
    for number, t in complete_before.items():
        assert after[number].state == TrialState.COMPLETE
        assert after[number].values == t.values
        assert after[number].intermediate_values == t.intermediate_values
    for number, t in running_before.items():
        assert after[number].state == TrialState.FAIL
        assert after[number].user_attrs["fail_reason"] == "interrupted"
        reruns = [r for r in after.values() if r.user_attrs.get("retry_of") == number]
        if "ray_trial_id" not in t.user_attrs:  # killed while its parameters were sampled: it never ran
            assert reruns == []
            continue
        assert len(reruns) == 1 and reruns[0].params == t.params
        assert reruns[0].state == TrialState.COMPLETE


def test_a_killed_worker_is_retried_from_its_checkpoint(ray_session, curve_study, tmp_path):
    log = tmp_path / "events.jsonl"
    spec = curve_study(name="worker", seeds=[0, 1], budget={"n_trials": 2, "max_failures": 1})
    context = {"kill": {"0": 3}, "marker_dir": str(tmp_path), "event_log": str(log), "steps": 4}
    launch(spec, storage_url="sqlite:///studies.db", trainable=curve_trainable, context=context, stream=None)
    study_trials = {t.params["seed"]: t for t in trials("worker", "sqlite:///studies.db")}
    killed = study_trials[0]
    assert killed.state == TrialState.COMPLETE
    assert sorted(killed.intermediate_values) == [1, 2, 3, 4]
    assert killed.user_attrs["retries"] == 1
    starts = [
        e
        for e in map(json.loads, log.read_text().splitlines())
        if e["event"] == "start" and e["trial"] == killed.number
    ]
    # First attempt from step 1; the retry continued after the step-2 checkpoint.
    assert [e["from_step"] for e in starts] == [1, 3]
    assert starts[0]["pid"] != starts[1]["pid"]


def test_a_worker_that_keeps_dying_fails_with_its_reason_and_the_study_goes_on(ray_session, curve_study, tmp_path):
    spec = curve_study(name="dies", seeds=[0, 1], budget={"n_trials": 1, "max_failures": 0})
    context = {"kill": {"0": 2}, "marker_dir": str(tmp_path), "steps": 3}
    launch(spec, storage_url="sqlite:///studies.db", trainable=curve_trainable, context=context, stream=None)
    by_seed = {t.params["seed"]: t for t in trials("dies", "sqlite:///studies.db")}
    assert by_seed[0].state == TrialState.FAIL
    assert by_seed[0].user_attrs["fail_reason"] == "worker_died"
    assert by_seed[1].state == TrialState.COMPLETE


def test_resume_refuses_a_changed_search_and_records_a_changed_budget(ray_session, curve_study):
    url = "sqlite:///studies.db"
    launch(
        curve_study(name="r", budget={"n_trials": 2}),
        storage_url=url,
        trainable=curve_trainable,
        context={},
        stream=None,
    )
    with pytest.raises(ConflictError, match="may change only budget"):
        resume("r", storage_url=url, overrides=["search_space.seed.high=5"], trainable=curve_trainable, context={})
    out = resume(
        "r", storage_url=url, overrides=["budget.n_trials=3"], trainable=curve_trainable, context={}, stream=None
    )
    assert out.started == 1 and out.budget_met
    study = optuna.load_study(study_name="r", storage=url)
    assert study_record(study, "spec")["budget"]["n_trials"] == 3
    assert study_record(study, "spec_changes")[-1]["changes"]["budget"]["from"]["n_trials"] == 2
    with pytest.raises(ConflictError, match="exists with a different search_space"):
        launch(
            curve_study(name="r", search_space={"seed": {"type": "int", "low": 0, "high": 5}}),
            storage_url=url,
            trainable=curve_trainable,
            context={},
            stream=None,
        )


@pytest.mark.parametrize(
    "store",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_two_joined_launchers_start_exactly_the_budget(ray_session, curve_study, tmp_path, request, store):
    if store != "sqlite":
        url = request.getfixturevalue(f"{store}_url")
        name = f"joined-{os.getpid()}-{int(time.time())}"
    else:
        url, name = f"sqlite:///{tmp_path}/studies.db", "joined"
    spec = curve_study(name=name, seeds=[7, 8], budget={"n_trials": 8, "max_concurrent": 2})
    context = {"step_seconds": 0.4, "steps": 3}
    driver = start_driver(tmp_path, spec, context, url)
    try:
        wait_for(lambda: len(trials(name, url, (TrialState.RUNNING,))) >= 1)
        with pytest.raises(ConflictError, match="add --join"):
            launch(spec, storage_url=url, trainable=curve_trainable, context=context, stream=None)
        mine = launch(spec, storage_url=url, trainable=curve_trainable, context=context, stream=None, join=True)
        assert driver.wait(timeout=120) == 0
    finally:
        if driver.poll() is None:
            kill_group(driver)
    all_trials = trials(name, url)
    assert len(all_trials) == 8
    assert all(t.state == TrialState.COMPLETE for t in all_trials)
    assert len({t.user_attrs["launcher_id"] for t in all_trials}) == 2
    assert 1 <= mine.started < 8
    seeds = [t.params["seed"] for t in all_trials]
    assert seeds.count(7) == 1 and seeds.count(8) == 1


def test_ctrl_c_records_the_running_trials_as_interrupted_and_queues_them_again(curve_study, tmp_path):
    url = f"sqlite:///{tmp_path}/studies.db"
    spec = curve_study(name="ctrlc", budget={"n_trials": 4, "max_concurrent": 2})
    driver = start_driver(tmp_path, spec, {"step_seconds": 1.0, "steps": 30}, url)
    try:
        wait_for(lambda: sum(bool(t.intermediate_values) for t in trials("ctrlc", url)) >= 2, timeout=120)
        os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        code = driver.wait(timeout=120)
    finally:
        kill_group(driver)
    assert code != 0  # the launch ends with KeyboardInterrupt, which the CLI turns into exit 130
    ended = trials("ctrlc", url)
    assert not [t.number for t in ended if t.state == TrialState.RUNNING]
    interrupted = [t for t in ended if t.state == TrialState.FAIL]
    assert len(interrupted) == 2 and all(t.user_attrs["fail_reason"] == "interrupted" for t in interrupted)
    assert all(t.intermediate_values for t in interrupted)  # what they reported is kept
    queued = sorted(t.user_attrs["retry_of"] for t in ended if t.state == TrialState.WAITING)
    assert queued == sorted(t.number for t in interrupted)


def test_a_timeout_records_the_running_trials_as_interrupted(ray_session, curve_study, tmp_path):
    url = f"sqlite:///{tmp_path}/studies.db"
    spec = curve_study(name="timed", budget={"n_trials": 4, "max_concurrent": 2, "timeout": 6})
    outcome = launch(spec, storage_url=url, trainable=curve_trainable, context={"step_seconds": 1.0, "steps": 30})
    assert not outcome.budget_met
    ended = trials("timed", url)
    assert not [t.number for t in ended if t.state == TrialState.RUNNING]
    interrupted = [t for t in ended if t.state == TrialState.FAIL]
    assert len(interrupted) == 2 and all(t.user_attrs["fail_reason"] == "interrupted" for t in interrupted)
    assert len([t for t in ended if t.state == TrialState.WAITING]) == 2


def test_a_launch_stops_when_trials_keep_failing(ray_session, curve_study, tmp_path):
    url = f"sqlite:///{tmp_path}/studies.db"
    seeds = tuple(range(1, 9))
    spec = curve_study(
        name="failing", seeds=seeds, budget={"n_trials": 8, "max_failures": 0, "max_consecutive_failures": 3}
    )
    context = {"fail": {str(s): 1 for s in seeds}}
    with pytest.raises(StudyError, match=r"stopped: 3 trials in a row failed \(trial 2, error: ValueError: crafted"):
        launch(spec, storage_url=url, trainable=curve_trainable, context=context, stream=None)
    ended = trials("failing", url)
    assert [t.state for t in ended if t.state != TrialState.WAITING] == [TrialState.FAIL] * 3
    assert optuna.load_study(study_name="failing", storage=url)  # the study and its record stay


def test_a_success_resets_the_count_of_failures_in_a_row(ray_session, curve_study, tmp_path):
    url = f"sqlite:///{tmp_path}/studies.db"
    seeds = (1, 2, 3, 4, 5, 6)
    spec = curve_study(
        name="flaky", seeds=seeds, budget={"n_trials": 3, "max_failures": 0, "max_consecutive_failures": 2}
    )
    context = {"fail": {"1": 1, "3": 1, "5": 1}}  # fail, succeed, fail, succeed, fail, succeed
    outcome = launch(spec, storage_url=url, trainable=curve_trainable, context=context, stream=None)
    assert outcome.budget_met and outcome.finished == {"COMPLETE": 3, "PRUNED": 0, "FAIL": 3}
