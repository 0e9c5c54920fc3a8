"""Score a saved model on one prepared split (the test split, once, after promotion)."""

from __future__ import annotations

from pathlib import Path

from trainers._config import DataError
from trainers._metrics import METRICS, classification_metrics, probabilities
from trainers._prepare import Prepared


def evaluate(model_dir: str | Path, prepared: Prepared, split: str = "test", batch_size: int = 64) -> dict[str, float]:
    """Every metric (accuracy, the F1s, MCC, ROC AUC, mean loss) of the model in ``model_dir`` on a prepared split.

    Batches are formed from examples of similar length, so little padding is computed.

    Args:
        model_dir: A sequence-classification model and its tokenizer (e.g. a trial's ``best_model``).
        prepared: The prepared task the model was fine-tuned on.
        split: ``train``, ``validation`` or ``test``.
        batch_size: Examples per forward pass.

    Returns:
        The metrics of ``trainers._metrics.METRICS`` by name.

    Raises:
        DataError: If the split does not exist.
    """
    import datasets
    import numpy as np
    import pyarrow.compute as pc
    import torch
    import transformers

    from trainers._models import pretrained_options
    from trainers._runtime import quiet, release_memory

    splits = datasets.load_from_disk(str(prepared.data_dir))
    if split not in splits:
        raise DataError(f"split '{split}' is not prepared (splits: {', '.join(splits)}): use one of them")
    data = splits[split]
    order = np.argsort(pc.list_value_length(data.with_format("arrow")["input_ids"]).to_numpy(), kind="stable")
    data = data.select(order.tolist())
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with quiet():
        remote = prepared.trust_remote_code
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, trust_remote_code=remote)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            model_dir, **pretrained_options(model_dir, trust_remote_code=remote)
        )
        model = model.to(device).eval()
    collate = transformers.DataCollatorWithPadding(tokenizer)
    predictions, labels, loss_sum = [], [], 0.0
    try:
        with torch.inference_mode():
            for columns in data.iter(batch_size=batch_size):
                rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
                batch = {k: v.to(device) for k, v in collate(rows).items()}
                output = model(**batch)
                loss_sum += float(output.loss) * len(batch["labels"])
                predictions.append(probabilities(output.logits).cpu().numpy())
                labels.append(batch["labels"].cpu().numpy())
    finally:
        del model
        release_memory()
    if not labels:
        return {name: float("nan") for name in METRICS}
    metrics = classification_metrics(
        np.concatenate(predictions), np.concatenate(labels), prepared.num_labels, prepared.positive_index
    )
    return {**metrics, "eval_loss": loss_sum / len(data)}
