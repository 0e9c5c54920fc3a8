"""Pieces every ``studies`` subcommand module shares: common options and plain-text tables."""

from __future__ import annotations

import argparse
import math
from typing import Any


def storage_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--storage URL`` to a subcommand."""
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="study store URL (beats STUDIES_STORAGE and the spec); default sqlite:///studies.db",
    )


def port_number(text: str) -> int:
    """An ``argparse`` type for a TCP port (1 to 65535)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number: give one from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number: give one from 1 to 65535")
    return port


def short(value: Any) -> str:
    """A parameter value for a table cell: floats to 3 significant digits, ``None`` as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if math.isfinite(value) else str(value)
    return str(value)


def table(rows: list[tuple[str, ...]]) -> None:
    """Print ``rows`` (the first is the header) as left-aligned columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
