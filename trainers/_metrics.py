"""Classification metrics with numpy only: accuracy and F1.

F1 is the binary F1 of class 1 for two labels (the positive class: ``positive``,
``true``), and the unweighted mean over classes (macro F1) otherwise. A class
that is never predicted nor present scores 0, as in scikit-learn's default.
"""

from __future__ import annotations

from typing import Any

METRICS = ("accuracy", "f1", "eval_loss")


def _f1(predictions: Any, labels: Any, cls: int) -> float:
    true_pos = float(((predictions == cls) & (labels == cls)).sum())
    predicted = float((predictions == cls).sum())
    actual = float((labels == cls).sum())
    return 2 * true_pos / (predicted + actual) if predicted + actual else 0.0


def classification_metrics(predictions: Any, labels: Any, num_labels: int) -> dict[str, float]:
    """Accuracy and F1 of predicted class indexes.

    Args:
        predictions: Predicted class indexes (array-like of ints).
        labels: True class indexes, same length.
        num_labels: The number of classes (2 selects binary F1).

    Returns:
        ``{"accuracy": ..., "f1": ...}``.
    """
    import numpy as np

    predictions = np.asarray(predictions).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) == 0:
        return {"accuracy": 0.0, "f1": 0.0}
    accuracy = float((predictions == labels).mean())
    if num_labels == 2:
        f1 = _f1(predictions, labels, 1)
    else:
        f1 = float(np.mean([_f1(predictions, labels, c) for c in range(num_labels)]))
    return {"accuracy": accuracy, "f1": f1}
