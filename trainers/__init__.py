"""Fine-tuning trainables: data preparation, models, and the HF Trainer loop.

This package knows nothing of Ray or Optuna: a trial reports each evaluation
through the one ``report`` callback it is given. ``prepare`` runs once per
study; ``finetune`` runs once per trial, from the ``Prepared`` result;
``evaluate`` scores a kept model on the test split.
"""

from trainers._config import DATA_HYPERPARAMETERS, HYPERPARAMETERS, DataError, ModelSpec, TaskSpec, TrainerSpec
from trainers._data import clean_text
from trainers._evaluate import evaluate
from trainers._finetune import FinetuneResult, finetune
from trainers._metrics import METRICS
from trainers._models import ModelError
from trainers._prepare import Prepared, prepare, variant_key
from trainers._reporting import DivergedError, Report
from trainers._tokenize import example_encoder
from trainers._tuning import check_model_settings

__all__ = [
    "DATA_HYPERPARAMETERS",
    "HYPERPARAMETERS",
    "METRICS",
    "DataError",
    "DivergedError",
    "FinetuneResult",
    "ModelError",
    "ModelSpec",
    "Prepared",
    "Report",
    "TaskSpec",
    "TrainerSpec",
    "check_model_settings",
    "clean_text",
    "evaluate",
    "example_encoder",
    "finetune",
    "prepare",
    "variant_key",
]
