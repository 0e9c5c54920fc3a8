"""Load a promoted model and score raw texts with it, cut and framed exactly as in training.

A promoted folder holds the model, its tokenizer and ``promotion.json``, whose
``task`` entry names the tokenization (``max_length``, ``truncation``,
``clean``). ``Scorer`` runs the PyTorch model, or the ONNX model that
``studies export`` wrote into ``onnx/``; both give each example's class
probabilities and a sentence embedding (the mean of the last hidden states),
which the drift test compares with the training inputs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from studies._errors import NotFoundError, StudyError

_log = logging.getLogger(__name__)

RECORD = "promotion.json"
ONNX_DIR = "onnx"
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
BACKENDS = ("torch", *ONNX_FILES)


def resolve_model(name: str, storage_url: str | None = None) -> Path:
    """The promoted model folder named by a path or by a study name.

    Args:
        name: A folder ``studies promote`` wrote, or a study whose promoted folder to use.
        storage_url: The store to look the study up in (else ``STUDIES_STORAGE``, else ``sqlite:///studies.db``).

    Raises:
        NotFoundError: If ``name`` is neither a promoted folder nor a promoted study.
    """
    path = Path(name)
    if path.is_dir():
        if not (path / RECORD).is_file():
            raise NotFoundError(f"{path} has no {RECORD}: give a folder `studies promote` wrote, or a study name")
        return path.resolve()
    from storage import open_storage, resolve_url
    from studies._store import find_study

    url = resolve_url(storage_url)
    try:
        storage = open_storage(url, create=False)
    except StudyError:
        raise
    except Exception as e:
        raise NotFoundError(f"{name!r} is neither a model folder nor a study in the store: {e}") from e
    if find_study(storage, name) is None:
        raise NotFoundError(f"{name!r} is neither a model folder nor a study in the store: check the path or the name")
    import optuna

    record = optuna.load_study(study_name=name, storage=storage).user_attrs.get("promoted")
    if not record or not (Path(record["dir"]) / RECORD).is_file():
        raise NotFoundError(f"study {name!r} has no promoted model: run `studies promote {name}` first")
    return Path(record["dir"])


def read_record(folder: Path) -> dict[str, Any]:
    """The promotion record of a model folder, with the task's tokenization settings filled in."""
    from trainers import TaskSpec

    record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    if "task" not in record:  # promoted before the record named its tokenization: the task defaults
        _log.warning("%s names no task settings; using max_length %d", folder / RECORD, TaskSpec().max_length)
    record["task"] = TaskSpec(**record.get("task", {})).model_dump()
    return record


class Scorer:
    """A promoted model ready to score texts and text pairs.

    Args:
        folder: The promoted model folder.
        backend: ``torch``, ``onnx`` or ``onnx-int8`` (the last two need ``studies export`` first).
        record: The promotion record (read from the folder when not given).
        onnx_file: The ONNX model to run (default: the one ``studies export`` wrote for ``backend``).
    """

    def __init__(
        self,
        folder: str | Path,
        backend: str = "torch",
        record: dict[str, Any] | None = None,
        onnx_file: Path | None = None,
    ) -> None:
        import transformers

        from trainers import example_encoder
        from trainers._runtime import quiet

        self.folder = Path(folder)
        if backend not in BACKENDS:
            raise StudyError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.record = record if record is not None else read_record(self.folder)
        task = self.record["task"]
        self.clean: list[str] = list(task.get("clean", []))
        self.max_length: int = int(task["max_length"])
        self.label_names: list[str] = list(self.record["label_names"])
        with quiet():
            tokenizer = transformers.AutoTokenizer.from_pretrained(self.folder)
        self.pad_id = tokenizer.pad_token_id or 0
        self._encode = example_encoder(tokenizer, self.max_length, task["truncation"])
        if backend == "torch":
            with quiet():
                self._model = transformers.AutoModelForSequenceClassification.from_pretrained(self.folder).eval()
            self.input_names = list(tokenizer.model_input_names)
        else:
            path = onnx_file or self.folder / ONNX_DIR / ONNX_FILES[backend]
            if not path.is_file():
                quantize = " --quantize int8" if backend == "onnx-int8" else ""
                raise NotFoundError(
                    f"{path} does not exist: run `studies export {self.folder} --format onnx{quantize}` first"
                )
            self._session = onnx_session(path)
            self.input_names = [i.name for i in self._session.get_inputs()]

    def metadata(self) -> dict[str, Any]:
        """The model card's facts: base model, study, trial, params, validation and test metrics."""
        keys = ("study", "trial", "base_model", "dataset", "params", "validation", "test", "promoted_at")
        facts = {k: self.record.get(k) for k in keys}
        task = self.record["task"]
        facts["tokenization"] = {k: task[k] for k in ("max_length", "truncation", "clean")}
        facts.update(labels=self.label_names, text_pair=bool(task.get("text_pair_column")), backend=self.backend)
        export = self.folder / ONNX_DIR / "export.json"
        if export.is_file():
            facts["export"] = json.loads(export.read_text(encoding="utf-8"))
        return facts

    def encode(self, texts: list[str], pairs: list[str] | None = None) -> list[dict[str, list[int]]]:
        """Clean, cut and frame raw examples as training did (unpadded token ids)."""
        from trainers import clean_text

        texts = [clean_text(t, self.clean) for t in texts]
        if pairs is not None:
            pairs = [clean_text(t, self.clean) for t in pairs]
        return self._encode(texts, pairs)

    def run(self, examples: list[dict[str, list[int]]]) -> tuple[Any, Any]:
        """Class probabilities and sentence embeddings (numpy arrays) of encoded examples, as one padded batch."""
        import numpy as np

        width = max(len(e["input_ids"]) for e in examples)
        batch = {}
        for name in self.input_names:
            pad = self.pad_id if name == "input_ids" else 0
            rows = [e.get(name, [0] * len(e["input_ids"])) for e in examples]
            batch[name] = np.array([r + [pad] * (width - len(r)) for r in rows], dtype=np.int64)
        if self.backend == "torch":
            logits, embeddings = self._run_torch(batch)
        else:
            logits, embeddings = self._session.run(["logits", "embedding"], batch)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True), embeddings

    def _run_torch(self, batch: dict[str, Any]) -> tuple[Any, Any]:
        import torch

        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
            out = self._model(**tensors, output_hidden_states=True)
            embeddings = mean_pool(out.hidden_states[-1], tensors["attention_mask"])
        return out.logits.float().numpy(), embeddings.float().numpy()

    def score(
        self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 32
    ) -> tuple[list[dict[str, Any]], Any, Any]:
        """Score raw examples in batches of similar length.

        Returns:
            One ``{"label", "probabilities"}`` per example in input order, and the
            probabilities and embeddings as numpy arrays.
        """
        import numpy as np

        examples = self.encode(texts, pairs)
        order = np.argsort([len(e["input_ids"]) for e in examples], kind="stable")
        probs = np.zeros((len(examples), len(self.label_names)), dtype=np.float32)
        embeddings: Any = None
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            p, e = self.run([examples[i] for i in index])
            if embeddings is None:
                embeddings = np.zeros((len(examples), e.shape[1]), dtype=np.float32)
            probs[index], embeddings[index] = p, e
        return [self.result(row) for row in probs], probs, embeddings

    def result(self, probabilities: Any) -> dict[str, Any]:
        """One example's answer: its label and the probability of each label."""
        best = int(probabilities.argmax())
        return {
            "label": self.label_names[best],
            "probabilities": {n: round(float(p), 6) for n, p in zip(self.label_names, probabilities)},
        }


def mean_pool(hidden: Any, mask: Any) -> Any:
    """The mean of the hidden states over the real (unpadded) tokens: a sentence embedding."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


def onnx_session(path: Path) -> Any:
    """An onnxruntime CPU session for ``path``."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise StudyError("ONNX models need onnxruntime: pip install 'hpo-studies[serve]'") from e
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
