"""Model-level settings of a trial: dropout, freezing, layer-wise learning rates, optimizer and schedule options.

Dropout names differ between architectures (BERT's ``hidden_dropout_prob``,
DistilBERT's ``dropout``), so each setting maps to the config names that mean
it; a model whose config has none of them cannot take the setting, and
:func:`check_model_settings` says so at preparation, before any trial.

Layer-wise learning-rate decay (Sun et al. 2019) gives the classifier head the
base learning rate and each layer below it ``decay`` times its upper
neighbour's, down to the embeddings: ``lr * decay ** (L + 1 - depth)`` with
depth 0 for the embeddings, ``i + 1`` for encoder layer ``i`` and ``L + 1`` for
everything above the encoder. It is built as optimizer parameter groups, which
the Trainer's schedule then scales together.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainers._config import TrainerSpec
from trainers._models import ModelError

if TYPE_CHECKING:
    from torch import nn

# Each dropout setting and the config names that mean it, in the order they are looked for.
DROPOUT_NAMES: dict[str, tuple[str, ...]] = {
    "hidden_dropout": ("hidden_dropout_prob", "hidden_dropout", "dropout"),
    "attention_dropout": ("attention_probs_dropout_prob", "attention_dropout", "attention_dropout_prob"),
    "classifier_dropout": ("classifier_dropout", "seq_classif_dropout", "classifier_dropout_prob"),
}


def dropout_overrides(config: Any, settings: TrainerSpec) -> dict[str, float]:
    """The config attributes that set the trial's dropouts (``from_pretrained`` keyword arguments).

    Raises:
        ModelError: If the architecture has no config name for a dropout that is set.
    """
    overrides = {}
    for setting, names in DROPOUT_NAMES.items():
        value = getattr(settings, setting)
        if value is None:
            continue
        found = next((name for name in names if hasattr(config, name)), None)
        if found is None:
            raise ModelError(
                f"trainer.{setting}: the {config.model_type} architecture has no {setting.replace('_', ' ')} "
                f"setting (its config has none of {', '.join(names)}): remove {setting} from the trainer "
                "section and the search space"
            )
        overrides[found] = value
    return overrides


def model_overrides(model_dir: str | Path, settings: TrainerSpec) -> dict[str, float]:
    """:func:`dropout_overrides` for the model saved in ``model_dir``."""
    import transformers

    return dropout_overrides(transformers.AutoConfig.from_pretrained(model_dir), settings)


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of transformer layers (the ``ModuleList`` as long as ``num_hidden_layers``).

    Raises:
        ModelError: If no such list is found.
    """
    from torch import nn

    count = getattr(model.config, "num_hidden_layers", None)
    base = getattr(model, "base_model", model)
    for _, module in base.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise ModelError(
        f"the {getattr(model.config, 'model_type', '?')} model has no list of {count} encoder layers "
        "to freeze or decay: remove freeze_layers and layerwise_lr_decay"
    )


def embeddings(model: nn.Module) -> nn.Module:
    """The embedding block (word, position and type embeddings and their norm), or the input embeddings."""
    block = getattr(getattr(model, "base_model", model), "embeddings", None)
    return block if block is not None else model.get_input_embeddings()  # type: ignore[operator]  # a PreTrainedModel method


def freeze(model: nn.Module, settings: TrainerSpec) -> None:
    """Stop gradients to the embeddings and the lowest ``freeze_layers`` layers, as the settings ask."""
    frozen: list[nn.Module] = []
    if settings.freeze_embeddings:
        frozen.append(embeddings(model))
    if settings.freeze_layers:
        frozen.extend(encoder_layers(model)[: settings.freeze_layers])
    for module in frozen:
        for param in module.parameters():
            param.requires_grad_(False)


def _depths(model: nn.Module) -> dict[int, int]:
    """Each parameter's depth by ``id``: 0 embeddings, ``i + 1`` layer ``i``, ``L + 1`` the rest."""
    layers = encoder_layers(model)
    depth = {id(p): len(layers) + 1 for p in model.parameters()}
    for p in embeddings(model).parameters():
        depth[id(p)] = 0
    for i, layer in enumerate(layers):
        for p in layer.parameters():
            depth[id(p)] = i + 1
    return depth


def layerwise_groups(
    model: nn.Module, learning_rate: float, decay: float, weight_decay: float, decay_names: Iterable[str]
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with layer-wise decayed learning rates (trainable parameters only).

    Args:
        model: The model.
        learning_rate: The head's (the base) learning rate.
        decay: The factor from one layer to the one below it.
        weight_decay: Applied to the parameters named in ``decay_names``, not to biases and norms.
        decay_names: The parameter names that take weight decay (the Trainer's choice).
    """
    depth = _depths(model)
    top = max(depth.values())
    decayed = set(decay_names)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        d = depth[id(param)]
        key = (d, name in decayed)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": learning_rate * decay ** (top - d),
                "weight_decay": weight_decay if key[1] else 0.0,
            }
        groups[key]["params"].append(param)
    return [groups[k] for k in sorted(groups)]


def install_optimizer(trainer: Any, settings: TrainerSpec) -> None:
    """Give the Trainer a layer-wise decayed AdamW when ``layerwise_lr_decay`` < 1 (else it builds its own).

    Call after the Trainer is built (the model is on its device) and before ``train``;
    the Trainer's scheduler then scales every group's learning rate together.
    """
    if settings.layerwise_lr_decay >= 1:
        return
    import torch

    model = trainer.model
    groups = layerwise_groups(
        model,
        settings.learning_rate,
        settings.layerwise_lr_decay,
        settings.weight_decay,
        trainer.get_decay_parameter_names(model),
    )
    fused = {"fused": True} if next(model.parameters()).is_cuda else {}
    trainer.optimizer = torch.optim.AdamW(
        groups,
        lr=settings.learning_rate,
        betas=(settings.adam_beta1, settings.adam_beta2),
        eps=settings.adam_epsilon,
        **fused,
    )


def training_arguments(settings: TrainerSpec) -> dict[str, Any]:
    """The ``TrainingArguments`` the model-level settings add: label smoothing, AdamW's betas and epsilon, cycles."""
    arguments: dict[str, Any] = {
        "label_smoothing_factor": settings.label_smoothing,
        "adam_beta1": settings.adam_beta1,
        "adam_beta2": settings.adam_beta2,
        "adam_epsilon": settings.adam_epsilon,
    }
    if settings.lr_scheduler_type == "cosine_with_restarts":
        arguments["lr_scheduler_kwargs"] = {"num_cycles": settings.num_cycles}
    return arguments


def check_model_settings(model_dir: str | Path, values: dict[str, list[Any]]) -> None:
    """Check, before any trial, that the model can take every value trials may give its model-level settings.

    Args:
        model_dir: The prepared base model.
        values: Each trainer setting and the values trials may give it (the trainer
            section's value and the search space's extremes or choices).

    Raises:
        ModelError: For a dropout the architecture lacks, more frozen layers than it
            has, or freezing/decay on a model whose layers cannot be found.
    """
    import transformers

    config = transformers.AutoConfig.from_pretrained(model_dir)
    for setting in DROPOUT_NAMES:
        used = [v for v in values.get(setting, []) if v is not None]
        if used:
            dropout_overrides(config, TrainerSpec.model_validate({setting: used[0]}))
    frozen = max((v for v in values.get("freeze_layers", []) if v), default=0)
    decayed = any(v < 1 for v in values.get("layerwise_lr_decay", []))
    if not (frozen or decayed or any(values.get("freeze_embeddings", []))):
        return
    count = getattr(config, "num_hidden_layers", None)
    if frozen and count is not None and frozen > count:
        raise ModelError(
            f"trainer.freeze_layers {frozen} is more than the {count} layers of the model: "
            f"freeze at most {count} (narrow the search range)"
        )
    import torch

    with torch.device("meta"):  # the architecture only, no weights
        model = transformers.AutoModelForSequenceClassification.from_config(config)
    embeddings(model)
    if frozen or decayed:
        encoder_layers(model)
