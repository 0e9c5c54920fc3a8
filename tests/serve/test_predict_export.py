"""``studies predict`` and ``studies export`` on the promoted tiny model; serving the int8 ONNX model."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from studies._cli import main
from studies.serve import Scorer

TEXTS = ["the acting was superb and i loved it", "a dull, tedious film", "i did not enjoy the plot"]


def _jsonl(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_predict_arguments_pairs_and_the_study_name(tiny_model: Path, capsys: Any) -> None:
    assert main(["predict", str(tiny_model), *TEXTS]) == 0
    rows = _jsonl(capsys.readouterr().out)
    assert [r["text"] for r in rows] == TEXTS
    expected = Scorer(tiny_model).score(TEXTS)[0]
    assert [r["probabilities"] for r in rows] == [pytest.approx(e["probabilities"], abs=1e-5) for e in expected]

    # Batch size does not change an answer (padding is masked).
    assert main(["predict", str(tiny_model), *TEXTS, "--batch-size", "1"]) == 0
    assert [r["probabilities"] for r in _jsonl(capsys.readouterr().out)] == [
        pytest.approx(r["probabilities"], abs=1e-5) for r in rows
    ]

    assert main(["predict", str(tiny_model), "the movie", "the cast", "--pair", "was great", "--pair", "was bad"]) == 0
    pairs = _jsonl(capsys.readouterr().out)
    assert [p["text_pair"] for p in pairs] == ["was great", "was bad"]

    # A study name resolves to its promoted folder through the store.
    store = f"sqlite:///{tiny_model.parents[1] / 'studies.db'}"
    assert main(["predict", "tiny-serve", TEXTS[0], "--storage", store]) == 0
    assert _jsonl(capsys.readouterr().out)[0]["probabilities"] == pytest.approx(rows[0]["probabilities"])


def test_predict_files_stdin_and_a_table(tiny_model: Path, tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    csv_file = tmp_path / "in.csv"
    csv_file.write_text('text\n"great, really great"\nawful\n', encoding="utf-8")
    assert main(["predict", str(tiny_model), "--file", str(csv_file), "--format", "table"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["label", "p(negative)", "p(positive)", "text"] and len(table) == 3

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"a": "the plot", "b": "was gripping"}\n{"a": "the end", "b": "was weak"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    argv = ["predict", str(tiny_model), "--pair-file", str(pairs), "--text-column", "a", "--pair-column", "b"]
    assert main([*argv, "--output", str(out)]) == 0
    assert [r["text_pair"] for r in _jsonl(out.read_text())] == ["was gripping", "was weak"]

    monkeypatch.setattr("sys.stdin", io.StringIO("a great film\nthe plot\twas weak\n"))
    assert main(["predict", str(tiny_model)]) == 0
    rows = _jsonl(capsys.readouterr().out)
    assert [r.get("text_pair") for r in rows] == ["", "was weak"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["predict", "no-such-thing", "x", "--storage", "sqlite:///{tmp}/none.db"], "neither a model folder"),
        (["predict", "{model}", "--file", "{tmp}/missing.csv"], "is not a file"),
        (["predict", "{model}", "a", "b", "--pair", "x"], "--pair"),
        (["predict", "{model}", "x", "--backend", "onnx-int8"], "studies export"),
        (["drift", "{model}"], "--file"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(
    tiny_model: Path, tmp_path: Path, capsys: Any, argv: list[str], says: str
) -> None:
    fresh = tmp_path / "fresh"  # a copy never exported
    if "onnx-int8" in argv:
        import shutil

        shutil.copytree(tiny_model, fresh, ignore=shutil.ignore_patterns("onnx"))
    model = str(fresh if "onnx-int8" in argv else tiny_model)
    assert main([a.format(model=model, tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and says in err


@pytest.fixture(scope="module")
def exported(tiny_model: Path) -> dict[str, Any]:
    assert main(["export", str(tiny_model), "--format", "onnx", "--quantize", "int8"]) == 0
    return json.loads((tiny_model / "onnx" / "export.json").read_text())


def test_export_writes_onnx_and_int8_scored_on_the_test_split(tiny_model: Path, exported: dict[str, Any]) -> None:
    record = json.loads((tiny_model / "promotion.json").read_text())
    models = exported["models"]
    assert set(models) == {"torch", "onnx", "onnx-int8"}
    assert exported["test_examples"] == record["data_sizes"]["test"]
    assert models["torch"]["accuracy"] == pytest.approx(record["test"]["accuracy"])
    assert models["onnx"]["accuracy"] == pytest.approx(models["torch"]["accuracy"])
    assert abs(models["onnx-int8"]["accuracy"] - models["torch"]["accuracy"]) <= 0.05
    assert models["onnx-int8"]["bytes"] < models["onnx"]["bytes"]
    card = (tiny_model / "README.md").read_text()
    assert card.count("## Exported models") == 1 and "| onnx-int8 |" in card
    assert not [p for p in tiny_model.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_onnx_scores_match_torch_and_int8_serves_over_http(tiny_model: Path, exported: dict[str, Any]) -> None:
    import uvicorn
    from serve_http import call, free_port

    from studies.serve import create_app

    torch_probs = Scorer(tiny_model).score(TEXTS)[1]
    onnx_probs = Scorer(tiny_model, backend="onnx").score(TEXTS)[1]
    assert onnx_probs == pytest.approx(torch_probs, abs=1e-4)

    int8 = Scorer(tiny_model, backend="onnx-int8")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(int8), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        url = type("S", (), {"url": f"http://127.0.0.1:{port}"})()
        status, answer = call(url, "/score", {"text": TEXTS[0]})
        assert status == 200
        assert answer["probabilities"] == pytest.approx(int8.score(TEXTS[:1])[0][0]["probabilities"], abs=1e-5)
        assert call(url, "/metadata")[1]["backend"] == "onnx-int8"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
