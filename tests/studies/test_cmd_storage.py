"""``studies storage check`` and ``studies storage copy`` on real stores."""

from __future__ import annotations

import os
import time

import optuna
import pytest
from optuna.trial import TrialState

from studies import launch
from studies._cli import main
from studies._resume import resume
from studies.testing import curve_trainable


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_check_says_reachable_driver_schema_and_study_count(kind, request, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/s.db" if kind == "sqlite" else request.getfixturevalue("postgres_url")
    name = f"checked-{os.getpid()}-{time.time_ns() % 10**6}"
    optuna.create_study(study_name=name, storage=optuna.storages.RDBStorage(_with_driver(url)))
    code, out, err = run(capsys, "storage", "check", url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("store ") and ": reachable (" in lines[0]
    assert lines[1].startswith("schema: Optuna ") and lines[1].endswith("(current)")
    count = int(lines[2].removeprefix("studies: "))
    assert count >= 1


def _with_driver(url: str) -> str:
    from storage import engine_url

    return engine_url(url)


def test_check_reports_an_old_schema_with_the_upgrade_command(tmp_path, capsys):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path}/old.db"
    optuna.storages.RDBStorage(url).engine.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # what an older Optuna left behind
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'v3.0.0.d'"))
    engine.dispose()
    code, out, _ = run(capsys, "storage", "check", url)
    assert code == 0
    assert "schema: Optuna v3.0.0.d, older than" in out and f"optuna storage upgrade --storage '{url}'" in out


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql+mysqldb://u:secret@127.0.0.1/db", "needs the MySQLdb driver: pip install 'hpo-studies[mysql]'"),
        ("postgresql+psycopg2://u:secret@127.0.0.1:1/db", "is not reachable"),
        ("oracle://u:secret@host/db", "is not supported"),
    ],
)
def test_check_fails_in_one_line_without_the_password(url, expected, capsys):
    code, out, err = run(capsys, "storage", "check", url)
    assert code == 2 and out == ""
    assert expected in err and "secret" not in err and len(err.strip().splitlines()) == 1


def test_check_of_a_missing_sqlite_file_creates_nothing(tmp_path, capsys):
    code, _, err = run(capsys, "storage", "check", f"sqlite:///{tmp_path}/nope.db")
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.slow
@pytest.mark.postgres
def test_copy_sqlite_to_postgres_then_resume_the_copy(ray_session, curve_study, postgres_url, tmp_path, capsys):
    source = f"sqlite:///{tmp_path}/quick.db"
    name = f"moved-{os.getpid()}-{time.time_ns() % 10**6}"
    spec = curve_study(name=name, budget={"n_trials": 2})
    launch(spec, storage_url=source, trainable=curve_trainable, context={}, stream=None)

    code, out, err = run(capsys, "storage", "copy", source, postgres_url, "--study", name)
    assert code == 0, err
    assert out.strip() == f"copied study {name} to {postgres_url}"
    original = optuna.load_study(study_name=name, storage=source)
    copy = optuna.load_study(study_name=name, storage=_with_driver(postgres_url))
    assert copy.user_attrs == original.user_attrs  # spec, spec_hash, uid, launch_dir
    assert [(t.params, t.values, t.intermediate_values) for t in copy.trials] == [
        (t.params, t.values, t.intermediate_values) for t in original.trials
    ]

    code, _, err = run(capsys, "storage", "copy", source, postgres_url, "--study", name)
    assert code == 2 and "already exists" in err and "refuses to overwrite" in err

    out = resume(
        name,
        storage_url=postgres_url,
        overrides=["budget.n_trials=3"],
        trainable=curve_trainable,
        context={},
        stream=None,
    )
    assert out.started == 1 and out.budget_met
    moved = optuna.load_study(study_name=name, storage=_with_driver(postgres_url)).trials
    assert [t.state for t in moved] == [TrialState.COMPLETE] * 3
    assert len(optuna.load_study(study_name=name, storage=source).trials) == 2  # the source is untouched


def test_copy_of_a_missing_study_writes_nothing(tmp_path, capsys):
    source, target = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    optuna.create_study(study_name="there", storage=source)
    code, _, err = run(capsys, "storage", "copy", source, target, "--study", "absent")
    assert code == 2 and "no study named 'absent'" in err
    assert not (tmp_path / "b.db").exists()
