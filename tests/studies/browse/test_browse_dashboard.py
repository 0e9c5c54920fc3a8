"""``studies dashboard``: a multi-threaded server that reads a store while another process writes it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import optuna
import pytest

from storage import open_storage

WRITER = """
import sys, time, optuna
from optuna_dashboard import save_note
from storage import open_storage
study = optuna.load_study(study_name=sys.argv[2], storage=open_storage(sys.argv[1]))
for i in range(int(sys.argv[3])):
    trial = study.ask()
    x = trial.suggest_float("x", 0, 1)
    for step in range(1, 4):
        trial.report(x * step, step)
    save_note(trial, f"note of trial {trial.number}")
    study.tell(trial, x)
    save_note(study, f"{i + 1} trials written")
    time.sleep(0.4)  # slower than a round of reads, so the reads see the study grow
"""


def read_while_writing(url: str, cwd, dashboard, n: int = 8) -> None:
    name = f"written-{time.monotonic_ns()}"
    optuna.create_study(study_name=name, storage=open_storage(url))
    board = dashboard(url, cwd)
    summaries = json.loads(board.get("/api/studies"))["study_summaries"]
    study_id = next(s["study_id"] for s in summaries if s["study_name"] == name)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, name, str(n)], stderr=subprocess.PIPE, text=True)
    seen = []

    def poll(_: int) -> tuple[int, str]:
        detail = json.loads(board.get(f"/api/studies/{study_id}"))
        return len(detail["trials"]), detail["note"]["body"]

    with ThreadPoolExecutor(3) as pool:  # three browsers at once
        while writer.poll() is None:
            seen.append(list(pool.map(poll, range(3))))
            time.sleep(0.05)
    assert writer.wait() == 0, writer.stderr.read()
    counts = [max(count for count, _ in round_) for round_ in seen]
    assert counts == sorted(counts) and len(set(counts)) > 2, f"the reads did not follow the writes: {counts}"
    notes = [max(int(note.split()[0]) if note else 0 for _, note in round_) for round_ in seen]
    assert notes == sorted(notes), f"the study note went back in time: {notes}"
    detail = json.loads(board.get(f"/api/studies/{study_id}"))
    assert len(detail["trials"]) == n and detail["note"]["body"] == f"{n} trials written"
    assert [t["note"]["body"] for t in detail["trials"]] == [f"note of trial {i}" for i in range(n)]
    board.stop()
    assert "locked" not in board.output, board.output


def test_the_dashboard_reads_a_sqlite_store_while_a_study_writes_it(tmp_path, dashboard):
    read_while_writing(f"sqlite:///{tmp_path}/studies.db", tmp_path, dashboard)


@pytest.mark.postgres
def test_the_dashboard_reads_a_postgresql_store_while_a_study_writes_it(postgres_url, tmp_path, dashboard):
    read_while_writing(postgres_url, tmp_path, dashboard)


def test_the_dashboard_listens_on_loopback_by_default(tmp_path, dashboard):
    url = f"sqlite:///{tmp_path}/studies.db"
    optuna.create_study(study_name="s", storage=url)
    board = dashboard(url, tmp_path)
    import psutil

    (listening,) = [c for c in psutil.Process(board.proc.pid).net_connections() if c.status == "LISTEN"]
    assert listening.laddr.ip == "127.0.0.1" and listening.laddr.port == board.port


@pytest.mark.slow
def test_the_dashboard_serves_the_quickstart_artifacts(quickstart, dashboard):
    board = dashboard(quickstart.url, quickstart.root)
    (summary,) = json.loads(board.get("/api/studies"))["study_summaries"]
    detail = json.loads(board.get(f"/api/studies/{summary['study_id']}"))
    files = {a["filename"]: a for a in detail["artifacts"]}
    card = board.get(f"/artifacts/{summary['study_id']}/{files['README.md']['artifact_id']}").decode()
    assert card.startswith("# quickstart: tiny-bert fine-tuned on synthetic")
