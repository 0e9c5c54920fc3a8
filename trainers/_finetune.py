"""One trial: fine-tune the prepared base model with the HF Trainer and report every epoch."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trainers._config import HYPERPARAMETERS, TrainerSpec
from trainers._metrics import METRICS, classification_metrics, probabilities
from trainers._prepare import Prepared
from trainers._reporting import Report, copy_model_files, is_better, make_callback, read_report

logger = logging.getLogger(__name__)

BEST_MODEL = "best_model"
CHECKPOINTS = "checkpoints"


@dataclasses.dataclass
class FinetuneResult:
    """What a trial produced.

    Attributes:
        best_model_dir: The kept model (and tokenizer): the best report's, or the last one's with ``select="last"``.
        best_step: The step of the kept model.
        best_metrics: The metrics of the kept model's report.
        last_metrics: The metrics of the last report.
        steps_reported: How many reports this call made (resumed epochs are not reported again).
        resumed_from_step: The step of the checkpoint training resumed from, or ``None``.
        startup_seconds: From the call to the first optimizer step (loading, compiling, first batch).
        train_seconds: The wall time of the training loop, evaluations included.
    """

    best_model_dir: Path
    best_step: int
    best_metrics: dict[str, float]
    last_metrics: dict[str, float]
    steps_reported: int
    resumed_from_step: int | None
    startup_seconds: float
    train_seconds: float


def trial_settings(settings: TrainerSpec, params: dict[str, Any]) -> TrainerSpec:
    """The trial's settings: ``settings`` with the tuned ``params`` applied, validated.

    Args:
        settings: The trainer section shared by all trials.
        params: The trial's hyperparameters; each names a field in ``HYPERPARAMETERS``.

    Raises:
        ValueError: If a param is not a tunable field or its value is invalid.
    """
    unknown = sorted(set(params) - HYPERPARAMETERS)
    if unknown:
        raise ValueError(f"params {unknown} are not tunable: choose from {', '.join(sorted(HYPERPARAMETERS))}")
    return TrainerSpec.model_validate({**settings.model_dump(), **params})


def _training_args(settings: TrainerSpec, checkpoints: Path) -> Any:
    import torch
    from transformers import TrainingArguments

    from trainers._runtime import precision_flags
    from trainers._tuning import training_arguments

    cuda = torch.cuda.is_available()
    workers = settings.dataloader_workers
    # transformers 5.23 renamed gradient_checkpointing (the old name warns); older versions only know the old one.
    names = {field.name for field in dataclasses.fields(TrainingArguments)}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return TrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=settings.num_train_epochs,
        per_device_train_batch_size=settings.per_device_train_batch_size,
        per_device_eval_batch_size=settings.per_device_eval_batch_size,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps in transformers 5
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        max_grad_norm=settings.max_grad_norm,
        lr_scheduler_type=settings.lr_scheduler_type,
        seed=settings.seed,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=None,  # the reporting callback keeps the latest; the caller persists each reported one
        logging_strategy="epoch",
        logging_nan_inf_filter=False,  # a NaN loss must surface, not be averaged away
        report_to="none",
        disable_tqdm=True,
        log_level="warning",
        **{checkpointing: settings.gradient_checkpointing},  # type: ignore[arg-type]
        torch_compile=settings.torch_compile,
        dataloader_num_workers=workers,
        dataloader_persistent_workers=workers > 0,
        dataloader_pin_memory=cuda,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        **precision_flags(settings.precision),  # type: ignore[arg-type]
        **training_arguments(settings),
    )


def _resume_point(
    resume_from: Path, best_dir: Path, objective: str, greater_is_better: bool, select: str
) -> tuple[int, Report | None]:
    """The step to resume after, and the best report so far (its model is put in ``best_dir`` if needed)."""
    if not (resume_from / "trainer_state.json").is_file():
        raise FileNotFoundError(f"resume_from {resume_from} is not a trainer checkpoint (no trainer_state.json)")
    at_checkpoint = read_report(resume_from)
    if at_checkpoint is None:
        state = json.loads((resume_from / "trainer_state.json").read_text())
        return round(state.get("epoch") or 0), read_report(best_dir)
    kept = read_report(best_dir)
    if (
        select == "last"
        or kept is None
        or is_better(at_checkpoint.metrics[objective], kept.metrics[objective], greater_is_better)
    ):
        copy_model_files(resume_from, best_dir)
        kept = at_checkpoint
    return at_checkpoint.step, kept


def finetune(
    prepared: Prepared,
    settings: TrainerSpec,
    params: dict[str, Any],
    output_dir: str | Path,
    *,
    report: Callable[[Report], None],
    objective: str = "accuracy",
    greater_is_better: bool = True,
    select: str = "best",
    resume_from: str | Path | None = None,
    callbacks: Sequence[Any] = (),
) -> FinetuneResult:
    """Fine-tune the prepared base model once, reporting the validation metrics after every epoch.

    Args:
        prepared: The prepared task, from :func:`prepare` (or ``Prepared.from_dict``).
        settings: The trainer section shared by all trials.
        params: The trial's hyperparameters; they override the fields of ``settings`` of the same name.
        output_dir: The trial's folder: checkpoints go to ``checkpoints/``, the kept model to ``best_model/``.
        report: Called after each epoch's evaluation with a :class:`Report`; it may raise to stop the trial.
        objective: One of ``trainers._metrics.METRICS``: the metric that picks the kept model.
        greater_is_better: The objective's direction.
        select: ``best`` keeps the best report's model, ``last`` the last one's.
        resume_from: A checkpoint from an earlier report: training continues with the next epoch,
            and the epochs before are not reported again.
        callbacks: More ``transformers.TrainerCallback`` objects for the Trainer (timers, profilers).

    Returns:
        The kept model's folder and metrics, and timings.

    Raises:
        DivergedError: If the training or evaluation loss becomes NaN or infinite.
        ValueError: If a param or the objective is unknown.
    """
    started = time.perf_counter()
    if objective not in METRICS:
        raise ValueError(f"objective '{objective}' is not a trial metric: choose from {', '.join(METRICS)}")
    if select not in ("best", "last"):
        raise ValueError(f"select '{select}' is unknown: choose best or last")
    settings = trial_settings(settings, params)
    output_dir = Path(output_dir)
    best_dir = output_dir / BEST_MODEL
    resumed_from_step, best = None, None
    if resume_from is not None:
        resumed_from_step, best = _resume_point(Path(resume_from), best_dir, objective, greater_is_better, select)
    callback = make_callback(
        report,
        objective=objective,
        greater_is_better=greater_is_better,
        select=select,
        best_dir=best_dir,
        best=best,
        started=started,
    )
    train_seconds = _train(prepared, settings, output_dir / CHECKPOINTS, [callback, *callbacks], resume_from)
    if callback.best is None:
        raise RuntimeError(f"the trial in {output_dir} made no report: check trainer.num_train_epochs")
    startup = callback.startup_seconds if callback.startup_seconds is not None else time.perf_counter() - started
    logger.info(
        "trial finished: %d reports, best step %d (%s %.4f), start-up %.2f s, training %.1f s",
        callback.reported,
        callback.best.step,
        objective,
        callback.best.metrics[objective],
        startup,
        train_seconds,
    )
    last = callback.last or callback.best
    return FinetuneResult(
        best_model_dir=best_dir,
        best_step=callback.best.step,
        best_metrics=callback.best.metrics,
        last_metrics=last.metrics,
        steps_reported=callback.reported,
        resumed_from_step=resumed_from_step,
        startup_seconds=startup,
        train_seconds=train_seconds,
    )


def _train(
    prepared: Prepared, settings: TrainerSpec, checkpoints: Path, callbacks: list[Any], resume_from: Any
) -> float:
    """Build the Trainer, run it, and free its memory; return the training loop's wall time."""
    import datasets
    import transformers

    from trainers._models import pretrained_options
    from trainers._runtime import quiet, release_memory
    from trainers._tuning import freeze, install_optimizer, model_overrides

    splits = datasets.load_from_disk(str(prepared.data_dir))
    train = splits["train"]
    if settings.max_steps_per_epoch:
        per_step = settings.per_device_train_batch_size * settings.gradient_accumulation_steps
        train = train.select(range(min(len(train), settings.max_steps_per_epoch * per_step)))

    def compute_metrics(prediction: Any) -> dict[str, float]:
        return classification_metrics(
            prediction.predictions, prediction.label_ids, prepared.num_labels, prepared.positive_index
        )

    model = trainer = None
    try:
        with quiet():
            options = pretrained_options(prepared.model_dir, trust_remote_code=prepared.trust_remote_code)
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                prepared.model_dir, trust_remote_code=prepared.trust_remote_code
            )
            transformers.set_seed(settings.seed)  # the classification head's initialization
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                prepared.model_dir,
                **options,
                num_labels=prepared.num_labels,
                id2label=dict(enumerate(prepared.label_names)),
                label2id={name: i for i, name in enumerate(prepared.label_names)},
                **model_overrides(prepared.model_dir, settings),
            )
            freeze(model, settings)
            args = _training_args(settings, checkpoints)
            half = args.fp16 or args.bf16  # tensor cores want lengths in multiples of 8
            trainer = transformers.Trainer(
                model=model,
                args=args,
                train_dataset=train,
                eval_dataset=splits["validation"],
                processing_class=tokenizer,
                data_collator=transformers.DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if half else None),
                compute_metrics=compute_metrics,
                preprocess_logits_for_metrics=lambda logits, labels: probabilities(logits),
                callbacks=callbacks,
            )
            install_optimizer(trainer, settings)
            trainer.remove_callback(transformers.PrinterCallback)  # it prints every log dict to stdout
            started = time.perf_counter()
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
            return time.perf_counter() - started
    except BaseException as e:
        # The failed step's frames (kept alive by the traceback) hold the model, its
        # optimizer state and the batch's activations: drop their locals, or an
        # out-of-memory trial keeps its GPU memory until the exception is gone.
        traceback.clear_frames(e.__traceback__)
        raise
    finally:
        del model, trainer
        release_memory()
