"""``prepare``: sources, the tokenization cache, atomic entries, and the ``Prepared`` record."""

from __future__ import annotations

import json
import logging

import datasets
import pytest

from trainers import DataError, ModelSpec, Prepared, TaskSpec, prepare
from trainers._synthetic import generate

SMALL = {"train_size": 120, "eval_size": 40, "test_size": 40}


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("trainers")]


# --- the cache --------------------------------------------------------------------------------


def test_a_second_prepare_reuses_the_cache_without_tokenizing(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="trainers")
    first = prepare(TaskSpec(**SMALL), ModelSpec(), tmp_path)
    assert not first.cache_hit
    assert any(m.startswith("tokenized 200 examples (train 120, validation 40, test 40") for m in _messages(caplog))
    caplog.clear()
    second = prepare(TaskSpec(**SMALL), ModelSpec(), tmp_path)
    assert second.cache_hit
    assert second == Prepared(**{**first.__dict__, "cache_hit": True})
    assert [m for m in _messages(caplog) if m.startswith("reusing tokenized data at ")]
    assert not [m for m in _messages(caplog) if m.startswith("tokenized")]


def test_changing_max_length_or_truncation_is_a_miss(tmp_path):
    base = prepare(TaskSpec(**SMALL), ModelSpec(), tmp_path)
    shorter = prepare(TaskSpec(**SMALL, max_length=16), ModelSpec(), tmp_path)
    assert not shorter.cache_hit and shorter.fingerprint != base.fingerprint
    assert shorter.data_dir != base.data_dir
    assert max(len(ids) for ids in datasets.load_from_disk(str(shorter.data_dir))["train"]["input_ids"]) == 16
    tail = prepare(TaskSpec(**SMALL, max_length=16, truncation="tail"), ModelSpec(), tmp_path)
    assert not tail.cache_hit and tail.data_dir not in (base.data_dir, shorter.data_dir)


def test_a_new_model_size_reuses_the_tokenized_data(tmp_path, caplog):
    base = prepare(TaskSpec(**SMALL), ModelSpec(), tmp_path)
    caplog.set_level(logging.INFO, logger="trainers")
    deeper = prepare(TaskSpec(**SMALL), ModelSpec(num_layers=1), tmp_path)
    assert deeper.data_dir == base.data_dir and deeper.model_dir != base.model_dir
    assert not deeper.cache_hit  # the model was built
    assert [m for m in _messages(caplog) if m.startswith("reusing tokenized data")]


def test_a_failed_preparation_leaves_nothing_behind(tmp_path, monkeypatch):
    import trainers._tokenize

    def broken(*args, **kwargs):
        raise RuntimeError("killed while tokenizing")

    monkeypatch.setattr(trainers._tokenize, "tokenize_splits", broken)
    with pytest.raises(RuntimeError, match="killed"):
        prepare(TaskSpec(**SMALL), ModelSpec(), tmp_path)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("data-", ".staging-"))]
    monkeypatch.undo()
    (tmp_path / ".staging-data-0123456789abcdef-deadbeef").mkdir()  # a SIGKILLed run's leftover
    assert not prepare(TaskSpec(**SMALL), ModelSpec(), tmp_path).cache_hit
    assert prepare(TaskSpec(**SMALL), ModelSpec(), tmp_path).cache_hit


def test_the_prepared_splits_are_tokenized_unpadded_and_labelled(synthetic):
    splits = datasets.load_from_disk(str(synthetic.data_dir))
    assert set(splits) == {"train", "validation", "test"}
    assert synthetic.sizes == {name: len(split) for name, split in splits.items()} == {
        "train": 1500, "validation": 300, "test": 300,
    }  # fmt: skip
    train = splits["train"]
    assert set(train.column_names) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    lengths = {len(ids) for ids in train["input_ids"]}
    assert len(lengths) > 5  # dynamic padding happens per batch, not here
    assert all(mask == [1] * len(mask) for mask in train["attention_mask"][:50])
    assert set(train["labels"]) == {0, 1}
    assert synthetic.label_names == ["negative", "positive"] and synthetic.num_labels == 2
    assert not synthetic.text_pair


def test_prepared_survives_a_json_round_trip(synthetic):
    data = json.loads(json.dumps(synthetic.to_dict()))
    assert Prepared.from_dict(data) == synthetic
    assert Prepared.from_dict({**data, "unknown": 1}) == synthetic


def test_the_synthetic_source_defaults_to_2000_400_400():
    from trainers._sources import synthetic_sizes

    assert synthetic_sizes(TaskSpec()) == {"train": 2000, "validation": 400, "test": 400}
    assert synthetic_sizes(TaskSpec(train_size=10)) == {"train": 10, "validation": 400, "test": 400}


# --- local files ------------------------------------------------------------------------------


def _write(rows: list[dict], path, fmt: str) -> None:
    table = datasets.Dataset.from_list(rows)
    {"csv": table.to_csv, "jsonl": table.to_json, "parquet": table.to_parquet}[fmt](str(path))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_local_file_is_the_train_split_and_carved(tmp_path, fmt):
    _write(generate(100, seed=1), tmp_path / f"reviews.{fmt}", fmt)
    task = TaskSpec(dataset=str(tmp_path / f"reviews.{fmt}"), labels=["negative", "positive"], test_size=10)
    prepared = prepare(task, ModelSpec(), tmp_path / "cache")
    assert prepared.sizes == {"train": 80, "validation": 10, "test": 10}


def test_a_local_folder_has_one_file_per_split(tmp_path):
    folder = tmp_path / "reviews"
    folder.mkdir()
    _write(generate(60, seed=1), folder / "train.jsonl", "jsonl")
    _write(generate(20, seed=2), folder / "test.jsonl", "jsonl")
    prepared = prepare(TaskSpec(dataset=str(folder), test_split="test", eval_size=6), ModelSpec(), tmp_path / "cache")
    assert prepared.sizes == {"train": 54, "validation": 6, "test": 20}


def test_a_missing_file_names_task_dataset_and_the_path(tmp_path):
    missing = tmp_path / "nope" / "imdb.csv"
    with pytest.raises(DataError) as error:
        prepare(TaskSpec(dataset=str(missing)), ModelSpec(), tmp_path / "cache")
    message = str(error.value)
    assert message.startswith(f"task.dataset '{missing}' does not exist") and str(missing) in message


def test_editing_a_local_file_invalidates_the_cache(tmp_path):
    path = tmp_path / "reviews.csv"
    _write(generate(60, seed=1), path, "csv")
    task = TaskSpec(dataset=str(path), eval_size=5, test_size=5)
    first = prepare(task, ModelSpec(), tmp_path / "cache")
    _write(generate(70, seed=1), path, "csv")
    second = prepare(task, ModelSpec(), tmp_path / "cache")
    assert not second.cache_hit and second.sizes["train"] == 60 and first.sizes["train"] == 50


# --- hub data sets (no network here: the loader is replaced to check what it is asked for) ------


def _imdb_like() -> datasets.DatasetDict:
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    rows = generate(80, seed=3, label_noise=0.0)
    split = {"text": [r["text"] for r in rows], "label": [int(r["label"] == "positive") for r in rows]}
    return datasets.DatasetDict(
        {name: datasets.Dataset.from_dict(split, features=features) for name in ("train", "test")}
    )


def _boolq_like() -> datasets.DatasetDict:
    rows = generate(60, seed=4, label_noise=0.0)
    split = {
        "question": ["is it a good film?"] * len(rows),
        "passage": [r["text"] for r in rows],
        "answer": [r["label"] == "positive" for r in rows],
    }
    return datasets.DatasetDict({name: datasets.Dataset.from_dict(split) for name in ("train", "validation")})


def test_hub_datasets_are_loaded_by_id_config_and_revision(tmp_path, monkeypatch):
    import trainers._sources

    calls = []

    def load(name, config, revision, *, cache_dir):
        calls.append((name, config, revision))
        return _imdb_like() if name == "stanfordnlp/imdb" else _boolq_like()

    monkeypatch.setattr(trainers._sources, "load_hub_dataset", load)
    imdb = prepare(TaskSpec(dataset="stanfordnlp/imdb", test_split="test", eval_size=8), ModelSpec(), tmp_path)
    assert calls == [("stanfordnlp/imdb", None, None)]
    assert imdb.label_names == ["neg", "pos"] and imdb.sizes == {"train": 72, "validation": 8, "test": 80}

    boolq = TaskSpec(
        dataset="google/boolq", dataset_revision="v1", text_column="question", text_pair_column="passage",
        label_column="answer", labels=["false", "true"], eval_split="validation", test_size=10,
    )  # fmt: skip
    prepared = prepare(boolq, ModelSpec(), tmp_path)
    assert calls[-1] == ("google/boolq", None, "v1")
    assert prepared.text_pair and prepared.label_names == ["false", "true"]
    assert prepared.sizes == {"train": 50, "validation": 60, "test": 10}
    assert prepare(boolq, ModelSpec(), tmp_path).cache_hit and len(calls) == 2  # the cache needs no hub
    assert not prepare(boolq.model_copy(update={"dataset_revision": "v2"}), ModelSpec(), tmp_path).cache_hit
