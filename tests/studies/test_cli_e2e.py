"""The ``studies`` command end to end: real Ray, real Optuna store, real HF Trainer (tiny-bert)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from studies._records import study_record

TINY = [
    "task.train_size=240",
    "task.eval_size=80",
    "task.test_size=80",
    "task.max_length=32",
    "trainer.num_train_epochs=2",
    "budget.n_trials=2",
    "budget.max_concurrent=2",
    "search_space.learning_rate.low=0.001",
]


def studies(*args, cwd, env_extra=None, timeout=600):
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    env.pop("STUDIES_STORAGE", None)
    cmd = [sys.executable, "-m", "studies._cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def sets(items):
    return [arg for item in items for arg in ("--set", item)]


@pytest.mark.slow
def test_launch_quickstart_end_to_end(tmp_path: Path):
    run = studies("launch", "quickstart", *sets(TINY), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "promoted trial" in run.stderr and "finished 2/2" in run.stderr

    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{tmp_path}/studies.db")
    trials = study.get_trials()
    assert len(trials) == 2
    for t in trials:
        assert t.state == TrialState.COMPLETE
        assert sorted(t.intermediate_values) == [1, 2]  # one per epoch, the last included
        assert set(t.params) == {"learning_rate", "warmup_ratio", "weight_decay", "per_device_train_batch_size"}
        assert t.user_attrs["wandb_run_id"] and t.user_attrs["best_model_dir"]
    # retention.keep_best 1: only the best trial's model folder is kept
    kept = [t.number for t in trials if Path(t.user_attrs["best_model_dir"]).is_dir()]
    assert kept == [study.best_trial.number]
    assert study_record(study, "spec")["name"] == "quickstart" and study.user_attrs["spec_hash"]

    model_dir = tmp_path / "models" / "quickstart"
    record = json.loads((model_dir / "promotion.json").read_text())
    assert record["trial"] == study.best_trial.number
    assert record["params"] == study.best_trial.params
    assert set(record["test"]) >= {"accuracy", "f1", "eval_loss"}
    assert record["base_model"] == "tiny-bert" and record["dataset"] == "synthetic"
    card = (model_dir / "README.md").read_text()
    assert "from_pretrained" in card and "| accuracy |" in card

    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    out = pipeline("text-classification", model=model, tokenizer=tokenizer)(["the acting was superb", "a dull plot"])
    assert {o["label"] for o in out} <= {"negative", "positive"}

    offline_runs = list((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    names = {p.name.rsplit("-", 1)[-1] for p in offline_runs}
    assert len(offline_runs) >= 3  # two trials and the promotion
    assert any("promotion" in n for n in names)

    status = studies("status", "quickstart", cwd=tmp_path)
    assert status.returncode == 0 and "COMPLETE" in status.stdout and "promoted: trial" in status.stdout
    listing = studies("list", cwd=tmp_path)
    assert listing.returncode == 0 and "quickstart" in listing.stdout

    # The budget is met: a second launch starts nothing, and the best trial's model is already promoted.
    promotions = len(list((tmp_path / "wandb" / "wandb").glob("offline-run-*-promotion")))
    again = studies("launch", "quickstart", *sets(TINY), cwd=tmp_path)
    assert again.returncode == 0 and "started 0 trials" in again.stdout
    assert "already promoted" in again.stderr and "promoted trial" not in again.stderr
    assert len(list((tmp_path / "wandb" / "wandb").glob("offline-run-*-promotion"))) == promotions

    # `studies promote` rebuilds a deleted model directory from the store alone.
    import shutil

    shutil.rmtree(model_dir)
    promoted = studies("promote", "quickstart", cwd=tmp_path)
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads((model_dir / "promotion.json").read_text())["trial"] == study.best_trial.number


@pytest.mark.slow
def test_sigkilled_launch_then_resume_promotes_the_best_trial(tmp_path: Path):
    """The real CLI path: kill `studies launch` mid-study, `studies resume` finishes and promotes."""
    import signal
    import time

    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    env.pop("STUDIES_STORAGE", None)
    args = [
        sys.executable,
        "-m",
        "studies._cli",
        "launch",
        "quickstart",
        "--quiet",
        *sets([*TINY, "budget.n_trials=3"]),
    ]
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"sqlite:///{tmp_path}/studies.db"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            try:
                states = [t.state for t in optuna.load_study(study_name="quickstart", storage=url).get_trials()]
            except Exception:  # the study does not exist yet
                states = []
            if (TrialState.COMPLETE in states and TrialState.RUNNING in states) or len(states) >= 3:
                break
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    resumed = studies("resume", "quickstart", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    study = optuna.load_study(study_name="quickstart", storage=url)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 3
    assert not study.get_trials(states=(TrialState.RUNNING,))
    for t in study.get_trials(states=(TrialState.FAIL,)):
        assert t.user_attrs["fail_reason"] == "interrupted"
    record = json.loads((tmp_path / "models" / "quickstart" / "promotion.json").read_text())
    assert record["trial"] == study.best_trial.number and record["params"] == study.best_trial.params


BAD = {
    "unknown key": (["--set", "budget.n_trail=2"], "budget: unknown key 'n_trail'; did you mean 'n_trials'?"),
    "low > high": (
        ["--set", "search_space.learning_rate.low=0.1"],
        "search_space.params.learning_rate: low (0.1) must be <= high",
    ),
    "unknown sampler": (["--set", "sampler.name=tpx"], "sampler.name 'tpx' is unknown: choose one of"),
    "missing data file": (["--set", "task.dataset=missing/reviews.csv"], "missing/reviews.csv"),
    "wrong column": (["--set", "task.dataset=reviews.csv", "--set", "task.text_column=txt"], "task.text_column"),
    # Ray retries an address nothing listens on without end: the launch must not hang.
    "unreachable ray": (["--ray-address", "127.0.0.1:1"], "Ray cluster at 127.0.0.1:1: nothing answers"),
    "malformed ray address": (["--ray-address", "headnode"], "--ray-address 'headnode' is not HOST:PORT"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_specs_fail_in_one_line_with_exit_2_and_leave_no_study(tmp_path: Path, case):
    (tmp_path / "reviews.csv").write_text("text,label\nfine film,1\nawful film,0\n" * 10)
    args, needle = BAD[case]
    run = studies("launch", "quickstart", *args, cwd=tmp_path, timeout=300)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert needle in lines[0]
    db = tmp_path / "studies.db"
    if db.exists():
        assert optuna.get_all_study_summaries(f"sqlite:///{db}") == []


def test_unreachable_storage_is_one_line_without_the_password(tmp_path: Path):
    run = studies("list", "--storage", "postgresql://postgres:hunter2@127.0.0.1:1/test", cwd=tmp_path, timeout=120)
    assert run.returncode == 2
    assert "hunter2" not in run.stderr + run.stdout
    assert run.stderr.startswith("error: cannot open storage postgresql://postgres:***@127.0.0.1:1/test")


@pytest.mark.slow
def test_a_diverging_trial_is_fail_diverged_and_the_study_ends_cleanly(tmp_path: Path):
    huge = "{learning_rate: 1.0e+6, warmup_ratio: 0.0, weight_decay: 0.0, per_device_train_batch_size: 16}"
    args = sets(
        [
            *TINY,
            "budget.n_trials=1",
            "budget.max_concurrent=1",
            "budget.count_failed=true",
            "search_space.learning_rate.high=1.0e+6",
            f"enqueue=[{huge}]",
        ]
    )
    run = studies("launch", "quickstart", *args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{tmp_path}/studies.db")
    (trial,) = study.get_trials()
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "diverged"
    assert "retries" not in trial.user_attrs  # an error that would repeat is not retried (that is for dead workers)
    assert "promoted" not in run.stderr  # nothing COMPLETE, nothing promoted
