"""Data-level search: the positive label, multi-class synthetic data, and max_length checked and cached per value."""

from __future__ import annotations

import collections

import pytest

SMALL = {"train_size": 200, "eval_size": 60, "test_size": 60}


@pytest.mark.parametrize("labels", [["negative", "positive"], ["positive", "negative"]])
def test_the_named_positive_label_is_scored_whatever_the_order_of_labels(cache_dir, labels):
    from trainers import ModelSpec, TaskSpec, prepare

    prepared = prepare(TaskSpec(**SMALL, labels=labels, positive_label="positive"), ModelSpec(), cache_dir)
    assert prepared.label_names == labels and prepared.positive_label == "positive"
    # Without a name, the positive label is the second of the labels, as the card states.
    default = prepare(TaskSpec(**SMALL, labels=labels), ModelSpec(), cache_dir)
    assert default.positive_label == labels[1]


def test_a_positive_label_not_among_the_data_labels_is_one_line(cache_dir):
    from trainers import DataError, ModelSpec, TaskSpec, prepare

    with pytest.raises(DataError, match=r"task.positive_label 'yes' is not among the labels \(negative, positive\)"):
        prepare(TaskSpec(**SMALL, positive_label="yes"), ModelSpec(), cache_dir)


def test_synthetic_data_can_have_four_balanced_classes():
    from trainers._synthetic import generate

    rows = generate(400, seed=3, label_noise=0.0, classes=4)
    counts = collections.Counter(r["label"] for r in rows)
    assert counts == {"film": 100, "book": 100, "music": 100, "game": 100}
    assert generate(40, seed=3, classes=4) == generate(40, seed=3, classes=4)
    assert "novel" in " ".join(r["text"] for r in rows if r["label"] == "book")


def test_max_length_beyond_the_model_positions_is_refused_before_tokenizing(tmp_path):
    from trainers import ModelError, ModelSpec, TaskSpec, prepare

    with pytest.raises(ModelError, match="task.max_length 1024 is beyond what model.name 'minilm-l6' takes"):
        prepare(TaskSpec(**SMALL, max_length=1024), ModelSpec(name="minilm-l6"), tmp_path)
    assert not list(tmp_path.glob("data-*"))  # nothing was tokenized
