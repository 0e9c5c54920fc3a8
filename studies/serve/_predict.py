"""``studies predict``: read texts (arguments, stdin, CSV or JSONL), score them, write JSONL or a table."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from studies._errors import StudyError

TEXT_COLUMNS = ("text",)
PAIR_COLUMNS = ("text_pair",)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a CSV or JSONL file (by its extension), as dicts.

    Raises:
        StudyError: If the file is missing, of another kind, or not valid.
    """
    if not path.is_file():
        raise StudyError(f"{path} is not a file: give a .csv or .jsonl file of texts")
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8", newline="") as handle:
        if suffix == ".csv":
            return list(csv.DictReader(handle))
        if suffix in (".jsonl", ".json"):
            rows = []
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise StudyError(f"{path} line {number} is not JSON ({e.msg}): write one object per line") from e
                if not isinstance(row, dict):
                    raise StudyError(f"{path} line {number} is not a JSON object: write one object per line")
                rows.append(row)
            return rows
    raise StudyError(f"{path} is neither .csv nor .jsonl: convert it to one of them")


def columns_of(
    rows: list[dict[str, Any]], path: Path, task: dict[str, Any], text: str | None, pair: str | None, need_pair: bool
) -> tuple[list[str], list[str] | None]:
    """The texts (and second texts) of ``rows``.

    The columns are the ones named, else the training task's columns, else ``text`` / ``text_pair``.
    """
    if not rows:
        raise StudyError(f"{path} has no rows")
    present = set(rows[0])
    text = text or _first(present, (task.get("text_column"), *TEXT_COLUMNS))
    if text is None or text not in present:
        raise StudyError(f"{path} has no text column ({', '.join(sorted(present))}): name it with --text-column")
    pair = pair or _first(present, (task.get("text_pair_column"), *PAIR_COLUMNS))
    if need_pair and (pair is None or pair not in present):
        raise StudyError(f"{path} has no second-text column: name it with --pair-column")
    texts = [str(r.get(text) or "") for r in rows]
    pairs = [str(r.get(pair) or "") for r in rows] if pair in present else None
    empty = next((i for i, t in enumerate(texts) if not t.strip()), None)
    if empty is not None:
        raise StudyError(f"{path} row {empty + 1} has an empty {text!r}: remove it or fill it in")
    return texts, pairs


def _first(present: set[str], names: tuple[str | None, ...]) -> str | None:
    return next((n for n in names if n and n in present), None)


def read_stdin(stream: TextIO) -> tuple[list[str], list[str] | None]:
    """One example per line; a tab separates a text from its second text."""
    lines = [line.rstrip("\n") for line in stream if line.strip()]
    if not lines:
        raise StudyError("no texts: give them as arguments, with --file or --pair-file, or one per line on stdin")
    split = [line.split("\t", 1) for line in lines]
    if any(len(parts) == 2 for parts in split):
        return [p[0] for p in split], [p[1] if len(p) == 2 else "" for p in split]
    return lines, None


def write_results(
    results: list[dict[str, Any]], texts: list[str], pairs: list[str] | None, fmt: str, out: TextIO
) -> None:
    """Write one result per example: JSON lines (``jsonl``) or an aligned table (``table``)."""
    if fmt == "jsonl":
        for i, result in enumerate(results):
            record = {"text": texts[i], **({"text_pair": pairs[i]} if pairs else {}), **result}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    labels = list(results[0]["probabilities"]) if results else []
    rows: list[tuple[str, ...]] = [("label", *(f"p({n})" for n in labels), "text")]
    for i, scored in enumerate(results):
        shown = texts[i] if not pairs else f"{texts[i]} | {pairs[i]}"
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        rows.append((scored["label"], *(f"{scored['probabilities'][n]:.4f}" for n in labels), shown))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")


def predict(
    model: str,
    texts: list[str],
    *,
    pairs: list[str] | None = None,
    file: Path | None = None,
    pair_file: Path | None = None,
    text_column: str | None = None,
    pair_column: str | None = None,
    backend: str = "torch",
    batch_size: int = 32,
    fmt: str = "jsonl",
    out: TextIO | None = None,
    stdin: TextIO | None = None,
    storage_url: str | None = None,
) -> int:
    """Score texts given as arguments, in files, or on stdin; write the results. Returns how many."""
    from studies.serve._model import Scorer, read_record, resolve_model

    folder = resolve_model(model, storage_url)
    task = read_record(folder)["task"]
    if pairs is not None and len(pairs) != len(texts):
        raise StudyError(f"{len(texts)} texts but {len(pairs)} second texts (--pair): give one --pair per text")
    if file is not None or pair_file is not None:
        if texts:
            raise StudyError("give texts as arguments or in a file, not both")
        path: Path = file if file is not None else pair_file  # type: ignore[assignment]
        texts, pairs = columns_of(read_rows(path), path, task, text_column, pair_column, pair_file is not None)
    elif not texts:
        texts, pairs = read_stdin(stdin or sys.stdin)
    scorer = Scorer(folder, backend=backend)
    results, _, _ = scorer.score(texts, pairs, batch_size=batch_size)
    write_results(results, texts, pairs, fmt, out or sys.stdout)
    return len(results)
