"""``studies export``: the promoted model as ONNX, optionally int8-quantized, scored on its test split.

The exported graph takes the tokenizer's inputs (any batch size and length)
and gives ``logits`` and the sentence ``embedding`` the drift test uses.
Dynamic int8 quantization (onnxruntime) stores the weights of the linear
layers as int8 and quantizes activations on the fly. Each exported model is
scored on the promotion's test split (accuracy, and latency on this machine);
``onnx/export.json`` and a section of the model card hold the numbers. The
``onnx/`` folder is written atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

from studies._errors import NotFoundError, StudyError
from studies.serve._model import ONNX_DIR, ONNX_FILES, Scorer, read_record

CARD_MARK = "\n## Exported models\n"


def export_onnx(folder: Path, quantize: str | None = None, opset: int = 17) -> dict[str, Any]:
    """Export the promoted model in ``folder`` to ONNX (and int8), score it, and record the numbers.

    Args:
        folder: A promoted model folder.
        quantize: ``int8`` for a dynamically quantized copy too, or ``None``.
        opset: The ONNX opset.

    Returns:
        The export record written to ``onnx/export.json``.

    Raises:
        NotFoundError: If the promotion's test split is gone.
    """
    from storage import atomic_dir

    record = read_record(folder)
    test_data = Path(record.get("test_data", ""))
    if not (test_data / "dataset_dict.json").is_file():
        raise NotFoundError(
            f"the test split this model was promoted with is not at {test_data or 'a recorded path'}: "
            f"run `studies promote {record.get('study', 'STUDY')}` again on this machine, then export"
        )
    reference = Scorer(folder, record=record)
    results: dict[str, Any] = {"torch": score_test(reference, test_data)}
    with atomic_dir(folder / ONNX_DIR) as staging:
        _export_graph(reference, staging / ONNX_FILES["onnx"], opset)
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            logging.disable(logging.WARNING)  # its advice to pre-process goes to the root logger, as a warning
            try:
                quantize_dynamic(
                    staging / ONNX_FILES["onnx"], staging / ONNX_FILES["onnx-int8"], weight_type=QuantType.QInt8
                )
            finally:
                logging.disable(logging.NOTSET)
        for backend, name in ONNX_FILES.items():
            if (staging / name).is_file():
                scorer = Scorer(folder, backend, record, onnx_file=staging / name)
                results[backend] = {**score_test(scorer, test_data), "bytes": (staging / name).stat().st_size}
        export = {
            "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "opset": opset,
            "machine": f"{platform.machine()} {platform.processor() or ''} ({os.cpu_count()} CPUs)".replace("  ", " "),
            "test_examples": results["torch"]["examples"],
            "models": results,
        }
        (staging / "export.json").write_text(json.dumps(export, indent=2) + "\n", encoding="utf-8")
    _update_card(folder / "README.md", export)
    return export


def _export_graph(scorer: Scorer, path: Path, opset: int) -> None:
    import torch

    from studies.serve._model import mean_pool

    class WithEmbedding(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> tuple[Any, Any]:
            named = dict(zip(names, inputs))
            out = self.model(**named, output_hidden_states=True)
            return out.logits, mean_pool(out.hidden_states[-1], named["attention_mask"])

    names = scorer.input_names
    example = scorer.encode(["an example text to trace the graph with"], None)[0]
    args = tuple(torch.tensor([example.get(n, [0] * len(example["input_ids"]))] * 2) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    try:
        # The tracer warns about Python branches on shapes, constant for these models: nothing the user can act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                WithEmbedding(scorer._model).eval(),
                args,
                str(path),
                input_names=names,
                output_names=["logits", "embedding"],
                dynamic_axes={**axes, "logits": {0: "batch"}, "embedding": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
    except Exception as e:
        raise StudyError(f"the model could not be exported to ONNX ({type(e).__name__}: {e})") from e


def score_test(scorer: Scorer, data_dir: Path, batch_size: int = 32, latency_runs: int = 50) -> dict[str, Any]:
    """Accuracy of ``scorer`` on the test split at ``data_dir``, and its latency on this machine.

    Latency is the median (and p99) time of one forward pass of a single test
    example (``latency_runs`` of them), and throughput the examples per second
    scoring the whole split in batches of ``batch_size``.
    """
    import datasets
    import numpy as np

    test = datasets.load_from_disk(str(data_dir))["test"]
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in test.column_names]
    examples = [{n: list(row[n]) for n in names} for row in test]
    labels = np.array(test["labels"])
    order = np.argsort([len(e["input_ids"]) for e in examples], kind="stable")
    predicted = np.zeros(len(examples), dtype=np.int64)
    started = time.perf_counter()
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        probs, _ = scorer.run([examples[i] for i in index])
        predicted[index] = probs.argmax(axis=1)
    batched = time.perf_counter() - started
    singles = []
    for i in range(min(latency_runs, len(examples))):
        started = time.perf_counter()
        scorer.run([examples[i]])
        singles.append(time.perf_counter() - started)
    singles.sort()
    return {
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        "examples": len(examples),
        "latency_ms_p50": round(1000 * statistics.median(singles), 3),
        "latency_ms_p99": round(1000 * singles[min(len(singles) - 1, int(0.99 * len(singles)))], 3),
        "examples_per_s_batched": round(len(examples) / batched, 1),
    }


def _update_card(card: Path, export: dict[str, Any]) -> None:
    """Put (or replace) the "Exported models" section of the model card, atomically."""
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    text = text.split(CARD_MARK)[0].rstrip("\n") + "\n"
    rows = "\n".join(
        f"| {name} | {m['accuracy']:.4f} | {m['latency_ms_p50']:.2f} | {m['latency_ms_p99']:.2f} | "
        f"{m['examples_per_s_batched']:.0f} | {m.get('bytes', 0) / 1e6:.1f} |"
        for name, m in export["models"].items()
    )
    text += f"""{CARD_MARK}
`studies export` wrote these into `onnx/` ({export["exported_at"]}, {export["machine"]}); accuracy on the \
test split ({export["test_examples"]} examples), latency of one example per forward pass, throughput in \
batches of 32. Serve one with `studies serve FOLDER --backend onnx` (or `onnx-int8`).

| model | test accuracy | p50 ms | p99 ms | examples/s | MB |
| --- | --- | --- | --- | --- | --- |
{rows}
"""
    tmp = card.with_name(card.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, card)
