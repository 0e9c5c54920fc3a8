"""Columns, labels, cleaning and splits (``trainers._data``), on real in-memory data sets."""

from __future__ import annotations

import datasets
import pytest

from trainers import DataError, TaskSpec
from trainers._data import clean_text, label_lookup, make_splits


def _raw(n: int = 100, **splits: int) -> datasets.DatasetDict:
    """A source with a ``train`` split of ``n`` rows (plus named extra splits) and string labels."""

    def rows(count: int, prefix: str) -> dict[str, list]:
        return {
            "review": [f"{prefix} review number {i}" for i in range(count)],
            "sentiment": ["positive" if i % 2 else "negative" for i in range(count)],
        }

    return datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict(rows(n, "train"))}
        | {name: datasets.Dataset.from_dict(rows(count, name)) for name, count in splits.items()}
    )


def _task(**fields) -> TaskSpec:
    return TaskSpec(**{"dataset": "reviews.csv", "text_column": "review", "label_column": "sentiment", **fields})


# --- labels -----------------------------------------------------------------------------------


def test_declared_labels_map_by_lowercase_string_form():
    lookup, names = label_lookup(_task(labels=["Negative", "Positive"]), {"positive", "NEGATIVE"})
    assert names == ["Negative", "Positive"]
    assert lookup == {"NEGATIVE": 0, "positive": 1}


def test_booleans_map_to_declared_false_true():
    lookup, names = label_lookup(_task(labels=["false", "true"]), {True, False})
    assert lookup[False] == 0 and lookup[True] == 1
    assert names == ["false", "true"]


def test_without_declared_labels_integers_are_kept_and_strings_sorted():
    assert label_lookup(_task(), {0, 2, 1}) == ({0: 0, 1: 1, 2: 2}, ["0", "1", "2"])
    assert label_lookup(_task(), {"pos", "neg"}) == ({"neg": 0, "pos": 1}, ["neg", "pos"])
    assert label_lookup(_task(), {True, False}) == ({False: 0, True: 1}, ["false", "true"])


def test_an_undeclared_value_names_the_value_and_task_labels():
    with pytest.raises(DataError) as error:
        label_lookup(_task(labels=["negative", "positive"]), {"positive", "neutral"})
    message = str(error.value)
    assert "'neutral'" in message and "task.labels" in message and "\n" not in message


def test_a_single_label_value_is_an_error():
    with pytest.raises(DataError, match="only one label value"):
        label_lookup(_task(), {"positive"})


def test_class_label_columns_use_their_names():
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    train = datasets.Dataset.from_dict(
        {"text": ["a", "b", "c", "d"] * 10, "label": [0, 1, 1, 0] * 10}, features=features
    )
    task = TaskSpec(dataset="stanfordnlp/imdb", labels=["neg", "pos"], test_size=5, eval_size=5)
    splits, names = make_splits(task, datasets.DatasetDict({"train": train}), "stanfordnlp/imdb")
    assert names == ["neg", "pos"]
    assert set(splits["train"]["labels"]) == {0, 1}


# --- columns and splits -----------------------------------------------------------------------


def test_a_wrong_text_column_lists_the_real_columns():
    with pytest.raises(DataError) as error:
        make_splits(_task(text_column="txt"), _raw(), "imdb.csv")
    assert str(error.value) == (
        "task.text_column 'txt' is not a column of imdb.csv (columns: review, sentiment): "
        "set task.text_column to one of them"
    )


def test_a_wrong_label_or_pair_column_is_named():
    with pytest.raises(DataError, match=r"^task.label_column 'label' is not a column"):
        make_splits(_task(label_column="label"), _raw(), "imdb.csv")
    with pytest.raises(DataError, match=r"^task.text_pair_column 'passage' is not a column"):
        make_splits(_task(text_pair_column="passage"), _raw(), "imdb.csv")


def test_a_missing_split_lists_the_splits():
    with pytest.raises(DataError, match=r"task.eval_split 'dev' is not a split of src \(splits: train, test\)"):
        make_splits(_task(eval_split="dev"), _raw(test=10), "src")


def test_carved_splits_are_deterministic_disjoint_and_sized():
    task = _task(eval_fraction=0.1, test_fraction=0.2)
    splits, names = make_splits(task, _raw(100), "src")
    assert names == ["negative", "positive"]
    assert {k: len(v) for k, v in splits.items()} == {"train": 70, "validation": 10, "test": 20}
    texts = {k: set(v["text"]) for k, v in splits.items()}
    assert not texts["train"] & texts["validation"] and not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    again, _ = make_splits(task, _raw(100), "src")
    assert all(again[k]["text"] == splits[k]["text"] for k in splits)
    other, _ = make_splits(_task(eval_fraction=0.1, test_fraction=0.2, seed=1), _raw(100), "src")
    assert set(other["test"]["text"]) != texts["test"]


def test_sizes_carve_and_subsample_in_rows():
    splits, _ = make_splits(_task(train_size=30, eval_size=7, test_size=5), _raw(100), "src")
    assert {k: len(v) for k, v in splits.items()} == {"train": 30, "validation": 7, "test": 5}


def test_source_splits_are_used_and_subsampled():
    splits, _ = make_splits(
        _task(eval_split="validation", test_split="test", eval_size=4), _raw(50, validation=10, test=8), "src"
    )
    assert len(splits["train"]) == 50 and len(splits["validation"]) == 4 and len(splits["test"]) == 8
    assert all(t.startswith("validation") for t in splits["validation"]["text"])
    assert all(t.startswith("test") for t in splits["test"]["text"])


def test_too_few_rows_to_carve_is_an_error():
    with pytest.raises(DataError, match="too few to carve"):
        make_splits(_task(eval_size=5, test_size=5), _raw(10), "src")


def test_rows_with_missing_text_or_label_are_dropped():
    raw = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"review": ["a", None, "c", "d"] * 5, "sentiment": ["x", "y", None, "y"] * 5}
            )
        }
    )
    splits, _ = make_splits(_task(eval_size=1, test_size=1), raw, "src")
    assert sum(len(s) for s in splits.values()) == 10


# --- cleaning ---------------------------------------------------------------------------------


def test_html_cleaning_replaces_tags_and_unescapes_entities():
    text = "Great film.<br /><br />Tom &amp; Jerry&#39;s <i>best</i>!<BR>End"
    assert clean_text(text, ["html"]) == "Great film.  Tom & Jerry's  best ! End"
    assert clean_text(text, ["html", "whitespace"]) == "Great film. Tom & Jerry's best ! End"
    assert clean_text("a < b and c > d", ["html"]) == "a < b and c > d"  # not tags


def test_whitespace_cleaning_collapses_runs():
    assert clean_text("  a \n\t b  ", ["whitespace"]) == "a b"
    assert clean_text("a<br/>b", []) == "a<br/>b"


def test_cleaning_applies_to_the_splits():
    raw = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"review": ["x<br />y"] * 20, "sentiment": ["a", "b"] * 10})}
    )
    splits, _ = make_splits(_task(clean=["html", "whitespace"], eval_size=2, test_size=2), raw, "src")
    assert set(splits["train"]["text"]) == {"x y"}
