import os

import pytest

from studies import validate_spec


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (each launch would otherwise start its own)."""
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if not ray.is_initialized():
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture
def curve_study(tmp_path, monkeypatch):
    """Build a spec over the ``seed`` parameter, run in ``tmp_path``, wandb disabled."""
    monkeypatch.chdir(tmp_path)

    def build(name="curves", seeds=(), **sections):
        raw = {
            "name": name,
            "search_space": {"seed": {"type": "int", "low": 0, "high": 999}},
            "sampler": {"name": "random", "seed": 0},
            "budget": {"n_trials": len(seeds) or 4, "max_concurrent": 1},
            "resources": {"cpus": 1},
            "wandb": {"mode": "disabled"},
            "enqueue": [{"seed": s} for s in seeds],
            "work_dir": str(tmp_path / "runs"),
        }
        for key, value in sections.items():
            raw[key] = {**raw[key], **value} if isinstance(raw.get(key), dict) and isinstance(value, dict) else value
        return validate_spec(raw)

    return build
