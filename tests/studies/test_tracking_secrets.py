"""Storage passwords on the command line stay out of wandb runs (wandb records ``sys.argv``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from studies._tracking import _redacted_argv

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("s3cr3tPW", "0therPW", "p@ss3cr3tPW")

# The promotion's wandb calls, as studies._promote makes them, plus a trial run.
RUNS = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from studies._tracking import TrialRun, wandb_context

    cfg = wandb_context({"project": "secrets", "entity": None, "mode": "offline", "dir": sys.argv[1]}, "uid-1")
    trial = TrialRun.start(cfg, study="small", number=0, params={"learning_rate": 0.1})
    trial.log({"eval_loss": 0.5}, step=1)
    trial.finish()

    model = Path(sys.argv[1]).parent / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    run = TrialRun.promotion(cfg, study="small", config={"trial": 0, "learning_rate": 0.1})
    run.summary({"test_accuracy": 0.9})
    run.log_model(model, name="small-model", metadata={"trial": 0})
    run.finish()
    """
)


def test_a_storage_password_on_the_command_line_reaches_no_wandb_file(tmp_path: Path) -> None:
    script = tmp_path / "runs.py"
    script.write_text(RUNS)
    wandb_dir = tmp_path / "wandb"
    argv = [
        "launch",
        "quickstart",
        "--storage",
        "postgresql://postgres:s3cr3tPW@127.0.0.1:5432/test",
        "--set",
        "storage=postgresql:postgres:0therPW@127.0.0.1/test",
        "--storage=postgresql://postgres:p@ss3cr3tPW@127.0.0.1/test",
    ]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **os.environ,
        "PYTHONPATH": path,
        # wandb's own folders too, so that every file it writes is searched.
        "WANDB_CONFIG_DIR": str(tmp_path / "config"),
        "WANDB_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_DATA_DIR": str(tmp_path / "data"),
        "WANDB_ARTIFACT_DIR": str(tmp_path / "artifacts"),
    }
    env.pop("WANDB_API_KEY", None)
    done = subprocess.run(
        [sys.executable, str(script), str(wandb_dir), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]

    run_files = list(wandb_dir.glob("wandb/offline-run-*-promotion/*.wandb")) + list(
        wandb_dir.glob("wandb/offline-run-*-trial-0/*.wandb")
    )
    assert len(run_files) == 2, sorted(str(p) for p in wandb_dir.rglob("*"))

    searched = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(searched) > len(run_files)
    for file in searched:
        data = file.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret} in {file}"
    for secret in SECRETS:
        assert secret.encode() not in done.stdout + done.stderr
    # The command line is still recorded, with the passwords masked.
    for run_file in run_files:
        assert b"postgres:***@127.0.0.1" in run_file.read_bytes()


def test_redacted_argv_masks_passwords_and_puts_the_real_argv_back(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ["studies", "launch", "x", "--storage", "postgresql://u:s3cr3tPW@h/db", "--set", "storage=pg:u:0therPW@h"]
    monkeypatch.setattr(sys, "argv", real)
    with pytest.raises(RuntimeError), _redacted_argv():
        assert sys.argv == [
            "studies",
            "launch",
            "x",
            "--storage",
            "postgresql://u:***@h/db",
            "--set",
            "storage=pg:u:***@h",
        ]
        raise RuntimeError("wandb.init failed")
    assert sys.argv is real
    assert real[4] == "postgresql://u:s3cr3tPW@h/db"
