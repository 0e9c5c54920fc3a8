"""Model-level settings reach the model and the optimizer in a real (tiny) fine-tuning run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.trainers.conftest import FINETUNE_SETTINGS

SHORT = {**FINETUNE_SETTINGS, "num_train_epochs": 1, "max_steps_per_epoch": 3}


def _run(prepared: Any, params: dict[str, Any], out: Path) -> dict[str, Any]:
    """Fine-tune for three steps and record what the Trainer's model and optimizer hold."""
    import torch
    import transformers

    from trainers import TrainerSpec, finetune

    seen: dict[str, Any] = {}

    class Inspect(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
            seen["args"] = args
            seen["dropouts"] = {name: m.p for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout)}
            seen["attention_dropout"] = model.config.attention_probs_dropout_prob
            seen["groups"] = [(g["initial_lr"], g["weight_decay"], len(g["params"])) for g in optimizer.param_groups]
            seen["optimizer"] = optimizer
            seen["before"] = {n: p.detach().clone() for n, p in model.named_parameters()}
            seen["model"] = model

        def on_train_end(self, args, state, control, model=None, **kwargs):
            seen["after"] = {n: p.detach().clone() for n, p in model.named_parameters()}
            seen["requires_grad"] = {n: p.requires_grad for n, p in model.named_parameters()}

    finetune(prepared, TrainerSpec(**SHORT), params, out, report=lambda r: None, callbacks=[Inspect()])
    return seen


def test_dropout_label_smoothing_betas_and_cycles_reach_the_model_and_trainer(synthetic, tmp_path):
    params = {
        "learning_rate": 1e-3,
        "hidden_dropout": 0.31,
        "attention_dropout": 0.27,
        "classifier_dropout": 0.43,
        "label_smoothing": 0.1,
        "adam_beta1": 0.8,
        "adam_beta2": 0.95,
        "adam_epsilon": 1e-6,
        "lr_scheduler_type": "cosine_with_restarts",
        "num_cycles": 3,
    }
    seen = _run(synthetic, params, tmp_path)
    dropouts = seen["dropouts"]
    assert dropouts["dropout"] == pytest.approx(0.43)  # the classifier head's
    hidden = [p for name, p in dropouts.items() if name.endswith("output.dropout")]
    assert hidden and all(p == pytest.approx(0.31) for p in hidden)
    assert seen["attention_dropout"] == pytest.approx(0.27)  # BERT's attention applies it functionally
    args = seen["args"]
    assert args.label_smoothing_factor == pytest.approx(0.1)
    assert args.lr_scheduler_kwargs == {"num_cycles": 3}
    defaults = seen["optimizer"].defaults
    assert defaults["betas"] == (0.8, 0.95) and defaults["eps"] == pytest.approx(1e-6)


def test_layerwise_lr_decay_builds_one_learning_rate_per_depth(synthetic, tmp_path):
    seen = _run(synthetic, {"learning_rate": 1e-3, "weight_decay": 0.01, "layerwise_lr_decay": 0.5}, tmp_path)
    rates = sorted({round(lr, 12) for lr, _, _ in seen["groups"]})
    # tiny-bert has 2 layers: embeddings 1e-3 * 0.5**3, layers 0.5**2 and 0.5, the head (pooler, classifier) 1e-3.
    assert rates == pytest.approx([1.25e-4, 2.5e-4, 5e-4, 1e-3])
    assert {wd for _, wd, _ in seen["groups"]} == {0.0, 0.01}  # no decay on biases and norms
    model = seen["model"]
    by_param = {id(p): g["initial_lr"] for g in seen["optimizer"].param_groups for p in g["params"]}
    assert by_param[id(model.bert.embeddings.word_embeddings.weight)] == pytest.approx(1.25e-4)
    assert by_param[id(model.bert.encoder.layer[1].output.dense.weight)] == pytest.approx(5e-4)
    assert by_param[id(model.classifier.weight)] == pytest.approx(1e-3)


def test_frozen_embeddings_and_lower_layers_do_not_change_after_steps(synthetic, tmp_path):
    seen = _run(synthetic, {"learning_rate": 1e-3, "freeze_embeddings": True, "freeze_layers": 1}, tmp_path)
    before, after, trainable = seen["before"], seen["after"], seen["requires_grad"]
    frozen = [n for n in before if n.startswith(("bert.embeddings.", "bert.encoder.layer.0."))]
    assert frozen and not any(trainable[n] for n in frozen)
    for name in frozen:
        assert (before[name] == after[name]).all(), name
    moved = [n for n in before if n.startswith("bert.encoder.layer.1.") and not (before[n] == after[n]).all()]
    assert moved  # the layer above the frozen ones trained
    assert sum(n for _, _, n in seen["groups"]) == sum(trainable.values())  # the optimizer got only trainable ones


def test_a_dropout_the_architecture_lacks_is_one_line():
    import transformers

    from trainers import ModelError, TrainerSpec
    from trainers._tuning import dropout_overrides

    with pytest.raises(ModelError, match="the gpt2 architecture has no attention dropout setting") as info:
        dropout_overrides(transformers.GPT2Config(), TrainerSpec(attention_dropout=0.1))
    assert "\n" not in str(info.value)


def test_preparation_refuses_more_frozen_layers_than_the_model_has(synthetic):
    from trainers import ModelError, check_model_settings

    with pytest.raises(ModelError, match="freeze_layers 5 is more than the 2 layers"):
        check_model_settings(synthetic.model_dir, {"freeze_layers": [0, 5]})
    check_model_settings(synthetic.model_dir, {"freeze_layers": [0, 2], "layerwise_lr_decay": [0.8, 1.0]})
