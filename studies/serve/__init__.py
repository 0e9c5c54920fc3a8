"""Use a promoted model: predict, serve over HTTP, export to ONNX (int8), and watch for data drift.

Heavy libraries (torch, transformers, fastapi, onnxruntime) load inside the functions that use them.
"""

from studies.serve._app import Limits, create_app
from studies.serve._drift import DriftReference, drift_of_texts, write_reference
from studies.serve._export import export_onnx
from studies.serve._model import Scorer, resolve_model
from studies.serve._predict import predict
from studies.serve._runner import check_host, serve

__all__ = [
    "DriftReference",
    "Limits",
    "Scorer",
    "check_host",
    "create_app",
    "drift_of_texts",
    "export_onnx",
    "predict",
    "resolve_model",
    "serve",
    "write_reference",
]
