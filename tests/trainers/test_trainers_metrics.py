"""The reported metrics, checked against hand-counted cases; binary F1 follows the named positive label."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainers._metrics import METRICS, classification_metrics


def test_binary_f1_is_the_f1_of_the_positive_label():
    # positive = 1: tp=2, fp=1, fn=1 -> f1 2/3; 3 of 5 correct
    metrics = classification_metrics([1, 1, 1, 0, 0], [1, 1, 0, 1, 0], num_labels=2)
    assert metrics["accuracy"] == pytest.approx(0.6) and metrics["f1"] == pytest.approx(2 / 3)
    # positive = 0: tp=1, fp=1, fn=1 -> f1 1/2
    assert classification_metrics([1, 1, 1, 0, 0], [1, 1, 0, 1, 0], 2, positive=0)["f1"] == pytest.approx(0.5)


def test_the_positive_label_is_scored_whatever_its_index():
    # The same data with the label indexes swapped: F1 of the same class, whichever index it has.
    scores = np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.45, 0.55]])
    labels = np.array([1, 1, 0, 0, 1])
    as_second = classification_metrics(scores, labels, 2, positive=1)
    as_first = classification_metrics(scores[:, ::-1], 1 - labels, 2, positive=0)
    assert as_second == pytest.approx(as_first)
    # roc_auc of class 1's probability: pairs (pos, neg) ranked right: 0.8>0.7,0.8>0.1,0.4<0.7,0.4>0.1,0.55<0.7,0.55>0.1
    assert as_second["roc_auc"] == pytest.approx(4 / 6)


def test_multi_class_metrics():
    # class 0: f1 1; class 1: tp 1, fp 1, fn 0 -> 2/3; class 2: tp 0, fn 1 -> 0
    metrics = classification_metrics([0, 1, 1], [0, 1, 2], num_labels=3)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["f1"] == metrics["f1_macro"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert metrics["f1_weighted"] == pytest.approx((1 + 2 / 3 + 0) / 3)  # one example each
    assert -1 <= metrics["mcc"] <= 1
    assert math.isnan(metrics["roc_auc"])  # class indexes only: no scores to rank


def test_multi_class_roc_auc_and_mcc_from_probabilities():
    scores = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]] * 0.7 + 0.075
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    metrics = classification_metrics(scores, labels, 4)
    assert metrics["roc_auc"] == pytest.approx(1.0) and metrics["mcc"] == pytest.approx(1.0)
    assert metrics["f1_macro"] == pytest.approx(1.0)


def test_edge_cases():
    one_class = classification_metrics([0, 0], [0, 0], num_labels=2)
    assert one_class["accuracy"] == 1.0 and one_class["f1"] == 0.0
    assert all(math.isnan(v) for v in classification_metrics([], [], num_labels=2).values())
    assert set(classification_metrics([0], [0], 2)) == set(METRICS) - {"eval_loss"}
