"""The metrics people report for text classification, from class scores or predicted classes.

- ``accuracy``;
- ``f1``: for two labels, the binary F1 of the positive label (``task.positive_label``,
  by default the second of ``task.labels``); for more, the macro F1;
- ``f1_macro`` and ``f1_weighted``: the unweighted and the support-weighted mean of
  the per-class F1;
- ``mcc``: Matthews correlation coefficient (binary or multi-class);
- ``roc_auc``: for two labels, the ROC AUC of the positive label's probability; for
  more, the macro mean of one-vs-rest AUCs. It needs class scores, and is NaN when
  the labels hold a single class (it is undefined there);
- ``eval_loss``: added by the evaluation loop, not here.

A class that is neither predicted nor present scores an F1 of 0, scikit-learn's default.
"""

from __future__ import annotations

from typing import Any

# Everything an evaluation reports: what an objective may name.
METRICS = ("accuracy", "f1", "f1_macro", "f1_weighted", "mcc", "roc_auc", "eval_loss")


def probabilities(logits: Any) -> Any:
    """Softmax of logits (a torch tensor), as float32: what the Trainer gathers for the metrics."""
    import torch

    return torch.softmax(logits.float(), dim=-1)


def classification_metrics(scores: Any, labels: Any, num_labels: int, positive: int = 1) -> dict[str, float]:
    """Every metric of :data:`METRICS` but ``eval_loss``.

    Args:
        scores: Class probabilities ``[n, num_labels]``, or predicted class indexes ``[n]``
            (then ``roc_auc`` is NaN).
        labels: True class indexes, ``[n]``.
        num_labels: The number of classes.
        positive: The index of the positive label (binary ``f1`` and ``roc_auc``).

    Returns:
        The metrics by name.
    """
    import numpy as np
    from sklearn import metrics as sk

    scores = np.asarray(scores)
    labels = np.asarray(labels).reshape(-1)
    nan = float("nan")
    if len(labels) == 0:
        return {name: nan for name in METRICS if name != "eval_loss"}
    predictions = scores.argmax(axis=-1) if scores.ndim == 2 else scores.reshape(-1)
    classes = list(range(num_labels))
    per_class = sk.f1_score(labels, predictions, labels=classes, average=None, zero_division=0)
    macro = float(np.mean(per_class))
    weighted = float(sk.f1_score(labels, predictions, labels=classes, average="weighted", zero_division=0))
    return {
        "accuracy": float(sk.accuracy_score(labels, predictions)),
        "f1": float(per_class[positive]) if num_labels == 2 else macro,
        "f1_macro": macro,
        "f1_weighted": weighted,
        "mcc": _mcc(labels, predictions),
        "roc_auc": _roc_auc(scores, labels, num_labels, positive) if scores.ndim == 2 else nan,
    }


def _mcc(labels: Any, predictions: Any) -> float:
    import warnings

    from sklearn.metrics import matthews_corrcoef

    with warnings.catch_warnings():
        # One class in both labels and predictions: scikit-learn warns, and MCC is 0 (no correlation to measure).
        warnings.simplefilter("ignore", UserWarning)
        return float(matthews_corrcoef(labels, predictions))


def _roc_auc(scores: Any, labels: Any, num_labels: int, positive: int) -> float:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    if len(np.unique(labels)) < 2:
        return float("nan")
    scores = scores.astype(np.float64)
    if num_labels == 2:
        return float(roc_auc_score(labels == positive, scores[:, positive]))
    try:
        scores = scores / scores.sum(axis=1, keepdims=True)
        return float(roc_auc_score(labels, scores, multi_class="ovr", average="macro", labels=list(range(num_labels))))
    except ValueError:  # a class absent from the labels: its one-vs-rest AUC is undefined
        return float("nan")
