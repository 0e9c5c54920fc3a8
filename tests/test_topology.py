"""The shared stack of docker-compose.yml, run natively: a PostgreSQL store, a Ray
cluster of separate head and worker node processes, a launcher joining it with
``--ray-address``, and ``studies dashboard`` serving the study over HTTP."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from storage import open_storage

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLUSTER_AND_LAUNCH = """
import json, sys
from ray.cluster_utils import Cluster
from studies import validate_spec
from studies import launch
from studies.testing import curve_trainable

url, raw = sys.argv[1], json.loads(sys.argv[2])
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
worker = cluster.add_node(num_cpus=2)
try:
    out = launch(validate_spec(raw), storage_url=url, ray_address=cluster.address,
                 trainable=curve_trainable, context={"steps": 2}, stream=None)
    print(json.dumps({"head": cluster.head_node.node_id, "worker": worker.node_id, "started": out.started}))
finally:
    import ray
    ray.shutdown()
    cluster.shutdown()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_postgres_store_ray_cluster_and_dashboard(postgres_url, tmp_path: Path):
    name = f"topology-{os.getpid()}"
    raw = {
        "name": name,
        "search_space": {"seed": {"type": "int", "low": 0, "high": 99}},
        "sampler": {"name": "random", "seed": 0},
        "budget": {"n_trials": 4, "max_concurrent": 2},
        "wandb": {"mode": "disabled"},
        "work_dir": str(tmp_path / "runs"),
    }
    script = tmp_path / "cluster.py"
    script.write_text(CLUSTER_AND_LAUNCH)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = subprocess.run(
        [sys.executable, str(script), postgres_url, json.dumps(raw)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    nodes = json.loads(run.stdout.strip().splitlines()[-1])
    assert nodes["started"] == 4

    study = optuna.load_study(study_name=name, storage=open_storage(postgres_url))
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    # The head offers no CPUs: every trial ran on the worker node process.
    assert {t.user_attrs["node_id"] for t in trials} == {nodes["worker"]}

    port = free_port()
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "studies._cli", "dashboard", "--storage", postgres_url, "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    body = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        assert body is not None, "the dashboard did not answer"
        names = {s["study_name"] for s in body["study_summaries"]}
        assert name in names
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
