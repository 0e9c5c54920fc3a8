"""Fixtures for the trainers tests: offline hub, a shared preparation cache, one real fine-tuning run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Never reach the Hugging Face hub: set before transformers or datasets is imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

# The fine-tuning run shared by the finetune, resume and evaluate tests: big enough that
# tiny-bert learns the synthetic task within two epochs (about 0.8 accuracy), small enough
# to take a few seconds on one CPU thread.
FINETUNE_TASK = {"train_size": 1500, "eval_size": 300, "test_size": 300}
FINETUNE_SETTINGS = {"num_train_epochs": 2, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 100}
# The trial's params override the settings (the default learning rate suits pretrained models, not tiny-bert).
FINETUNE_PARAMS = {"learning_rate": 1e-3, "warmup_ratio": 0.1}


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    """Run torch on one thread: tiny models gain nothing from more, and a busy machine loses a lot."""
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


@pytest.fixture(scope="session")
def finetune_args() -> dict[str, Any]:
    """The settings and params of the shared fine-tuning run, for tests that repeat part of it."""
    from trainers import TrainerSpec

    return {"settings": TrainerSpec(**FINETUNE_SETTINGS), "params": dict(FINETUNE_PARAMS)}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A preparation cache shared by the whole session (tests that count hits use their own)."""
    return tmp_path_factory.mktemp("prepare-cache")


@pytest.fixture(scope="session")
def synthetic(cache_dir: Path) -> Any:
    """The synthetic task with tiny-bert, prepared once."""
    from trainers import ModelSpec, TaskSpec, prepare

    return prepare(TaskSpec(**FINETUNE_TASK), ModelSpec(), cache_dir)


@pytest.fixture(scope="session")
def trained(synthetic: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One two-epoch trial, with each reported checkpoint persisted as a caller (Ray) would."""
    from trainers import TrainerSpec, finetune

    root = tmp_path_factory.mktemp("trial")
    reports, persisted, seen = [], [], []

    def report(r: Any) -> None:
        seen.append(sorted(p.name for p in r.checkpoint_dir.iterdir()))  # it must exist when reported
        kept = root / "persisted" / f"epoch-{r.step}"
        shutil.copytree(r.checkpoint_dir, kept)
        reports.append(r)
        persisted.append(kept)

    result = finetune(synthetic, TrainerSpec(**FINETUNE_SETTINGS), FINETUNE_PARAMS, root / "out", report=report)
    return {"result": result, "reports": reports, "persisted": persisted, "seen": seen, "root": root}
