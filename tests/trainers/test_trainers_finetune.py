"""``finetune`` and ``evaluate`` with the real HF Trainer on tiny-bert and the synthetic task."""

from __future__ import annotations

import json
import math

import pytest
import transformers

from trainers import METRICS, DataError, DivergedError, ModelSpec, TaskSpec, TrainerSpec, evaluate, finetune, prepare
from trainers._runtime import precision_flags

METRIC_NAMES = {*METRICS, "train_loss", "epoch"}


@pytest.mark.slow  # the shared two-epoch trial takes about 10 s
def test_a_trial_reports_each_epoch_with_its_checkpoint(trained):
    reports = trained["reports"]
    assert [r.step for r in reports] == [1, 2]
    assert [r.metrics["epoch"] for r in reports] == [1.0, 2.0]
    assert all(set(r.metrics) == METRIC_NAMES for r in reports)
    assert all(math.isfinite(v) for r in reports for v in r.metrics.values())
    for files in trained["seen"]:  # what the checkpoint held while report() ran
        assert {"trainer_state.json", "model.safetensors", "optimizer.pt", "report.json"} <= set(files)
    # Only the newest checkpoint is kept on disk: the caller persisted the others.
    checkpoints = trained["root"] / "out" / "checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == [reports[-1].checkpoint_dir.name]


@pytest.mark.slow
def test_tiny_bert_learns_the_synthetic_task(trained):
    reports, result = trained["reports"], trained["result"]
    print("tiny-bert validation accuracy by epoch:", [round(r.metrics["accuracy"], 3) for r in reports])
    assert result.best_metrics["accuracy"] >= 0.7  # chance is 0.5; about 0.8 is typical
    assert reports[1].metrics["train_loss"] < reports[0].metrics["train_loss"]


@pytest.mark.slow  # the shared two-epoch trial takes about 10 s
def test_the_best_model_is_kept_with_its_tokenizer(trained, synthetic):
    result, reports = trained["result"], trained["reports"]
    best = max(reports, key=lambda r: r.metrics["accuracy"])
    assert result.best_step == best.step and result.best_metrics == best.metrics
    assert result.last_metrics == reports[-1].metrics
    assert result.best_model_dir == trained["root"] / "out" / "best_model"
    assert json.loads((result.best_model_dir / "report.json").read_text())["step"] == best.step
    assert not (result.best_model_dir / "optimizer.pt").exists()
    model = transformers.AutoModelForSequenceClassification.from_pretrained(result.best_model_dir)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert transformers.AutoTokenizer.from_pretrained(result.best_model_dir).tokenize("not good") == ["not", "good"]


@pytest.mark.slow  # the shared two-epoch trial takes about 10 s
def test_the_result_has_counts_and_timings(trained):
    result = trained["result"]
    assert result.steps_reported == 2 and result.resumed_from_step is None
    print(f"start-up {result.startup_seconds:.2f} s, training {result.train_seconds:.2f} s")
    assert 0 < result.startup_seconds < 60 and result.train_seconds > 0


@pytest.mark.slow  # the shared two-epoch trial takes about 10 s
def test_evaluate_scores_a_saved_model_on_a_split(trained, synthetic):
    result = trained["result"]
    validation = evaluate(result.best_model_dir, synthetic, split="validation", batch_size=32)
    assert validation["accuracy"] == pytest.approx(result.best_metrics["accuracy"])
    assert validation["f1"] == pytest.approx(result.best_metrics["f1"])
    assert validation["eval_loss"] == pytest.approx(result.best_metrics["eval_loss"], rel=1e-3)
    test = evaluate(result.best_model_dir, synthetic)
    assert set(test) == set(METRICS) and test["accuracy"] > 0.65
    with pytest.raises(DataError, match="split 'dev' is not prepared"):
        evaluate(result.best_model_dir, synthetic, split="dev")


@pytest.mark.slow
def test_resume_continues_with_the_next_epoch_only(trained, synthetic, finetune_args, tmp_path):
    reports = []
    result = finetune(
        synthetic,
        finetune_args["settings"],
        finetune_args["params"],
        tmp_path,
        report=reports.append,
        resume_from=trained["persisted"][0],  # the copy of the epoch-1 checkpoint
    )
    assert [r.step for r in reports] == [2]
    assert result.resumed_from_step == 1 and result.steps_reported == 1
    original = trained["reports"][1].metrics
    # Model, optimizer, scheduler and RNG state come back: epoch 2 is the same as without the stop.
    assert reports[0].metrics == pytest.approx(original, rel=1e-5)
    # The kept model is the better of the checkpoint's (epoch 1) and epoch 2.
    first = trained["reports"][0].metrics["accuracy"]
    assert result.best_step == (2 if reports[0].metrics["accuracy"] > first else 1)
    assert (result.best_model_dir / "model.safetensors").is_file()


def test_a_huge_learning_rate_diverges(synthetic, tmp_path):
    settings = TrainerSpec(num_train_epochs=1, max_steps_per_epoch=10, per_device_train_batch_size=8)
    with pytest.raises(DivergedError, match=r"loss became nan .*learning_rate 1e\+06"):
        finetune(synthetic, settings, {"learning_rate": 1e6}, tmp_path, report=lambda r: None)


def test_select_last_keeps_the_last_model(synthetic, tmp_path):
    settings = TrainerSpec(num_train_epochs=2, max_steps_per_epoch=4, per_device_train_batch_size=8)
    reports = []
    result = finetune(synthetic, settings, {}, tmp_path, report=reports.append, objective="eval_loss", select="last")
    assert [r.checkpoint_dir.name for r in reports] == ["checkpoint-4", "checkpoint-8"]  # 4 steps per epoch
    assert result.best_step == 2 and result.best_metrics == reports[-1].metrics


def test_a_report_that_raises_stops_the_trial_after_keeping_its_model(synthetic, tmp_path):
    class Pruned(Exception):
        pass

    def report(r):
        raise Pruned(r.step)

    settings = TrainerSpec(num_train_epochs=3, max_steps_per_epoch=2, per_device_train_batch_size=8)
    with pytest.raises(Pruned):
        finetune(synthetic, settings, {}, tmp_path, report=report)
    assert json.loads((tmp_path / "best_model" / "report.json").read_text())["step"] == 1


def test_unknown_params_and_objectives_are_refused(synthetic, tmp_path):
    with pytest.raises(ValueError, match=r"params \['dropout'\] are not tunable"):
        finetune(synthetic, TrainerSpec(), {"dropout": 0.1}, tmp_path, report=lambda r: None)
    with pytest.raises(ValueError, match="objective 'auc' is not a trial metric"):
        finetune(synthetic, TrainerSpec(), {}, tmp_path, report=lambda r: None, objective="auc")


def test_a_text_pair_trial_runs(tmp_path):
    rows = [
        {
            "question": "is the review positive?",
            "passage": f"review {i}: the plot was {word}.",
            "answer": word == "good",
        }
        for i, word in enumerate(["good", "awful"] * 40)
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    task = TaskSpec(
        dataset=str(path),
        text_column="question",
        text_pair_column="passage",
        label_column="answer",
        labels=["false", "true"],
        eval_size=10,
        test_size=10,
    )
    prepared = prepare(task, ModelSpec(), tmp_path / "cache")
    assert prepared.text_pair and prepared.label_names == ["false", "true"]
    reports = []
    settings = TrainerSpec(num_train_epochs=1, max_steps_per_epoch=5, per_device_train_batch_size=4)
    result = finetune(prepared, settings, {"learning_rate": 1e-3}, tmp_path / "trial", report=reports.append)
    assert [r.step for r in reports] == [1] and reports[0].checkpoint_dir.name == "checkpoint-5"
    assert set(evaluate(result.best_model_dir, prepared)) == set(METRICS)


def test_precision_auto_is_fp32_on_cpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU choice")
    assert precision_flags("auto") == {"bf16": False, "fp16": False}
    assert precision_flags("bf16") == {"bf16": True, "fp16": False}
    assert precision_flags("fp16") == {"bf16": False, "fp16": True}


def test_gradient_accumulation_and_activation_checkpointing_run(synthetic, tmp_path):
    settings = TrainerSpec(
        num_train_epochs=1,
        max_steps_per_epoch=3,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        gradient_checkpointing=True,
    )
    reports = []
    result = finetune(synthetic, settings, {"learning_rate": 1e-3}, tmp_path, report=reports.append)
    assert [r.step for r in reports] == [1]
    assert reports[0].checkpoint_dir.name == "checkpoint-3"  # 3 optimizer steps of 2 x 4 examples
    assert (result.best_model_dir / "config.json").is_file()


@pytest.fixture
def built_models(monkeypatch):
    """Weak references to every classification model a trial builds (the memory it would hold on a GPU)."""
    import weakref

    built = []
    load = transformers.AutoModelForSequenceClassification.from_pretrained

    def tracked(*args, **kwargs):
        model = load(*args, **kwargs)
        built.append(weakref.ref(model))
        return model

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", tracked)
    return built


def test_a_finished_trial_leaves_no_model_behind(synthetic, tmp_path, built_models):
    # In a reused Ray worker the next trial must start with the memory the last one used given back.
    settings = TrainerSpec(num_train_epochs=1, max_steps_per_epoch=2, per_device_train_batch_size=8)
    for trial in range(2):
        finetune(synthetic, settings, {}, tmp_path / str(trial), report=lambda r: None)
    assert len(built_models) == 2 and [ref() for ref in built_models] == [None, None]


@pytest.fixture
def out_of_memory_in_backward(monkeypatch, built_models):
    """Every model a trial builds runs out of memory in the backward pass of its second training step.

    A backward hook on the classifier raises ``torch.OutOfMemoryError`` inside autograd, where the
    CUDA allocator raises it when a gradient does not fit; counts the backward passes started.
    """
    import torch

    load = transformers.AutoModelForSequenceClassification.from_pretrained
    backward_passes = []

    def raise_in_second_backward(module, grad_input, grad_output):
        backward_passes.append(1)
        if len(backward_passes) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def with_hook(*args, **kwargs):
        model = load(*args, **kwargs)
        model.classifier.register_full_backward_hook(raise_in_second_backward)
        return model

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", with_hook)
    return backward_passes


def test_a_trial_out_of_memory_leaves_no_model_behind_while_its_error_is_handled(
    synthetic, tmp_path, built_models, out_of_memory_in_backward
):
    import torch

    reports = []
    settings = TrainerSpec(num_train_epochs=2, max_steps_per_epoch=2, per_device_train_batch_size=8)
    error = None
    try:
        finetune(synthetic, settings, {}, tmp_path, report=reports.append)
    except torch.OutOfMemoryError as e:
        error = e  # the trainable still holds the error while it records FAIL(oom)
    assert error is not None, "the out-of-memory error raised in backward did not reach the caller"
    assert len(out_of_memory_in_backward) == 2 and reports == []  # it stopped in step 2, before any report
    assert "out of memory" in str(error) and error.__traceback__ is not None
    assert len(built_models) == 1 and built_models[0]() is None


@pytest.mark.slow  # compiling the model takes about 30 s on 2 CPU cores
def test_a_compiled_trial_keeps_a_loadable_model(synthetic, tmp_path):
    settings = TrainerSpec(num_train_epochs=1, max_steps_per_epoch=3, per_device_train_batch_size=8, torch_compile=True)
    reports = []
    result = finetune(synthetic, settings, {"learning_rate": 1e-3}, tmp_path, report=reports.append)
    assert [r.step for r in reports] == [1]
    _, info = transformers.AutoModelForSequenceClassification.from_pretrained(
        result.best_model_dir, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]  # saved unwrapped, not as "_orig_mod."
    assert set(evaluate(result.best_model_dir, synthetic)) == set(METRICS)


def test_warmup_ratio_warms_up_that_share_of_the_steps(tmp_path):
    # transformers 5 reads a float warmup_steps below 1 as a ratio; an older one would warm up for 0 steps.
    from trainers._finetune import _training_args

    args = _training_args(TrainerSpec(warmup_ratio=0.1), tmp_path)
    assert args.get_warmup_steps(200) == 20
    assert _training_args(TrainerSpec(warmup_ratio=0.0), tmp_path).get_warmup_steps(200) == 0
