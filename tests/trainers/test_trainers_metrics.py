"""Accuracy and F1 computed with numpy, checked against hand-counted cases."""

from __future__ import annotations

import pytest

from trainers._metrics import classification_metrics


def test_binary_f1_is_the_f1_of_class_one():
    # tp=2, fp=1, fn=1 -> precision 2/3, recall 2/3, f1 2/3; 3 of 5 correct
    metrics = classification_metrics([1, 1, 1, 0, 0], [1, 1, 0, 1, 0], num_labels=2)
    assert metrics == {"accuracy": pytest.approx(0.6), "f1": pytest.approx(2 / 3)}


def test_macro_f1_averages_the_classes():
    # class 0: f1 1; class 1: tp 1, fp 1, fn 0 -> 2/3; class 2: tp 0, fn 1 -> 0
    metrics = classification_metrics([0, 1, 1], [0, 1, 2], num_labels=3)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_no_positive_predictions_nor_labels_scores_zero_f1():
    assert classification_metrics([0, 0], [0, 0], num_labels=2) == {"accuracy": 1.0, "f1": 0.0}
    assert classification_metrics([], [], num_labels=2) == {"accuracy": 0.0, "f1": 0.0}
