"""Where a task's rows come from: the synthetic generator, local files, or the hub.

Each source has an *identity* (cheap to compute, no loading) that keys the
preparation cache, and a loader that returns a ``datasets.DatasetDict`` of raw
splits. The hub loader is one thin function, kept apart so that it is the only
code that needs a network.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainers._atomic import file_identity
from trainers._config import DataError, TaskSpec
from trainers._runtime import silenced

if TYPE_CHECKING:
    from datasets import DatasetDict

logger = logging.getLogger(__name__)

SYNTHETIC = "synthetic"
# Default split sizes of the synthetic source when the task does not set them.
SYNTHETIC_SIZES = {"train": 2000, "validation": 400, "test": 400}
SYNTHETIC_LABEL_NOISE = 0.05
_SYNTHETIC_VERSION = 1  # bump when the generator's output changes

# File suffix -> the ``datasets`` builder that reads it.
FILE_BUILDERS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def source_kind(task: TaskSpec) -> str:
    """Classify ``task.dataset`` as ``synthetic``, ``local`` (a file or folder) or ``hub`` (an id).

    Args:
        task: The task section.
    """
    name = task.dataset
    if name == SYNTHETIC:
        return "synthetic"
    path = Path(name).expanduser()
    if path.exists() or path.suffix.lower() in FILE_BUILDERS or name.startswith((".", "/", "~")):
        return "local"
    return "hub"


def synthetic_sizes(task: TaskSpec) -> dict[str, int]:
    """The synthetic source's split sizes: the task's sizes, or the defaults."""
    return {
        "train": task.train_size or SYNTHETIC_SIZES["train"],
        "validation": task.eval_size or SYNTHETIC_SIZES["validation"],
        "test": task.test_size or SYNTHETIC_SIZES["test"],
    }


def local_files(task: TaskSpec) -> dict[str, list[Path]]:
    """The data files of a local source, by split: one file is ``train_split``; a folder's files are named by split.

    Args:
        task: The task section, whose ``dataset`` is a local file or folder.

    Raises:
        DataError: If the path does not exist, has an unknown suffix, or the folder has no usable files.
    """
    path = Path(task.dataset).expanduser()
    known = ", ".join(sorted(FILE_BUILDERS))
    if not path.exists():
        raise DataError(
            f"task.dataset '{task.dataset}' does not exist (looked for {path.resolve()}): "
            "set task.dataset to an existing file or folder, 'synthetic', or a hub dataset id"
        )
    if path.is_file():
        if path.suffix.lower() not in FILE_BUILDERS:
            raise DataError(f"task.dataset '{task.dataset}' has an unknown suffix: use one of {known}")
        return {task.train_split: [path]}
    files: dict[str, list[Path]] = {}
    for file in sorted(path.iterdir()):
        if file.is_file() and file.suffix.lower() in FILE_BUILDERS:
            files.setdefault(file.name.split(".")[0], []).append(file)
    if not files:
        raise DataError(
            f"task.dataset folder '{task.dataset}' has no data files: put train/validation/test files ({known}) in it"
        )
    suffixes = {FILE_BUILDERS[f.suffix.lower()] for paths in files.values() for f in paths}
    if len(suffixes) > 1:
        formats = ", ".join(sorted(suffixes))
        raise DataError(
            f"task.dataset folder '{task.dataset}' mixes file formats ({formats}): keep one format per folder"
        )
    return files


def source_identity(task: TaskSpec) -> dict[str, Any]:
    """What identifies the source's content, for the cache key: file stats, hub names, or generator settings.

    Args:
        task: The task section.

    Raises:
        DataError: If a local source is missing.
    """
    kind = source_kind(task)
    if kind == "synthetic":
        return {
            "kind": kind,
            "version": _SYNTHETIC_VERSION,
            "sizes": synthetic_sizes(task),
            "seed": task.seed,
            "label_noise": SYNTHETIC_LABEL_NOISE,
            **({"classes": task.synthetic_classes} if task.synthetic_classes != 2 else {}),
        }
    if kind == "local":
        files = local_files(task)
        return {"kind": kind, "files": {split: [file_identity(f) for f in paths] for split, paths in files.items()}}
    return {"kind": kind, "name": task.dataset, "config": task.dataset_config, "revision": task.dataset_revision}


def load_source(task: TaskSpec, cache_dir: Path) -> DatasetDict:
    """Load the raw splits of the task's source.

    Args:
        task: The task section.
        cache_dir: Where ``datasets`` may keep its own Arrow cache.

    Raises:
        DataError: If the source is missing or cannot be read.
    """
    import datasets

    kind = source_kind(task)
    if kind == "synthetic":
        from trainers._synthetic import generate

        rows = generate(
            sum(synthetic_sizes(task).values()),
            seed=task.seed,
            label_noise=SYNTHETIC_LABEL_NOISE,
            classes=task.synthetic_classes,
        )
        return datasets.DatasetDict({task.train_split: datasets.Dataset.from_list(rows)})
    if kind == "local":
        files = local_files(task)
        builder = FILE_BUILDERS[next(iter(files.values()))[0].suffix.lower()]
        limit = max_data_bytes()
        for file in (f for paths in files.values() for f in paths):
            _check_size(task, file, limit)
            _check_not_empty(task, file, builder)
        data_files = {split: [str(f) for f in paths] for split, paths in files.items()}
        try:
            with silenced():  # the parse error is in the DataError; the library would log it twice
                return datasets.load_dataset(builder, data_files=data_files, cache_dir=str(cache_dir))
        except Exception as e:  # pyarrow/pandas parse errors have many types
            cause = _cause(e)
            if isinstance(cause, ValueError) and "corresponds to no data" in str(cause):  # e.g. a JSON file with []
                raise DataError(
                    f"task.dataset '{task.dataset}' has no rows: put the rows in it, "
                    "or set task.dataset to the right file"
                ) from e
            raise DataError(
                f"task.dataset '{task.dataset}' cannot be read as {builder} ({_first_line(cause)}): "
                "fix the file where the error points, or give it the suffix of its real format"
            ) from e
    return load_hub_dataset(task.dataset, task.dataset_config, task.dataset_revision, cache_dir=str(cache_dir))


MAX_DATA_ENV = "STUDIES_MAX_DATA_MB"
DEFAULT_MAX_DATA_MB = 4096


def max_data_bytes() -> int:
    """The largest local data file a task may read: ``STUDIES_MAX_DATA_MB`` megabytes (default 4096).

    Raises:
        DataError: If the variable is not a positive number.
    """
    raw = os.environ.get(MAX_DATA_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_DATA_MB * 1024 * 1024
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = float("nan")
    if not math.isfinite(megabytes) or megabytes <= 0:
        raise DataError(f"{MAX_DATA_ENV}={raw!r} is not a positive number of megabytes: e.g. {MAX_DATA_ENV}=8192")
    return int(megabytes * 1024 * 1024)


def _check_size(task: TaskSpec, file: Path, limit: int) -> None:
    """Refuse a data file larger than ``limit`` bytes, before any of it is read."""
    size = file.stat().st_size
    if size > limit:
        raise DataError(
            f"task.dataset file {file.name} is {size / 2**20:.1f} MB, more than the limit of {limit / 2**20:.1f} MB: "
            f"sample it down, or raise the limit with {MAX_DATA_ENV}=<megabytes>"
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _cause(error: BaseException) -> BaseException:
    """The parse error inside ``datasets``' generic "An error occurred while generating the dataset"."""
    from datasets.exceptions import DatasetGenerationError

    while isinstance(error, DatasetGenerationError) and (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__
    return error


# Read at most this much of a file to tell that it is empty or only a CSV header.
_SNIFF_BYTES = 64 * 1024


def _check_not_empty(task: TaskSpec, file: Path, builder: str) -> None:
    """Refuse a data file that is empty or blank, a CSV file with a header but no rows, or a 0-row parquet file.

    Raises:
        DataError: Naming the file.
    """
    where = f"task.dataset '{task.dataset}'" + ("" if Path(task.dataset).expanduser() == file else f" ({file.name})")
    fix = "or set task.dataset to the right file"
    if builder == "parquet":
        import pyarrow.parquet

        if not file.stat().st_size:
            raise DataError(f"{where} is empty: put the rows in it, {fix}")
        try:
            rows = pyarrow.parquet.ParquetFile(file).metadata.num_rows
        except Exception:  # not a parquet file: the loader's own error says why
            return
        if not rows:
            raise DataError(f"{where} has no rows: put the rows in it, {fix}")
        return
    with file.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if len(head) == _SNIFF_BYTES:
        return
    lines = [line for line in head.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{where} is empty: put the rows in it, {fix}")
    if builder == "csv" and len(lines) == 1:
        header = lines[0].decode(errors="replace")
        raise DataError(f"{where} has a header ({header}) but no rows: put the rows under it, {fix}")


def load_hub_dataset(name: str, config: str | None, revision: str | None, *, cache_dir: str) -> DatasetDict:
    """Download (or reuse) a hub data set: the only data path that needs a network.

    Args:
        name: The hub id, e.g. ``stanfordnlp/imdb`` or ``google/boolq``.
        config: The data set's configuration name, if it has several.
        revision: A branch, tag or commit; ``None`` is the latest.
        cache_dir: The ``datasets`` download cache.

    Raises:
        DataError: If the data set cannot be loaded (unknown id, no network).
    """
    import datasets

    from trainers._hub import hub_access, not_cached

    with hub_access() as access:
        try:
            return datasets.load_dataset(name, config, revision=revision, cache_dir=cache_dir)
        except Exception as e:  # hub, network and builder errors have many types
            if access != "online":
                raise DataError(f"{not_cached(f'task.dataset {name!r}', access)}, or use a local file") from e
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(
                f"task.dataset '{name}' could not be loaded from the Hugging Face hub ({message}): "
                "check the id, task.dataset_config and your network, or use a local file"
            ) from e


def hub_commit(splits: DatasetDict) -> str | None:
    """The hub commit a loaded hub data set came from: ``datasets`` keeps its Arrow files under the commit hash."""
    import re

    for split in splits.values():
        for entry in split.cache_files:
            folder = Path(entry["filename"]).parent.name
            if re.fullmatch(r"[0-9a-f]{40}", folder):
                return folder
    return None
