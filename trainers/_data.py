"""From raw splits to clean ``train``/``validation``/``test`` splits with integer labels.

Columns are checked against the source (an error lists the real ones), label
values are mapped to indexes, texts are cleaned, and the evaluation and test
splits are taken from the source or carved from the training split with a
seeded permutation, so the same task always gives the same rows.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from trainers._config import DataError, TaskSpec

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

logger = logging.getLogger(__name__)

_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_SPACES = re.compile(r"\s+")


def clean_text(text: str, steps: Sequence[str]) -> str:
    """Apply the cleaning ``steps`` in order.

    ``html`` replaces tags (``<br />``) with spaces and unescapes entities
    (``&amp;`` → ``&``); ``whitespace`` collapses runs of whitespace and strips
    the ends.

    Args:
        text: One text.
        steps: Step names from ``task.clean``.
    """
    for step in steps:
        if step == "html":
            text = html.unescape(_TAG.sub(" ", text))
        elif step == "whitespace":
            text = _SPACES.sub(" ", text).strip()
    return text


def _normalize(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def label_lookup(task: TaskSpec, values: set[Any], names: list[str] | None = None) -> tuple[dict[Any, int], list[str]]:
    """Map raw label values to indexes.

    With ``task.labels``, a value maps to the position of its lowercase string
    form (``True`` → ``"true"``). Without it, integers are kept as indexes and
    strings or booleans are sorted.

    Args:
        task: The task section.
        values: The distinct raw values (already converted to class names for a ``ClassLabel`` column).
        names: The class names of a ``ClassLabel`` column, used when ``task.labels`` is not set.

    Returns:
        The lookup from raw value to index, and the label names by index.

    Raises:
        DataError: If a value is not in ``task.labels`` or the values cannot be told apart.
    """
    values = {_normalize(v) for v in values}
    if task.labels is not None:
        index = {name.lower(): i for i, name in enumerate(task.labels)}
        if len(index) != len(task.labels):
            raise DataError(f"task.labels {task.labels} has duplicates (case is ignored): list each label once")
        lookup = {}
        for value in sorted(values, key=str):
            key = str(value).lower()
            if key not in index:
                raise DataError(
                    f"task.label_column '{task.label_column}' has the value '{value}', which is not in task.labels "
                    f"{task.labels}: add it to task.labels (values seen: {', '.join(sorted(map(str, values)))})"
                )
            lookup[value] = index[key]
        return lookup, list(task.labels)
    if names is not None:
        return {name: i for i, name in enumerate(names)}, list(names)
    kinds = {type(v) for v in values}
    if len(kinds) > 1:
        found = ", ".join(sorted(k.__name__ for k in kinds))
        raise DataError(
            f"task.label_column '{task.label_column}' mixes label types ({found}): write every label with one type "
            "(all integers or all strings), or set task.labels to the class names (values match by their string form)"
        )
    if kinds == {int}:
        if min(values) < 0:
            raise DataError(
                f"task.label_column '{task.label_column}' has negative integer labels: "
                "set task.labels to the label names in index order"
            )
        lookup = {v: v for v in values}
        names = [str(i) for i in range(max(values) + 1)]
    elif kinds in ({str}, {bool}):
        ordered = sorted(values)
        lookup = {v: i for i, v in enumerate(ordered)}
        names = [str(v).lower() for v in ordered]
    else:
        found = ", ".join(sorted(k.__name__ for k in kinds))
        raise DataError(
            f"task.label_column '{task.label_column}' has labels of type {found}: "
            "use integer, string or boolean labels, or set task.labels"
        )
    if len(names) < 2:
        raise DataError(
            f"task.label_column '{task.label_column}' has only one label value ({names[0]}): "
            "check task.label_column or set task.labels to all the classes"
        )
    return lookup, names


def _kinds(values: Any) -> str:
    return ", ".join(sorted({type(v).__name__ for v in values if v is not None}))


def _describe(feature: Any, split: Dataset, column: str) -> str:
    """What a column that is not a text column holds, for an error message."""
    import datasets

    if isinstance(feature, datasets.Value):
        if feature.dtype == "bool":
            return "true/false values"
        if feature.dtype.startswith(("int", "uint", "float", "decimal")):
            return f"numbers ({feature.dtype})"
        return f"{feature.dtype} values"
    if isinstance(feature, datasets.Json):
        return f"values of several types ({_kinds(split[column])})"
    if isinstance(feature, datasets.ClassLabel):
        return "class labels"
    if isinstance(feature, (datasets.List, datasets.LargeList, datasets.Sequence, list)):
        return "lists"
    if isinstance(feature, dict):
        return "records"
    return f"{type(feature).__name__} values"


def _is_text(feature: Any) -> bool:
    import datasets

    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")


def _check_columns(task: TaskSpec, split: Dataset, source: str) -> None:
    """Check that the task's columns exist, are distinct, and that its text columns hold texts."""
    import datasets

    columns = split.column_names
    fields = [("text_column", task.text_column), ("label_column", task.label_column)]
    if task.text_pair_column:
        fields.insert(1, ("text_pair_column", task.text_pair_column))
    for field, column in fields:
        if column not in columns:
            raise DataError(
                f"task.{field} '{column}' is not a column of {source} (columns: {', '.join(columns)}): "
                f"set task.{field} to one of them"
            )
    roles = {"text_column": "texts", "text_pair_column": "second texts", "label_column": "labels"}
    seen: dict[str, str] = {}
    for field, column in fields:
        if column in seen:
            raise DataError(
                f"task.{seen[column]} and task.{field} are both '{column}': set task.{field} to the column of "
                f"{roles[field]} (columns: {', '.join(columns)})"
            )
        seen[column] = field
    texts = [c for c in columns if _is_text(split.features[c])]
    for field, column in fields[:-1]:
        feature = split.features[column]
        if _is_text(feature):
            continue
        if len(split) and split.data.column(column).null_count == len(split):
            problem = "is empty in every row"
        elif isinstance(feature, datasets.Json):
            raise DataError(
                f"task.{field} '{column}' of {source} mixes texts with other values ({_kinds(split[column])}): "
                "write every value of the column as a string"
            )
        else:
            problem = f"holds {_describe(feature, split, column)}, not texts"
        others = [c for c in texts if c not in seen]
        choices = f"text columns: {', '.join(others)}" if others else f"none holds texts; columns: {', '.join(columns)}"
        raise DataError(
            f"task.{field} '{column}' of {source} {problem}: set task.{field} to a column of texts ({choices})"
        )


def _select(task: TaskSpec, split: Dataset) -> Dataset:
    """Keep the task's columns under the names text, text_pair and label; drop rows with missing values."""
    renames = {task.text_column: "text", task.label_column: "label"}
    if task.text_pair_column:
        renames[task.text_pair_column] = "text_pair"
    split = split.select_columns(list(renames)).rename_columns(renames)
    before = len(split)
    columns = list(renames.values())

    def complete(batch: dict[str, list[Any]]) -> list[bool]:
        return [all(values) for values in zip(*((v is not None for v in batch[c]) for c in columns), strict=True)]

    split = split.filter(complete, batched=True, keep_in_memory=True)
    if len(split) < before:
        logger.warning("dropped %d rows with a missing text or label", before - len(split))
    return split


def _permutation(n: int, seed: int) -> list[int]:
    import numpy as np

    return np.random.default_rng(seed).permutation(n).tolist()


def _carve_size(size: int | None, fraction: float, total: int) -> int:
    return size if size is not None else max(1, round(total * fraction))


def _take(split: Dataset, indices: list[int]) -> Dataset:
    return split.select(sorted(indices))


def _subsample(split: Dataset, size: int | None, seed: int, name: str) -> Dataset:
    if size is None or size >= len(split):
        if size is not None and size > len(split):
            logger.warning("task.%s_size is %d but the %s split has %d rows: using all", name, size, name, len(split))
        return split
    return _take(split, _permutation(len(split), seed)[:size])


def make_splits(task: TaskSpec, raw: DatasetDict, source: str) -> tuple[DatasetDict, list[str]]:
    """Build the ``train``, ``validation`` and ``test`` splits of the task.

    Args:
        task: The task section (for the synthetic source, with its sizes filled in).
        raw: The raw splits of the source.
        source: How to name the source in errors (``imdb.csv``, ``stanfordnlp/imdb``).

    Returns:
        The splits with columns ``text``, optionally ``text_pair``, and ``labels``
        (an index), and the label names.

    Raises:
        DataError: If a split or column is missing, a label cannot be mapped, or the sizes do not fit.
    """
    import datasets

    wanted = {"train": task.train_split, "validation": task.eval_split, "test": task.test_split}
    for key, field in (("train", "train_split"), ("validation", "eval_split"), ("test", "test_split")):
        name = wanted[key]
        if name is not None and name not in raw:
            raise DataError(
                f"task.{field} '{name}' is not a split of {source} (splits: {', '.join(raw)}): "
                f"set task.{field} to one of them" + ("" if key == "train" else ", or leave it unset to carve one")
            )
    splits = {}
    for key, name in wanted.items():
        if name is not None:
            where = f"{source} ({name} split)" if len(raw) > 1 else source
            _check_columns(task, raw[name], where)
            splits[key] = _select(task, raw[name])
            if not len(splits[key]):
                raise DataError(
                    f"{where} has no rows"
                    + (f" with both a text and a label (all {len(raw[name])} lack one)" if len(raw[name]) else "")
                    + ": check task.dataset and the task's columns"
                )

    feature = splits["train"].features["label"]
    names = feature.names if isinstance(feature, datasets.ClassLabel) else None
    values: set[Any] = set()
    for key, split in splits.items():
        found = _label_values(task, split, source)
        try:
            values.update(feature.int2str(found) if names else found)
        except ValueError as e:  # e.g. -1 in an unlabelled hub test split
            raise DataError(
                f"the {wanted[key]} split of {source} has labels outside its classes ({e}): "
                "choose a labelled split for task.eval_split/test_split or leave it unset"
            ) from e
    lookup, label_names = label_lookup(task, values, names)

    def convert(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        labels = feature.int2str(batch["label"]) if names else batch["label"]
        out: dict[str, list[Any]] = {"labels": [lookup[_normalize(v)] for v in labels]}
        for column in ("text", "text_pair"):
            if column in batch:
                out[column] = [clean_text(str(t), task.clean) for t in batch[column]]
        return out

    splits = {
        key: split.map(convert, batched=True, remove_columns=["label"], keep_in_memory=True)
        for key, split in splits.items()
    }
    splits = _carve(task, splits)
    seen = splits["train"].unique("labels")
    if len(seen) < 2:
        raise DataError(
            f"task.label_column '{task.label_column}' has only one label value ({label_names[seen[0]]}) in the "
            f"{len(splits['train'])} training rows of {source}: a classifier needs at least two classes; "
            "check task.label_column" + (", or raise task.train_size" if task.train_size is not None else "")
        )
    return datasets.DatasetDict(splits), label_names


def _label_values(task: TaskSpec, split: Dataset, source: str) -> list[Any]:
    """The distinct raw labels of a split; a JSON column with several types is read value by value.

    Raises:
        DataError: If the label column holds something other than integers, strings or booleans.
    """
    import datasets

    feature = split.features["label"]
    if isinstance(feature, (datasets.Value, datasets.ClassLabel)):
        return split.unique("label")
    values = list(split["label"]) if isinstance(feature, datasets.Json) else []
    if not values or any(isinstance(v, (dict, list)) for v in values):
        raise DataError(
            f"task.label_column '{task.label_column}' of {source} holds {_describe(feature, split, 'label')}, "
            "not labels: set task.label_column to a column of integer, string or boolean labels"
        )
    return list(set(values))


def _carve(task: TaskSpec, splits: dict[str, Dataset]) -> dict[str, Dataset]:
    """Carve the missing evaluation/test splits from train, then subsample every split to its size."""
    train = splits["train"]
    total = len(train)
    n_test = 0 if "test" in splits else _carve_size(task.test_size, task.test_fraction, total)
    n_eval = 0 if "validation" in splits else _carve_size(task.eval_size, task.eval_fraction, total)
    if n_test + n_eval >= total:
        raise DataError(
            f"the {task.train_split} split has {total} rows, too few to carve {n_eval} evaluation and {n_test} test "
            "rows from it: lower task.eval_size/test_size (or the fractions), or set task.eval_split/test_split"
        )
    order = _permutation(total, task.seed)
    result = {}
    if n_test:
        result["test"] = _take(train, order[:n_test])
    if n_eval:
        result["validation"] = _take(train, order[n_test : n_test + n_eval])
    rest = order[n_test + n_eval :]
    if task.train_size is not None:
        if task.train_size > len(rest):
            logger.warning("task.train_size is %d but %d training rows remain: using all", task.train_size, len(rest))
        rest = rest[: task.train_size]
    result["train"] = _take(train, rest)
    # Source-provided splits are only subsampled; carved ones have their size already.
    if "validation" in splits:
        result["validation"] = _subsample(splits["validation"], task.eval_size, task.seed, "eval")
    if "test" in splits:
        result["test"] = _subsample(splits["test"], task.test_size, task.seed + 1, "test")
    return {key: result[key] for key in ("train", "validation", "test")}
