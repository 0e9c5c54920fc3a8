"""The commands that use a promoted model: ``predict``, ``serve``, ``export`` and ``drift``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from studies._cli_common import port_number, storage_option

_MODEL_HELP = "a promoted model folder, or a study name (its promoted folder)"
_BACKENDS = ("torch", "onnx", "onnx-int8")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive: give 1 or more")
    return value


def _input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file", type=Path, metavar="F", help="a .csv or .jsonl file of texts (column text, or the training one)"
    )
    parser.add_argument("--pair-file", type=Path, metavar="F", help="a .csv or .jsonl file of text pairs")
    parser.add_argument("--text-column", metavar="NAME", help="the text column of --file / --pair-file")
    parser.add_argument("--pair-column", metavar="NAME", help="the second-text column of --file / --pair-file")


def register(sub: Any) -> None:
    """Add ``predict``, ``serve``, ``export`` and ``drift`` to the ``studies`` command."""
    predict = sub.add_parser("predict", help="label texts or text pairs with a promoted model")
    predict.add_argument("model", metavar="MODEL_DIR_OR_STUDY", help=_MODEL_HELP)
    predict.add_argument(
        "texts", nargs="*", metavar="TEXT", help="texts to label (else --file, else stdin, one per line)"
    )
    predict.add_argument("--pair", action="append", metavar="TEXT", help="the second text of each TEXT, in order")
    _input_options(predict)
    predict.add_argument("--format", choices=("jsonl", "table"), default="jsonl", help="output format (default jsonl)")
    predict.add_argument("--output", type=Path, metavar="F", help="write here instead of stdout")
    predict.add_argument("--backend", choices=_BACKENDS, default="torch")
    predict.add_argument("--batch-size", type=_positive, default=32)
    storage_option(predict)
    predict.set_defaults(handler=cmd_predict)

    serve = sub.add_parser("serve", help="serve a promoted model over HTTP (POST /score, /metrics, /metadata)")
    serve.add_argument("model", metavar="MODEL_DIR_OR_STUDY", help=_MODEL_HELP)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=port_number, default=8000)
    serve.add_argument("--allow-remote", action="store_true", help="allow a --host other machines can reach")
    serve.add_argument("--backend", choices=_BACKENDS, default="torch", help="onnx / onnx-int8 need `studies export`")
    serve.add_argument("--max-items", type=_positive, default=64, help="examples per request")
    serve.add_argument("--max-chars", type=_positive, default=20_000, help="characters per text")
    serve.add_argument("--max-body-bytes", type=_positive, default=1_000_000)
    serve.add_argument("--max-batch", type=_positive, default=32, help="examples per forward pass")
    serve.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests")
    serve.add_argument("--drift-window", type=_positive, default=200, help="recent inputs the drift test looks at")
    serve.add_argument("--threads", type=_positive, help="torch threads")
    serve.add_argument("--access-log", action="store_true", help="log method, path and status of each request")
    storage_option(serve)
    serve.set_defaults(handler=cmd_serve)

    export = sub.add_parser("export", help="export a promoted model to ONNX (optionally int8) and score it on test")
    export.add_argument("model", metavar="MODEL_DIR_OR_STUDY", help=_MODEL_HELP)
    export.add_argument("--format", choices=("onnx",), default="onnx")
    export.add_argument("--quantize", choices=("int8",), help="also write a dynamically quantized int8 model")
    storage_option(export)
    export.set_defaults(handler=cmd_export)

    drift = sub.add_parser("drift", help="test new texts for drift against the model's training inputs")
    drift.add_argument("model", metavar="MODEL_DIR_OR_STUDY", help=_MODEL_HELP)
    _input_options(drift)
    drift.add_argument("--backend", choices=_BACKENDS, default="torch")
    storage_option(drift)
    drift.set_defaults(handler=cmd_drift)


def cmd_predict(args: argparse.Namespace) -> int:
    from studies._errors import StudyError
    from studies.serve import predict

    if args.output is not None:
        try:
            out = args.output.open("w", encoding="utf-8")
        except OSError as e:
            raise StudyError(f"cannot write {args.output}: {e.strerror}") from e
    else:
        out = sys.stdout
    try:
        predict(
            args.model,
            args.texts,
            pairs=args.pair,
            file=args.file,
            pair_file=args.pair_file,
            text_column=args.text_column,
            pair_column=args.pair_column,
            backend=args.backend,
            batch_size=args.batch_size,
            fmt=args.format,
            out=out,
            storage_url=args.storage,
        )
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from studies.serve import Limits, serve

    limits = Limits(
        max_items=args.max_items,
        max_chars=args.max_chars,
        max_body_bytes=args.max_body_bytes,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        drift_window=args.drift_window,
    )
    serve(
        args.model,
        host=args.host,
        port=args.port,
        backend=args.backend,
        allow_remote=args.allow_remote,
        limits=limits,
        storage_url=args.storage,
        threads=args.threads,
        access_log=args.access_log,
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from studies.serve import export_onnx, resolve_model

    folder = resolve_model(args.model, args.storage)
    export = export_onnx(folder, quantize=args.quantize)
    for name, m in export["models"].items():
        print(
            f"{name:10s} test accuracy {m['accuracy']:.4f}  p50 {m['latency_ms_p50']:.2f} ms  "
            f"p99 {m['latency_ms_p99']:.2f} ms  {m['examples_per_s_batched']:.0f} examples/s"
        )
    print(f"exported to {folder / 'onnx'}")
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from studies._errors import StudyError
    from studies.serve import Scorer, drift_of_texts, resolve_model
    from studies.serve._model import read_record
    from studies.serve._predict import columns_of, read_rows

    path = args.file or args.pair_file
    if path is None:
        raise StudyError("give the new inputs with --file NEW.csv (or --pair-file for text pairs)")
    folder = resolve_model(args.model, args.storage)
    record = read_record(folder)
    texts, pairs = columns_of(
        read_rows(path), path, record["task"], args.text_column, args.pair_column, args.pair_file is not None
    )
    result = drift_of_texts(Scorer(folder, backend=args.backend, record=record), texts, pairs)
    print(json.dumps(result))
    return 0
