"""``studies serve`` on the promoted tiny model, over real HTTP: scoring, limits, metrics, the schema."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from serve_http import call

from studies.serve import Scorer

MARKER = "a secret review 7f3c9 that must never reach the log"


@pytest.fixture(scope="module")
def server(start_server: Any, tiny_model: Path) -> Any:
    # A long batching wait makes concurrent requests meet in one forward pass, so the test below can see it.
    return start_server(str(tiny_model), "--max-wait-ms", "50", "--max-items", "8", "--max-body-bytes", "20000")


def test_scores_one_text_a_pair_and_a_batch_as_predict_does(server: Any, tiny_model: Path) -> None:
    scorer = Scorer(tiny_model)
    status, one = call(server, "/score", {"text": "the acting was superb and i loved the ending"})
    assert status == 200 and one["label"] in ("negative", "positive")
    assert one["probabilities"] == pytest.approx(
        scorer.score(["the acting was superb and i loved the ending"])[0][0]["probabilities"], abs=1e-5
    )
    assert sum(one["probabilities"].values()) == pytest.approx(1, abs=1e-4)

    status, pair = call(server, "/score", {"text": "the plot", "text_pair": "was dull and boring"})
    expected = scorer.score(["the plot"], ["was dull and boring"])[0][0]
    assert status == 200 and pair["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-5)

    inputs = [{"text": "a great film"}, {"text": "an awful film", "text_pair": "truly"}, {"text": "boring"}]
    status, batch = call(server, "/score", {"inputs": inputs})
    assert status == 200 and len(batch["results"]) == 3
    alone = call(server, "/score", inputs[1])[1]
    assert batch["results"][1]["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-5)


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server: Any) -> None:
    texts = [f"the film was {w}" for w in ("great", "awful", "superb", "dull", "brilliant", "terrible")] * 2
    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(lambda t: call(server, "/score", {"text": t}), texts))
    sequential = [call(server, "/score", {"text": t})[1] for t in texts]
    assert [a[1]["probabilities"] for a in answers] == [pytest.approx(s["probabilities"], abs=1e-5) for s in sequential]
    _, metrics = call(server, "/metrics")
    # Batches of one are the sequential requests; the concurrent ones met in larger ones.
    assert _metric(metrics, 'studies_batch_size_bucket{le="1.0"}') < _metric(metrics, "studies_batch_size_count")


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"text": ""}, 422, "text"),
        ({"text": "x" * 20_001}, 413, "bytes"),  # the body limit (20 kB) comes before the text limit
        ({"inputs": [{"text": "a"}] * 9}, 422, "inputs"),
        ({"inputs": []}, 422, "inputs"),
        ({"text": "a", "inputs": [{"text": "b"}]}, 422, "either text"),
        ({"txt": "a"}, 422, "txt"),
        ({"text": 5}, 422, "text"),
        ({"inputs": [{"text": "a", "label": 1}]}, 422, "label"),
        ([1, 2], 422, "body"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_what_is_wrong(server: Any, body: Any, status: int, says: str) -> None:
    got, answer = call(server, "/score", body)
    assert got == status, answer
    assert isinstance(answer["detail"], str) and says in answer["detail"]


def test_malformed_and_oversized_bodies_are_refused_with_a_message(server: Any) -> None:
    status, answer = call(server, "/score", raw=b'{"text": "unterminated')
    assert status == 422 and "JSON" in answer["detail"]
    status, answer = call(server, "/score", raw=b"x" * 50_000)
    assert status == 413 and "20000 bytes" in answer["detail"]


def test_metadata_has_the_model_cards_facts_and_the_drift(server: Any, tiny_model: Path) -> None:
    record = json.loads((tiny_model / "promotion.json").read_text())
    status, meta = call(server, "/metadata")
    assert status == 200
    assert meta["study"] == "tiny-serve" and meta["trial"] == record["trial"] and meta["base_model"] == "tiny-bert"
    assert meta["params"] == record["params"] and meta["test"] == pytest.approx(record["test"])
    assert meta["validation"]["accuracy"] == pytest.approx(record["validation"]["accuracy"])
    assert meta["tokenization"] == {"max_length": 48, "truncation": "head", "clean": []}
    assert meta["drift"]["window"] >= 1 and "p_value" in meta["drift"]


def test_metrics_are_prometheus_text(server: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    call(server, "/score", {"text": ""})
    _, text = call(server, "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"studies_requests", "studies_request_latency_seconds", "studies_batch_size", "studies_errors"} <= set(
        families
    )
    assert {"studies_drift_score", "studies_drift_p_value", "studies_drift_window"} <= set(families)
    ok = [s for s in families["studies_requests"].samples if s.labels == {"path": "/score", "status": "200"}]
    assert ok and ok[0].value >= 1
    assert _metric(text, 'studies_errors_total{kind="invalid"}') >= 1


def test_generated_requests_from_the_openapi_schema_get_no_5xx(server: Any) -> None:
    """schemathesis draws valid and invalid requests from the service's own schema; none may crash it."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error, response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    score = schema["/score"]["POST"]
    cases = st.one_of(
        score.as_strategy(GenerationMode.POSITIVE),
        score.as_strategy(GenerationMode.NEGATIVE),
        schema["/metadata"]["GET"].as_strategy(),
        schema["/health"]["GET"].as_strategy(),
    )

    @given(case=cases)
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        if response.status_code >= 400:
            detail = response.json()["detail"]
            assert response.status_code < 500 and isinstance(detail, str) and detail, response.text

    check()


def test_request_bodies_are_not_logged(server: Any) -> None:
    assert call(server, "/score", {"text": MARKER})[0] == 200
    assert call(server, "/score", {"text": MARKER, "inputs": []})[0] == 422
    assert MARKER not in server.log.read_text()


def test_a_non_loopback_address_is_refused_unless_allowed(tiny_model: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "studies._cli", "serve", str(tiny_model), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "--allow-remote" in run.stderr and "0.0.0.0" in run.stderr


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics")
