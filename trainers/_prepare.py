"""Prepare a study's data and base model once, in a content-keyed cache.

``prepare`` runs in the study's driver process. It loads and cleans the rows,
maps the labels, makes the splits, tokenizes every split once, and
materializes the base model folder; every trial then reads the same Arrow
files and starts from the same weights. The cache has two kinds of entries:

- ``data-<key>``: the tokenized splits, keyed by the source's identity (file
  path, size and modification time; hub id, config and revision; or the
  generator's settings), the task's split, sample, cleaning, label and
  truncation settings, and the tokenizer's identity;
- ``model-<key>``: the base model and tokenizer, keyed by the model section
  (and, for tiny-bert, by the data its tokenizer was trained on).

Each entry is built in a temporary folder and renamed into place, so a crashed
or concurrent preparation never leaves a half-written entry behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainers._atomic import content_key, publish, staging_dir
from trainers._config import DataError, ModelSpec, TaskSpec
from trainers._models import (
    TINY_BERT,
    ModelError,
    build_tiny_bert,
    check_max_length,
    local_dir,
    materialize,
    model_identity,
    model_kind,
    read_revision,
    tokenizer_identity,
    train_wordpiece,
    warn_unsafe,
)
from trainers._sources import hub_commit, local_files, source_identity, source_kind, synthetic_sizes

logger = logging.getLogger(__name__)

_FORMAT = 1  # bump when the layout or content of cache entries changes
_META = "prepared.json"


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A prepared task: tokenized splits and a base model folder, shared by every trial.

    Attributes:
        data_dir: A ``datasets.DatasetDict`` saved with ``save_to_disk``: splits
            ``train``, ``validation`` and ``test`` with ``input_ids``,
            ``attention_mask``, ``token_type_ids`` (when the model takes them)
            and ``labels``, unpadded.
        model_dir: The base model and its tokenizer, loadable with ``from_pretrained``.
        num_labels: The number of classes.
        label_names: The class names, by label index.
        text_pair: Whether the examples are text pairs.
        sizes: Rows per split.
        fingerprint: The cache key of this preparation (data and model).
        cache_hit: Whether everything was found in the cache.
        trust_remote_code: Whether the model's own Python code may run when it loads (the spec's choice).
        positive_index: The index of the positive label (binary F1, ROC AUC).
        revisions: Where the model and data came from: ``model``/``dataset`` are hub
            commit hashes when they came from the hub, else ``None``.
        variants: ``Prepared.to_dict()`` of the same task tokenized with other
            ``max_length``/``truncation`` values a search space tunes, by :func:`variant_key`.
    """

    data_dir: Path
    model_dir: Path
    num_labels: int
    label_names: list[str]
    text_pair: bool
    sizes: dict[str, int]
    fingerprint: str
    cache_hit: bool = False
    trust_remote_code: bool = False
    positive_index: int = 1
    revisions: dict[str, str | None] = dataclasses.field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict, to ship to workers; :meth:`from_dict` reverses it."""
        data = dataclasses.asdict(self)
        data.update(data_dir=str(self.data_dir), model_dir=str(self.model_dir))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prepared:
        """Rebuild a :class:`Prepared` from :meth:`to_dict`'s output.

        Args:
            data: The dict; unknown keys are ignored.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values.update(data_dir=Path(data["data_dir"]), model_dir=Path(data["model_dir"]))
        return cls(**values)

    @property
    def positive_label(self) -> str:
        return self.label_names[self.positive_index]

    def for_params(self, params: dict[str, Any]) -> Prepared:
        """The preparation a trial with ``params`` trains on: the variant its ``max_length``/``truncation`` name."""
        key = variant_key(params)
        if key is None:
            return self
        if key not in self.variants:
            raise ValueError(f"no data was prepared for {key}: prepare every value the search space can take")
        return Prepared.from_dict(self.variants[key])


def variant_key(params: dict[str, Any]) -> str | None:
    """The key of the data variant that ``params`` select (``None``: they tune neither max_length nor truncation)."""
    chosen = {k: params[k] for k in ("max_length", "truncation") if k in params}
    return json.dumps(chosen, sort_keys=True) if chosen else None


def _ensure(entry: Path, build: Callable[[Path], None]) -> bool:
    """Build the cache ``entry`` unless it exists; return whether it existed.

    Raises:
        DataError: If the cache folder cannot be created or written.
    """
    if entry.is_dir():
        return True
    with contextlib.ExitStack() as stack:
        try:
            staging = stack.enter_context(staging_dir(entry))
        except OSError as e:
            raise DataError(_unwritable(entry.parent, e)) from e
        build(staging)
        publish(staging, entry, replace=False)
    return False


def _unwritable(folder: Path, error: OSError) -> str:
    """Say why the cache ``folder`` cannot be written: the OS's reason, or the part of its path that is a file."""
    reason = error.strerror or type(error).__name__
    for part in [folder, *folder.parents]:
        if part.exists() and not part.is_dir():
            reason = f"{part} is a file"
            break
    return f"the cache folder {folder} cannot be written ({reason}): set work_dir to a writable folder"


def _source_name(task: TaskSpec) -> str:
    if source_kind(task) == "local":
        files = [f for paths in local_files(task).values() for f in paths]
        return files[0].name if len(files) == 1 else Path(task.dataset).name
    return task.dataset


def _build_data(task: TaskSpec, model: ModelSpec, base_dir: Path | None, cache_dir: Path, staging: Path) -> None:
    """Load, split, tokenize and save the task's data (and the tiny-bert tokenizer) into ``staging``."""
    import transformers

    from trainers._data import make_splits
    from trainers._sources import load_source
    from trainers._tokenize import tokenize_splits

    started = time.perf_counter()
    raw = load_source(task, cache_dir / "hf-datasets")
    revision = hub_commit(raw) if source_kind(task) == "hub" else None
    splits, label_names = make_splits(task, raw, _source_name(task))
    text_pair = task.text_pair_column is not None
    if base_dir is None:
        train = splits["train"]
        columns = ["text", "text_pair"] if text_pair else ["text"]
        texts = ([t for c in columns for t in batch[c]] for batch in train.iter(batch_size=1000))
        tokenizer = train_wordpiece(texts, model.vocab_size, task.max_length)
        tokenizer.save_pretrained(staging / "tokenizer")
    else:
        tokenizer = transformers.AutoTokenizer.from_pretrained(base_dir, trust_remote_code=model.trust_remote_code)
        if not tokenizer.is_fast:
            raise ModelError(f"model.name '{model.name}' has no fast tokenizer: use a model with a tokenizer.json")
    tokenized, n_cut = tokenize_splits(splits, tokenizer, task.max_length, task.truncation)
    tokenized.save_to_disk(str(staging / "dataset"))
    sizes = {name: len(split) for name, split in tokenized.items()}
    meta = {
        "label_names": label_names,
        "text_pair": text_pair,
        "sizes": sizes,
        "num_cut": n_cut,
        "revision": revision,
        "task": task.model_dump(),
    }
    (staging / _META).write_text(json.dumps(meta, indent=2))
    total = sum(sizes.values())
    logger.info(
        "tokenized %d examples (%s; %d cut to %d tokens, truncation %s) in %.1f s",
        total,
        ", ".join(f"{k} {v}" for k, v in sizes.items()),
        n_cut,
        task.max_length,
        task.truncation,
        time.perf_counter() - started,
    )


def prepare(task: TaskSpec, model: ModelSpec, cache_dir: str | Path, *, positions: int | None = None) -> Prepared:
    """Prepare the task's tokenized splits and base model, reusing the cache when nothing changed.

    Run once per study, in the driver; ship the result to workers with
    :meth:`Prepared.to_dict`.

    Args:
        task: The task section (data, labels, splits, tokenization).
        model: The model section.
        cache_dir: The cache folder; entries are added, never changed.
        positions: The size of tiny-bert's position table (default ``task.max_length``), so that
            every ``max_length`` a study tunes runs on the same base model.

    Returns:
        The prepared task.

    Raises:
        DataError: If the data cannot be loaded as declared.
        ModelError: If the model cannot be found or built, or ``max_length`` exceeds its position table.
    """
    from trainers._runtime import quiet

    cache_dir = Path(cache_dir).resolve()  # workers may run in another folder
    if source_kind(task) == "synthetic":
        sizes = synthetic_sizes(task)
        task = task.model_copy(
            update={"train_size": sizes["train"], "eval_size": sizes["validation"], "test_size": sizes["test"]}
        )
    positions = max(positions or task.max_length, task.max_length)
    # The positive label only picks which class is scored: it does not change the prepared data.
    data_key = content_key(
        _FORMAT, source_identity(task), task.model_dump(exclude={"positive_label"}), tokenizer_identity(model)
    )
    kind = model_kind(model)
    model_key = content_key(
        _FORMAT, model_identity(model, positions, task.seed), data_key if kind == TINY_BERT else None
    )
    data_entry = cache_dir / f"data-{data_key}"
    model_entry = cache_dir / f"model-{model_key}"

    with quiet():
        model_hit = True
        if kind != "local" or model.random_init:
            warn_unsafe(model)
        base_dir: Path | None
        if kind == TINY_BERT:
            base_dir = None
        elif kind == "local" and not model.random_init:
            base_dir = local_dir(model).resolve()
            warn_unsafe(model, base_dir)
        else:
            model_hit = _ensure(model_entry, lambda staging: materialize(model, task.seed, staging))
            base_dir = model_entry
        if base_dir is not None:
            check_max_length(base_dir, model.name, task.max_length)
        data_hit = _ensure(data_entry, lambda staging: _build_data(task, model, base_dir, cache_dir, staging))
        if data_hit:
            logger.info("reusing tokenized data at %s", data_entry)
        if kind == TINY_BERT:

            def build(staging: Path) -> None:
                import transformers

                tokenizer = transformers.AutoTokenizer.from_pretrained(data_entry / "tokenizer")
                build_tiny_bert(model, tokenizer, positions, task.seed, staging)

            model_hit = _ensure(model_entry, build)
            base_dir = model_entry
    assert base_dir is not None  # every kind of model has its folder by now

    meta = json.loads((data_entry / _META).read_text())
    if meta["sizes"].get("train", 0) == 0:
        raise DataError(f"task.dataset '{task.dataset}' has no training rows left after loading: check the data")
    revisions = {
        "model_source": kind,
        "model": read_revision(model_entry) if kind == "hub" else None,
        "dataset_source": source_kind(task),
        "dataset": meta.get("revision"),
    }
    return Prepared(
        data_dir=data_entry / "dataset",
        model_dir=base_dir,
        num_labels=len(meta["label_names"]),
        label_names=meta["label_names"],
        text_pair=meta["text_pair"],
        sizes=meta["sizes"],
        fingerprint=content_key(data_key, model_key),
        cache_hit=data_hit and model_hit,
        trust_remote_code=model.trust_remote_code,
        positive_index=positive_index(task, meta["label_names"]),
        revisions=revisions,
    )


def positive_index(task: TaskSpec, label_names: list[str]) -> int:
    """The index of ``task.positive_label`` among the prepared labels (default: the second label).

    Raises:
        DataError: If the positive label is not one of the labels.
    """
    if task.positive_label is None:
        return 1
    lowered = [name.lower() for name in label_names]
    if task.positive_label.lower() not in lowered:
        raise DataError(
            f"task.positive_label {task.positive_label!r} is not among the labels ({', '.join(label_names)}): "
            "name one of them"
        )
    return lowered.index(task.positive_label.lower())
