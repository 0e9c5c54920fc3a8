"""A storage password and a wandb key planted in a real study never come out again.

One quickstart study runs on PostgreSQL with a password in its URL (the test
server trusts local connections, so any password opens it) and a fake
``WANDB_API_KEY`` (wandb offline); then every command that reads the record
runs. Neither secret may appear in any file under the folders the study wrote
(walked whole, binary files too, so files that later features add are covered),
in any printed line, or in any study or trial attribute (user and system
attributes, where notes live). Commands that other features add are listed in
:data:`HOOKS` and run when the CLI has them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

PASSWORD = f"pw{uuid.uuid4().hex[:16]}"
WANDB_KEY = f"{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"  # 40 characters, like a real key
SECRETS = (PASSWORD, WANDB_KEY)
STUDY = "secrets-quickstart"
TINY = [
    "task.train_size=120",
    "task.eval_size=40",
    "task.test_size=40",
    "task.max_length=24",
    "trainer.num_train_epochs=1",
    "budget.n_trials=2",
    "budget.max_concurrent=2",
    "wandb.mode=offline",
]
# Commands that read the record, run when the CLI has them ({url}, {study} and {tmp} are filled in).
HOOKS: list[list[str]] = [
    ["status", "{study}", "--storage", "{url}"],
    ["status", "{study}", "--json", "--storage", "{url}"],
    ["list", "--json", "--storage", "{url}"],
    ["promote", "{study}", "--storage", "{url}"],
    ["report", "{study}", "--storage", "{url}", "--out", "{tmp}/report"],
    ["export", "{tmp}/models/{study}", "--format", "onnx", "--quantize", "int8"],
    ["predict", "{tmp}/models/{study}", "a fine film", "--backend", "onnx-int8"],
]


def _commands() -> set[str]:
    from studies._cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def _studies(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studies._cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _leaks(data: bytes | str) -> list[str]:
    blob = data if isinstance(data, bytes) else data.encode()
    return [s for s in SECRETS if s.encode() in blob]


@pytest.mark.slow
@pytest.mark.postgres
def test_secrets_stay_out_of_files_output_and_attributes(tmp_path: Path, postgres_url: str) -> None:
    import optuna
    import sqlalchemy as sa

    url = sa.make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    assert PASSWORD in url
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("STUDIES_STORAGE", "WANDB_MODE", "RAY_ADDRESS")},
        "PYTHONPATH": os.pathsep.join(p for p in (str(Path.cwd()), os.environ.get("PYTHONPATH", "")) if p),
        "WANDB_API_KEY": WANDB_KEY,
        "HF_HUB_OFFLINE": "1",
        # wandb's own folders in the test's folder too, so every file it writes is searched.
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
        "WANDB_ARTIFACT_DIR": str(tmp_path / "wandb-artifacts"),
    }
    sets = [arg for item in [*TINY, f"storage={url}"] for arg in ("--set", item)]
    printed: list[str] = []
    launched = _studies(["launch", "quickstart", "--new-name", STUDY, *sets, "--storage", url], tmp_path, env)
    printed += [launched.stdout, launched.stderr]
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert (tmp_path / "models" / STUDY / "promotion.json").is_file()

    available = _commands()
    ran = []
    for hook in HOOKS:
        if hook[0] not in available:
            continue
        args = [a.format(url=url, study=STUDY, tmp=tmp_path) for a in hook]
        done = _studies(args, tmp_path, env)
        printed += [done.stdout, done.stderr]
        assert done.returncode == 0, (hook[0], done.stderr[-2000:])
        ran.append(hook[0])
    assert {"status", "list", "promote", "report", "export", "predict"} <= set(ran)

    # The scoring service's answers (its OpenAPI schema, metadata, metrics and a score).
    from fastapi.testclient import TestClient

    from studies.serve._app import create_app
    from studies.serve._model import Scorer

    with TestClient(create_app(Scorer(tmp_path / "models" / STUDY))) as client:
        for path in ("/openapi.json", "/metadata", "/metrics", "/health"):
            answer = client.get(path)
            assert answer.status_code == 200, path
            printed.append(answer.text)
        scored = client.post("/score", json={"text": "a fine film"})
        assert scored.status_code == 200
        printed.append(scored.text)

    # Nothing printed by any command.
    leaked = {s for text in printed for s in _leaks(text)}
    assert not leaked, f"printed: {leaked}"

    # No file anywhere under the folders the study wrote (work, models, wandb, exports).
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(files) > 20 and any(p.suffix == ".wandb" for p in files), sorted(map(str, files))[:50]
    leaking_files = [str(p.relative_to(tmp_path)) for p in files if _leaks(p.read_bytes())]
    assert not leaking_files, leaking_files

    # No study or trial attribute, user or system (optuna-dashboard keeps notes in system attributes).
    from storage import open_storage
    from studies._records import study_record

    storage = open_storage(postgres_url, create=False)
    try:
        for summary in optuna.get_all_study_summaries(storage):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            study_id = storage.get_study_id_from_name(summary.study_name)
            record = {
                "user": storage.get_study_user_attrs(study_id),
                "system": storage.get_study_system_attrs(study_id),
                "trials": [
                    {
                        "user": storage.get_trial_user_attrs(t._trial_id),
                        "system": storage.get_trial_system_attrs(t._trial_id),
                        "params": t.params,
                    }
                    for t in study.get_trials()
                ],
            }
            assert record["trials"], summary.study_name
            text = json.dumps(record, default=str)
            assert not _leaks(text), f"study {summary.study_name} attributes hold a secret"
            # The URL is kept in the stored spec, redacted.
            assert "***" in json.dumps(study_record(study, "spec")["storage"])
    finally:
        engine = getattr(storage, "engine", None)
        if engine is not None:
            engine.dispose()
