"""A real pretrained model (MiniLM-L6, fine-tuned on IMDb reviews): predict, serve, and drift.

Drift: held-out IMDb reviews look like the training inputs; BoolQ passages
(Wikipedia paragraphs) do not, and both the service and ``studies drift`` say so.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import pytest
from serve_http import call

from studies._cli import main
from studies.serve import Scorer


@pytest.fixture(scope="module")
def imdb_held_out(shared_file: Any) -> list[str]:
    """Reviews from the end of the sample, none of which the model was trained or tested on."""
    with shared_file("imdb_sample.csv").open(encoding="utf-8", newline="") as handle:
        return [row["review"] for row in csv.DictReader(handle)][-60:]


@pytest.fixture(scope="module")
def boolq(shared_file: Any) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in shared_file("boolq_dev.jsonl").read_text(encoding="utf-8").splitlines()]
    return random.Random(0).sample(rows, 60)


@pytest.fixture(scope="module")
def server(start_server: Any, minilm_model: Path) -> Any:
    return start_server(str(minilm_model), "--drift-window", "50")


def test_predict_labels_texts_and_pairs_with_minilm(minilm_model: Path, capsys: Any) -> None:
    assert main(["predict", str(minilm_model), "a wonderful, moving film", "dull and far too long"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["a wonderful, moving film", "dull and far too long"]
    assert all(set(r["probabilities"]) == {"negative", "positive"} for r in rows)
    assert main(["predict", str(minilm_model), "is it good?", "--pair", "the film was good"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["text_pair"] == "the film was good" and row["label"] in ("negative", "positive")


def test_the_service_scores_like_the_model_and_reports_drift(
    server: Any, minilm_model: Path, imdb_held_out: list[str], boolq: list[dict[str, Any]]
) -> None:
    scorer = Scorer(minilm_model)
    review = imdb_held_out[0]
    status, answer = call(server, "/score", {"text": review})
    assert status == 200
    assert answer["probabilities"] == pytest.approx(scorer.score([review])[0][0]["probabilities"], abs=1e-4)
    status, answer = call(server, "/score", {"text": boolq[0]["question"], "text_pair": boolq[0]["passage"]})
    assert status == 200 and answer["label"] in ("negative", "positive")

    for start in range(0, 50, 25):
        batch = [{"text": t} for t in imdb_held_out[start : start + 25]]
        assert call(server, "/score", {"inputs": batch})[0] == 200
    drift = call(server, "/metadata")[1]["drift"]
    assert drift["window"] == 50 and drift["drift"] is False, drift

    for start in range(0, 50, 25):
        batch = [{"text": r["passage"]} for r in boolq[start : start + 25]]
        assert call(server, "/score", {"inputs": batch})[0] == 200
    drift = call(server, "/metadata")[1]["drift"]
    assert drift["window"] == 50 and drift["drift"] is True and drift["p_value"] < 1e-3, drift
    _, metrics = call(server, "/metrics")
    gauges = {
        line.split()[0]: float(line.split()[1]) for line in metrics.splitlines() if line.startswith("studies_drift")
    }
    assert gauges["studies_drift_score"] == pytest.approx(drift["score"])
    assert gauges["studies_drift_p_value"] < 1e-3 and gauges["studies_drift_window"] == 50


def test_studies_drift_offline(
    minilm_model: Path, imdb_held_out: list[str], boolq: list[dict[str, Any]], tmp_path: Path, capsys: Any
) -> None:
    same = tmp_path / "reviews.csv"
    with same.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["review"])
        writer.writeheader()
        writer.writerows({"review": t} for t in imdb_held_out[:50])
    other = tmp_path / "passages.jsonl"
    other.write_text("".join(json.dumps({"text": r["passage"]}) + "\n" for r in boolq[:50]), encoding="utf-8")

    assert main(["drift", str(minilm_model), "--file", str(same)]) == 0
    calm = json.loads(capsys.readouterr().out)
    assert calm["drift"] is False and calm["window"] == 50
    assert main(["drift", str(minilm_model), "--file", str(other)]) == 0
    shifted = json.loads(capsys.readouterr().out)
    assert shifted["drift"] is True and shifted["score"] > calm["score"]
