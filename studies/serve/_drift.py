"""Data drift: do recent inputs look like the training inputs, to the model?

At promotion, a sample of the training inputs is run through the model and
``drift_reference.npz`` is saved with it: the principal axes of their sentence
embeddings, the sample projected on those axes, and the model's confidence
(its top class probability) on each. A window of new inputs is compared with
it feature by feature (each of the first ``COMPONENTS`` axes, and the
confidence) with the two-sample Kolmogorov-Smirnov test of scipy; the drift
score is the largest KS statistic and the p-value the smallest one,
Bonferroni-corrected for the number of features.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studies._errors import NotFoundError, StudyError

if TYPE_CHECKING:
    from studies.serve._model import Scorer
    from trainers import Prepared

_log = logging.getLogger(__name__)

REFERENCE = "drift_reference.npz"
COMPONENTS = 8
SAMPLE = 512  # training inputs in the reference
MIN_WINDOW = 20  # fewer new inputs say too little to test
ALPHA = 0.01  # the corrected p-value under which a window is called drift


def write_reference(folder: Path, prepared: Prepared, record: dict[str, Any], seed: int = 0) -> Path:
    """Save the drift reference of the model in ``folder`` from a sample of its training split.

    Args:
        folder: The model folder (the promotion's staging folder).
        prepared: The prepared task the model was trained on (its tokenized train split is read).
        record: The promotion record (tokenization and labels).
        seed: Which sample of the train split.

    Returns:
        The reference file.
    """
    import datasets
    import numpy as np

    from studies.serve._model import Scorer

    train = datasets.load_from_disk(str(prepared.data_dir))["train"]
    rng = np.random.default_rng(seed)
    rows = sorted(rng.choice(len(train), size=min(SAMPLE, len(train)), replace=False).tolist())
    sample = train.select(rows)
    scorer = Scorer(folder, record=record)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample.column_names]
    examples = [{n: list(row[n]) for n in names} for row in sample]
    examples.sort(key=lambda e: len(e["input_ids"]))
    probs, embeddings = zip(*(scorer.run(examples[i : i + 64]) for i in range(0, len(examples), 64)))
    embeddings_ = np.concatenate(embeddings)
    mean = embeddings_.mean(axis=0)
    _, _, axes = np.linalg.svd(embeddings_ - mean, full_matrices=False)
    axes = axes[:COMPONENTS]
    path = folder / REFERENCE
    np.savez(
        path,
        mean=mean.astype(np.float32),
        axes=axes.astype(np.float32),
        projected=((embeddings_ - mean) @ axes.T).astype(np.float32),
        confidence=np.concatenate(probs).max(axis=1).astype(np.float32),
    )
    return path


class DriftReference:
    """A model's drift reference, and the test of a window of new inputs against it."""

    def __init__(self, folder: Path) -> None:
        import numpy as np

        path = Path(folder) / REFERENCE
        if not path.is_file():
            raise NotFoundError(f"{path} does not exist: promote the model again (`studies promote STUDY`) to save it")
        with np.load(path) as saved:
            self.mean, self.axes = saved["mean"], saved["axes"]
            self.projected, self.confidence = saved["projected"], saved["confidence"]

    def test(self, embeddings: Any, confidence: Any, alpha: float = ALPHA) -> dict[str, Any]:
        """Compare new inputs' embeddings and confidences with the reference.

        Returns:
            ``{"score", "p_value", "drift", "window", "features"}``; ``score`` and
            ``p_value`` are ``None`` when the window has fewer than ``MIN_WINDOW`` inputs.
        """
        import numpy as np
        from scipy.stats import ks_2samp

        n = len(confidence)
        if n < MIN_WINDOW:
            return {"score": None, "p_value": None, "drift": None, "window": n, "min_window": MIN_WINDOW}
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape[1] != self.mean.shape[0]:
            raise StudyError(f"embeddings of width {embeddings.shape[1]} do not match the reference's")
        new = np.column_stack([(embeddings - self.mean) @ self.axes.T, np.asarray(confidence)])
        old = np.column_stack([self.projected, self.confidence])
        names = [f"component_{i}" for i in range(self.axes.shape[0])] + ["confidence"]
        tests = [ks_2samp(old[:, i], new[:, i]) for i in range(new.shape[1])]
        p_value = min(1.0, len(tests) * min(float(t.pvalue) for t in tests))
        return {
            "score": max(float(t.statistic) for t in tests),
            "p_value": p_value,
            "drift": p_value < alpha,
            "window": n,
            "features": {name: round(float(t.statistic), 4) for name, t in zip(names, tests)},
        }


def drift_of_texts(scorer: Scorer, texts: list[str], pairs: list[str] | None = None) -> dict[str, Any]:
    """Score texts with the model and test them for drift against its reference (``studies drift``)."""
    reference = DriftReference(scorer.folder)
    _, probs, embeddings = scorer.score(texts, pairs)
    return reference.test(embeddings, probs.max(axis=1))
