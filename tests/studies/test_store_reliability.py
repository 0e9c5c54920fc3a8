"""The shared store stays right when a co-launcher dies and the database drops its connections.

Real processes, real Ray, real Optuna stores (SQLite, the shared PostgreSQL in a
database of this session's own, and a private PostgreSQL cluster that may be
restarted); the trainable is ``studies.testing.curve_trainable``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from storage import LeaseBook, close_storage, engine_url, open_storage
from studies import launch
from studies.testing import curve_trainable

pytestmark = pytest.mark.slow

HEARTBEAT, STALE = 0.5, 4.0

# Launcher A runs in its own process and says it is on another machine, so only its
# heartbeat (on the database's clock) can tell that it died, not its pid.
DRIVER = """
import json, sys, types
import storage._leases as leases
leases.socket = types.SimpleNamespace(gethostname=lambda: "another-host")
from studies import launch, validate_spec
from studies.testing import curve_trainable
raw, ctx, url, address = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
launch(validate_spec(raw), storage_url=url, trainable=curve_trainable, context=ctx, stream=None,
       ray_address=address, join=True)
"""


@pytest.fixture
def short_stale_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import studies._claim as claim

    monkeypatch.setattr(claim, "HEARTBEAT_SECONDS", HEARTBEAT)
    monkeypatch.setattr(claim, "STALE_AFTER_SECONDS", STALE)


def store(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/studies.db" if kind == "sqlite" else request.getfixturevalue(f"{kind}_url")


def all_trials(name: str, url: str) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(engine_url(url))
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=True)
    except KeyError:
        return []
    finally:
        storage.engine.dispose()


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def assert_exact(trials: list[optuna.trial.FrozenTrial], n_trials: int) -> None:
    """``n_trials`` COMPLETE, nothing RUNNING, and every FAIL ``interrupted`` with its params run again."""
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == n_trials
    for failed in (t for t in trials if t.state == TrialState.FAIL):
        assert failed.user_attrs["fail_reason"] == "interrupted"
        reruns = [t for t in trials if t.user_attrs.get("retry_of") == failed.number]
        if "ray_trial_id" in failed.user_attrs:
            assert [(r.state, r.params) for r in reruns] == [(TrialState.COMPLETE, failed.params)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_survivor_of_two_joined_launchers_reruns_the_dead_ones_trial_and_ends(
    ray_session, curve_study, short_stale_limit, tmp_path, request, kind, seed
):
    url = store(request, kind, tmp_path)
    name = f"survive-{kind}-{seed}-{os.getpid()}-{time.time_ns() % 10**6}"
    spec = curve_study(name=name, budget={"n_trials": 4, "max_concurrent": 1}, sampler={"name": "random", "seed": seed})
    context = {"step_seconds": 0.3, "steps": 4}
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "STUDIES_HEARTBEAT_SECONDS": str(HEARTBEAT), "STUDIES_STALE_AFTER_SECONDS": str(STALE)}
    address = ray_session.get_runtime_context().gcs_address
    args = [json.dumps(spec.model_dump(mode="json")), json.dumps(context), url, address]
    with open(tmp_path / "driver.log", "w") as log:
        other = subprocess.Popen(
            [sys.executable, str(script), *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    book = LeaseBook(url)
    killed: dict[str, float | int] = {}

    def kill_while_its_trial_runs() -> None:
        wait_for(lambda: any(x.host == "another-host" for x in book.leases(name)), timeout=90)
        (lease,) = [x for x in book.leases(name) if x.host == "another-host"]
        time.sleep(random.Random(seed).uniform(0.5, 2.0))

        def its_trial_runs() -> bool:
            for t in all_trials(name, url):
                mine = t.state == TrialState.RUNNING and t.user_attrs.get("launcher_id") == lease.launcher_id
                if mine and len(t.intermediate_values) < 3:  # well before its end
                    killed["trial"] = t.number
                    return True
            return False

        wait_for(its_trial_runs, timeout=60)
        os.killpg(other.pid, signal.SIGKILL)
        killed["at"], killed["wall"] = time.monotonic(), time.time()

    killer = threading.Thread(target=kill_while_its_trial_runs, daemon=True)
    try:
        wait_for(lambda: bool(all_trials(name, url)), timeout=90)  # A has opened the study
        killer.start()
        outcome = launch(spec, storage_url=url, trainable=curve_trainable, context=context, stream=None, join=True)
        ended = time.monotonic()
        killer.join(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(other.pid, signal.SIGKILL)
        other.wait(timeout=30)
        book.close()
    assert "at" in killed, (tmp_path / "driver.log").read_text()[-2000:]
    assert outcome.budget_met
    trials = all_trials(name, url)
    assert_exact(trials, 4)
    dead = next(t for t in trials if t.number == killed["trial"])
    assert dead.state == TrialState.FAIL and dead.user_attrs["fail_reason"] == "interrupted"
    # The survivor judged the dead launcher by its heartbeat alone (another host): the orphan is
    # reconciled within the stale limit plus a margin of the kill (one reaper round, 0.5 s, when idle;
    # up to 8.2 s measured on a 2-core machine at load average 40).
    reconciled = dead.datetime_complete.timestamp() - killed["wall"]
    after_kill = ended - killed["at"]
    print(f"orphan reconciled {reconciled:.1f} s, survivor ended {after_kill:.1f} s after the kill (stale {STALE} s)")
    assert reconciled < STALE + 6.0
    assert after_kill < 90  # it ends: the rerun and what was left of the budget, no wait without end


def _terminate(url: str) -> int:
    admin = sa.create_engine(engine_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            database = conn.execute(sa.text("SELECT current_database()")).scalar()
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                ).all()
            )
    finally:
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_study_survives_its_connections_being_terminated_at_random_moments(
    ray_session, curve_study, postgres_url, seed
):
    name = f"terminated-{seed}-{os.getpid()}-{time.time_ns() % 10**6}"
    spec = curve_study(name=name, budget={"n_trials": 4, "max_concurrent": 2}, sampler={"name": "tpe", "seed": seed})
    rng, stop, terminated = random.Random(seed), threading.Event(), []
    close_storage(open_storage(postgres_url))  # the tables exist before two threads look at them

    def terminate_now_and_then() -> None:
        # During the study: once its first trial runs (a store that cannot be opened is a user error).
        wait_for(lambda: bool(all_trials(name, postgres_url)) or stop.is_set(), timeout=120)
        while not stop.wait(rng.uniform(0.2, 1.0)):
            terminated.append(_terminate(postgres_url))

    chaos = threading.Thread(target=terminate_now_and_then, daemon=True)
    chaos.start()
    try:
        outcome = launch(
            spec, storage_url=postgres_url, trainable=curve_trainable, context={"step_seconds": 0.3}, stream=None
        )
    finally:
        stop.set()
        chaos.join(timeout=30)
    assert sum(terminated) >= 3, terminated  # it did cut connections, several times
    assert outcome.budget_met
    trials = all_trials(name, postgres_url)
    assert_exact(trials, 4)
    assert len(trials) == 4  # no trial lost or duplicated: none failed, none left over


@pytest.mark.postgres
def test_a_study_survives_a_server_restart(ray_session, curve_study, private_postgres):
    name = f"restarted-{os.getpid()}"
    spec = curve_study(name=name, budget={"n_trials": 4, "max_concurrent": 2})
    restarted: list[float] = []
    close_storage(open_storage(private_postgres.url))  # the tables exist before two threads look at them

    def restart_once_a_trial_reported() -> None:
        wait_for(lambda: any(t.intermediate_values for t in all_trials(name, private_postgres.url)), timeout=90)
        started = time.monotonic()
        private_postgres.restart()
        restarted.append(time.monotonic() - started)

    thread = threading.Thread(target=restart_once_a_trial_reported, daemon=True)
    thread.start()
    outcome = launch(
        spec, storage_url=private_postgres.url, trainable=curve_trainable, context={"step_seconds": 0.4}, stream=None
    )
    thread.join(timeout=60)
    assert restarted, "the server was not restarted during the study"
    assert outcome.budget_met
    trials = all_trials(name, private_postgres.url)
    assert_exact(trials, 4)
    assert len(trials) == 4


def test_a_grid_study_with_a_failing_point_never_runs_a_point_twice(ray_session, curve_study, tmp_path):
    url = f"sqlite:///{tmp_path}/studies.db"
    spec = curve_study(
        name="grid",
        search_space={"seed": {"type": "int", "low": 0, "high": 3}},
        sampler={"name": "grid"},
        budget={"n_trials": 10, "max_concurrent": 2, "max_failures": 0},
    )
    outcome = launch(spec, storage_url=url, trainable=curve_trainable, context={"fail": {"2": 1}}, stream=None)
    trials = all_trials("grid", url)
    seeds = sorted(t.params["seed"] for t in trials)
    assert seeds == [0, 1, 2, 3]  # every point once, the failed one included
    assert [t.params["seed"] for t in trials if t.state == TrialState.FAIL] == [2]
    assert outcome.budget_met and outcome.started == 4


def test_a_failed_trial_keeps_its_traceback_and_status_shows_why(ray_session, curve_study, tmp_path, capsys):
    from studies._cli import main

    url = f"sqlite:///{tmp_path}/studies.db"
    spec = curve_study(name="tb", seeds=[5], budget={"n_trials": 1, "max_failures": 0, "max_consecutive_failures": 1})
    with pytest.raises(Exception, match="1 trials in a row failed"):
        launch(spec, storage_url=url, trainable=curve_trainable, context={"fail": {"5": 2}}, stream=None)
    (failed,) = [t for t in all_trials("tb", url) if t.state == TrialState.FAIL]
    path = Path(failed.user_attrs["traceback_file"])
    assert path.parent.name == f"trial-{failed.number:04d}" and path.is_file()
    text = path.read_text()
    assert 'File "' in text and "in curve_trainable" in text and "\x1b[" not in text
    assert text.rstrip().endswith("ValueError: crafted failure at step 2")
    capsys.readouterr()
    assert main(["status", "tb", "--storage", url]) == 0
    assert "error: ValueError: crafted failure at step 2" in capsys.readouterr().out


def _connections(url: str) -> int:
    admin = sa.create_engine(engine_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                ).scalar()
            )
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_a_launch_that_fails_early_releases_its_lease_and_connections(ray_session, curve_study, postgres_url):
    name = f"early-{os.getpid()}-{time.time_ns() % 10**6}"
    spec = curve_study(name=name, seeds=[1], budget={"n_trials": 1})
    before = _connections(postgres_url)
    with pytest.raises(Exception) as failed:  # Ray refuses it, after the lease was taken
        launch(spec, storage_url=postgres_url, trainable="not a function", context={}, stream=None)
    assert "Traceback" not in str(failed.value)
    assert _connections(postgres_url) == before  # every pool closed
    # At once, in the same process, without --join: the failed launch holds no lease.
    outcome = launch(spec, storage_url=postgres_url, trainable=curve_trainable, context={}, stream=None)
    assert outcome.budget_met


def test_sqlite_runs_eight_trials_at_once_while_the_dashboard_reads(ray_session, curve_study, tmp_path, caplog):
    import urllib.request
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from optuna_dashboard import wsgi

    from storage import open_storage

    url = f"sqlite:///{tmp_path}/studies.db"
    spec = curve_study(name="busy", budget={"n_trials": 8, "max_concurrent": 8}, resources={"cpus": 0.5})

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, wsgi(open_storage(url)), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop, errors, reads = threading.Event(), [], [0]

    def poll() -> None:
        base = f"http://127.0.0.1:{server.server_port}/api/studies"
        while not stop.is_set():
            try:
                studies = json.loads(urllib.request.urlopen(base, timeout=30).read())["study_summaries"]
                for s in studies:
                    urllib.request.urlopen(f"{base}/{s['study_id']}?after=0", timeout=30).read()
                reads[0] += 1
            except Exception as e:  # any failed read is the finding
                errors.append(repr(e))
            time.sleep(0.2)

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    try:
        outcome = launch(
            spec, storage_url=url, trainable=curve_trainable, context={"step_seconds": 0.3, "steps": 3}, stream=None
        )
    finally:
        stop.set()
        reader.join(timeout=30)
        server.shutdown()
    assert outcome.budget_met
    trials = all_trials("busy", url)
    assert len(trials) == 8 and all(t.state == TrialState.COMPLETE for t in trials)
    # They did run side by side: some trial started before another had finished.
    assert max(t.datetime_start for t in trials) < min(t.datetime_complete for t in trials)
    assert errors == [] and reads[0] > 5
    assert not [r.getMessage() for r in caplog.records if "locked" in r.getMessage()]


def test_a_trial_another_launcher_concluded_is_left_as_it_recorded_it(ray_session, curve_study, tmp_path, caplog):
    url = f"sqlite:///{tmp_path}/studies.db"
    spec = curve_study(name="taken", budget={"n_trials": 2, "max_concurrent": 1})
    close_storage(open_storage(url))
    taken: list[int] = []

    def conclude_it_elsewhere() -> None:
        # What a launcher that judged this one dead does: FAIL(interrupted) and queue the params again.
        def reported() -> bool:
            return any(t.state == TrialState.RUNNING and t.intermediate_values for t in all_trials("taken", url))

        wait_for(reported, timeout=120)
        study = optuna.load_study(study_name="taken", storage=url)
        (trial,) = study.get_trials(states=(TrialState.RUNNING,))
        study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", "interrupted")
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
        taken.append(trial.number)

    thread = threading.Thread(target=conclude_it_elsewhere, daemon=True)
    thread.start()
    outcome = launch(
        spec, storage_url=url, trainable=curve_trainable, context={"step_seconds": 0.5, "steps": 5}, stream=None
    )
    thread.join(timeout=30)
    assert taken and outcome.budget_met
    trials = all_trials("taken", url)
    assert_exact(trials, 2)
    (first,) = [t for t in trials if t.number == taken[0]]
    assert first.state == TrialState.FAIL and "wall_seconds" not in first.user_attrs  # nothing written after it
    assert any("concluded by another launcher" in r.getMessage() for r in caplog.records)
