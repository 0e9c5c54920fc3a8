"""User mistakes in the data, the cache folder or the model are one ``DataError``/``ModelError`` line, and nothing else.

Each case is a small file written to ``tmp_path`` and the real ``prepare``; the
message must say what is wrong and how to fix it, on one line, with no library
log lines or warnings printed before it.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import pytest

from trainers import DataError, ModelError, ModelSpec, TaskSpec, prepare

SMALL = {"train_size": 100, "eval_size": 20, "test_size": 20}


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _reviews(n: int = 60) -> list[str]:
    return [f"review number {i} was {'good' if i % 2 else 'bad'},{i % 2}" for i in range(n)]


def _refused(error: type[Exception], task: TaskSpec, model: ModelSpec, cache: Path, capfd, caplog) -> str:
    """Prepare, expecting ``error``; check that it is one line and that nothing else was printed or logged."""
    caplog.set_level(logging.WARNING)
    capfd.readouterr()
    with pytest.raises(error) as raised:
        prepare(task, model, cache)
    message = str(raised.value)
    assert "\n" not in message
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    return message


# --- labels -----------------------------------------------------------------------------------


def test_mixed_label_types_name_the_column_the_types_and_the_fix(tmp_path, capfd, caplog):
    rows = [{"text": f"review {i}", "label": [0, 1, "x"][i % 3]} for i in range(60)]
    path = _jsonl(tmp_path / "mixed.jsonl", rows)
    message = _refused(DataError, TaskSpec(dataset=str(path)), ModelSpec(), tmp_path / "cache", capfd, caplog)
    assert "task.label_column 'label' mixes label types (int, str)" in message
    assert "task.labels" in message


def test_mixed_label_types_map_by_string_form_with_declared_labels(tmp_path):
    rows = [{"text": f"review {i}", "label": [0, 1, "x"][i % 3]} for i in range(60)]
    path = _jsonl(tmp_path / "mixed.jsonl", rows)
    prepared = prepare(TaskSpec(dataset=str(path), labels=["0", "1", "x"]), ModelSpec(), tmp_path / "cache")
    assert prepared.label_names == ["0", "1", "x"] and prepared.num_labels == 3


@pytest.mark.parametrize(
    ("value", "shown"), [("1", "1"), ("True", "true"), ("positive", "positive")], ids=["int", "bool", "str"]
)
def test_a_single_training_label_is_refused(tmp_path, capfd, caplog, value, shown):
    path = _csv(tmp_path / "one.csv", "text,label", [f"review number {i},{value}" for i in range(60)])
    message = _refused(DataError, TaskSpec(dataset=str(path)), ModelSpec(), tmp_path / "cache", capfd, caplog)
    assert f"task.label_column 'label' has only one label value ({shown})" in message


# --- columns ----------------------------------------------------------------------------------


def test_a_numeric_text_column_is_refused_with_the_text_columns(tmp_path, capfd, caplog):
    path = _csv(tmp_path / "ids.csv", "text,label,words", [f"{i},{i % 2},review number {i}" for i in range(60)])
    message = _refused(DataError, TaskSpec(dataset=str(path)), ModelSpec(), tmp_path / "cache", capfd, caplog)
    assert message.startswith("task.text_column 'text' of ids.csv holds numbers (int64), not texts")
    assert "set task.text_column to a column of texts (text columns: words)" in message


def test_an_empty_text_column_is_refused(tmp_path, capfd, caplog):
    path = _csv(tmp_path / "blank.csv", "text,label", [f",{i % 2}" for i in range(60)])
    message = _refused(DataError, TaskSpec(dataset=str(path)), ModelSpec(), tmp_path / "cache", capfd, caplog)
    assert "task.text_column 'text' of blank.csv is empty in every row" in message


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"label_column": "text"}, "task.text_column and task.label_column are both 'text'"),
        ({"text_pair_column": "text"}, "task.text_column and task.text_pair_column are both 'text'"),
    ],
    ids=["label", "pair"],
)
def test_one_column_for_two_roles_is_refused(tmp_path, capfd, caplog, fields, named):
    path = _csv(tmp_path / "reviews.csv", "text,label", _reviews())
    task = TaskSpec(dataset=str(path), **fields)
    message = _refused(DataError, task, ModelSpec(), tmp_path / "cache", capfd, caplog)
    assert message.startswith(named) and "(columns: text, label)" in message


# --- unreadable files -------------------------------------------------------------------------


def test_a_ragged_csv_gives_the_parser_s_reason(tmp_path, capfd, caplog):
    rows = _reviews(50)
    path = _csv(tmp_path / "ragged.csv", "text,label", [*rows, "a,b,c,d", *rows[:10]])
    message = _refused(DataError, TaskSpec(dataset=str(path)), ModelSpec(), tmp_path / "cache", capfd, caplog)
    assert "cannot be read as csv" in message and "Expected 2 fields in line 52, saw 4" in message
    assert "An error occurred while generating the dataset" not in message


def test_a_malformed_jsonl_gives_the_parser_s_reason(tmp_path, capfd, caplog):
    path = _jsonl(tmp_path / "bad.jsonl", [{"text": f"review {i}", "label": i % 2} for i in range(30)])
    path.write_text(path.read_text() + "{not json\n")
    message = _refused(DataError, TaskSpec(dataset=str(path)), ModelSpec(), tmp_path / "cache", capfd, caplog)
    assert "cannot be read as json (JSON parse error" in message and "in row 30" in message


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("empty.csv", "", "is empty"),
        ("blank.jsonl", "\n\n", "is empty"),
        ("header.csv", "text,label\n", "has a header (text,label) but no rows"),
        ("list.json", "[]\n", "has no rows"),
        ("empty.parquet", "", "is empty"),
        ("rowless.parquet", None, "has no rows"),
    ],
    ids=["empty-csv", "blank-jsonl", "header-only-csv", "empty-json-list", "empty-parquet", "0-row-parquet"],
)
def test_an_empty_file_says_so(tmp_path, capfd, caplog, name, content, said):
    path = tmp_path / name
    if content is None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.int64())}), path)
    else:
        path.write_text(content)
    message = _refused(DataError, TaskSpec(dataset=str(path)), ModelSpec(), tmp_path / "cache", capfd, caplog)
    assert message.startswith(f"task.dataset '{path}' {said}")


# --- the cache folder -------------------------------------------------------------------------


def test_a_cache_folder_under_a_file_names_the_file_and_work_dir(tmp_path, capfd, caplog):
    (tmp_path / "runs").write_text("not a folder")
    cache = tmp_path / "runs" / "cache"
    message = _refused(DataError, TaskSpec(**SMALL), ModelSpec(), cache, capfd, caplog)
    assert message == (
        f"the cache folder {cache} cannot be written ({tmp_path / 'runs'} is a file): set work_dir to a writable folder"
    )


# --- the hub, offline (HF_HUB_OFFLINE is set for these tests) or unreachable ------------------


@pytest.fixture
def unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub as a machine without a network sees it: offline mode off, and nothing answering at the endpoint."""
    import datasets.config
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused at once


def test_a_hub_model_offline_is_one_line(tmp_path, capfd, caplog):
    model = ModelSpec(name="nonexistent-org/nonexistent-model")
    message = _refused(ModelError, TaskSpec(**SMALL), model, tmp_path, capfd, caplog)
    assert message.startswith("model.name 'nonexistent-org/nonexistent-model' is not in the local Hugging Face cache")
    assert "and HF_HUB_OFFLINE is set: unset it" in message


def test_a_hub_model_with_the_hub_unreachable_fails_at_once(tmp_path, capfd, caplog, unreachable_hub):
    model = ModelSpec(name="nonexistent-org/nonexistent-model")
    started = time.perf_counter()
    message = _refused(ModelError, TaskSpec(**SMALL), model, tmp_path, capfd, caplog)
    assert time.perf_counter() - started < 30  # five retries with back-off took about 50 s
    assert "is not in the local Hugging Face cache and the hub (http://127.0.0.1:9) cannot be reached" in message


def test_a_hub_dataset_with_the_hub_unreachable_fails_at_once(tmp_path, capfd, caplog, unreachable_hub):
    task = TaskSpec(dataset="nonexistent-org/nonexistent-data")
    started = time.perf_counter()
    message = _refused(DataError, task, ModelSpec(), tmp_path, capfd, caplog)
    assert time.perf_counter() - started < 30
    assert message.startswith(
        "task.dataset 'nonexistent-org/nonexistent-data' is not in the local Hugging Face cache and the hub"
    )


def test_a_cached_hub_model_loads_quietly_with_the_hub_unreachable(tmp_path, monkeypatch, capfd, unreachable_hub):
    from huggingface_hub import constants

    built = prepare(TaskSpec(**SMALL), ModelSpec(), tmp_path / "tiny")
    commit = "0" * 40
    repo = tmp_path / "hub" / "models--someone--tiny-bert"
    shutil.copytree(built.model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    capfd.readouterr()
    started = time.perf_counter()
    prepared = prepare(TaskSpec(**SMALL), ModelSpec(name="someone/tiny-bert"), tmp_path / "cache")
    assert time.perf_counter() - started < 30
    assert (prepared.model_dir / "model.safetensors").is_file()
    assert capfd.readouterr().err == ""
