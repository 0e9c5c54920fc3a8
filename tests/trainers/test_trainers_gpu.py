"""Fine-tuning on a CUDA GPU: mixed precision, fused AdamW, pinned memory, and memory given back."""

from __future__ import annotations

import pytest

from trainers import evaluate, finetune
from trainers._runtime import precision_flags

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_auto_precision_is_half_on_cuda():
    flags = precision_flags("auto")
    assert flags == {"bf16": torch.cuda.is_bf16_supported(), "fp16": not torch.cuda.is_bf16_supported()}


def test_a_trial_on_cuda_learns_and_gives_its_memory_back(synthetic, finetune_args, tmp_path):
    settings = finetune_args["settings"].model_copy(update={"dataloader_workers": 2})
    reports = []
    result = finetune(synthetic, settings, finetune_args["params"], tmp_path, report=reports.append)
    assert [r.step for r in reports] == [1, 2]
    assert result.best_metrics["accuracy"] >= 0.7
    assert torch.cuda.memory_allocated() < 16 * 2**20  # model, optimizer and batches were freed
    assert evaluate(result.best_model_dir, synthetic)["accuracy"] > 0.65


def test_trials_in_one_process_do_not_grow_gpu_memory(synthetic, finetune_args, tmp_path):
    settings = finetune_args["settings"].model_copy(update={"num_train_epochs": 1, "max_steps_per_epoch": 5})
    after = []
    for trial in range(3):
        finetune(synthetic, settings, finetune_args["params"], tmp_path / str(trial), report=lambda r: None)
        after.append(torch.cuda.memory_allocated())
    assert max(after) < 16 * 2**20 and after[-1] <= after[0] + 2**20


def test_an_out_of_memory_trial_gives_its_gpu_memory_back_while_its_error_is_held(
    synthetic, finetune_args, tmp_path, monkeypatch
):
    import transformers

    load = transformers.AutoModelForSequenceClassification.from_pretrained
    forward_passes = []

    def allocate_too_much(module, args, output):
        # From the second training step on, the forward pass asks the CUDA allocator for 1 TiB: a real OOM.
        forward_passes.append(1)
        if len(forward_passes) == 2:
            torch.empty(2**40, dtype=torch.uint8, device=output.device)

    def with_hook(*args, **kwargs):
        model = load(*args, **kwargs)
        model.classifier.register_forward_hook(allocate_too_much)
        return model

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", with_hook)
    error = None
    try:
        finetune(synthetic, finetune_args["settings"], finetune_args["params"], tmp_path, report=lambda r: None)
    except torch.OutOfMemoryError as e:
        error = e
    assert error is not None and "out of memory" in str(error).lower()
    assert len(forward_passes) == 2
    assert error.__traceback__ is not None
    assert torch.cuda.memory_allocated() < 16 * 2**20
