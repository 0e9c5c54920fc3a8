"""Promote the best trial's model: evaluate it once on test, write it atomically, log it.

The model directory ``<promotion.dir>/<study>/`` holds the model and tokenizer
(``from_pretrained`` loads it), ``promotion.json`` and a model card
``README.md``. It is assembled in a staging folder and renamed into place, so
a crash leaves the previous model or the new one, never a mix.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from storage import atomic_dir, clean_stale, model_dir
from studies._errors import NotFoundError, StudyError
from studies._version import __version__

if TYPE_CHECKING:
    import optuna

    from studies._spec import StudySpec
    from trainers import Prepared

_log = logging.getLogger(__name__)


def best_trial(study: optuna.Study, spec: StudySpec) -> optuna.trial.FrozenTrial:
    """The trial to promote: the best one, or for several objectives the Pareto
    trial that is best on the first objective."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise NotFoundError(f"study {study.study_name!r} has no COMPLETE trial to promote yet: run or resume it first")
    if not spec.multi_objective:
        return study.best_trial
    first = spec.objective[0]
    pick = max if first.direction == "maximize" else min
    return pick(study.best_trials, key=lambda t: t.values[0])


def current_promotion(study: optuna.Study, spec: StudySpec) -> Path | None:
    """The model directory, if it already holds the study's current best trial (so promoting again is moot)."""
    record = study.user_attrs.get("promoted")
    if not record:
        return None
    target = model_dir(Path(spec.promotion.dir), spec.name).resolve()
    if record.get("trial") != best_trial(study, spec).number or Path(record.get("dir", "")) != target:
        return None
    return target if (target / "promotion.json").is_file() else None


def promote_best(
    study: optuna.Study, spec: StudySpec, prepared: Prepared, *, stream: TextIO | None = sys.stderr
) -> Path:
    """Evaluate the best trial's model on the test split and promote it.

    Returns:
        The model directory.

    Raises:
        NotFoundError: If there is no complete trial or its model is gone.
    """
    from optuna.trial import TrialState

    from studies.serve import write_reference
    from trainers import evaluate

    best = best_trial(study, spec)
    source = Path(best.user_attrs.get("best_model_dir", ""))
    if not (source / "config.json").is_file():
        raise NotFoundError(
            f"the model of best trial {best.number} is not at {source}: it was deleted or written on another "
            "node; make work_dir a path every node shares, then run `studies promote` again"
        )
    root = Path(spec.promotion.dir)
    target = model_dir(root, spec.name)
    clean_stale(root, spec.name)
    # A tuned max_length/truncation picks the test split the model was trained to read.
    test = evaluate(source, prepared.for_params(best.params), split="test")
    counts = {s.name: len(study.get_trials(deepcopy=False, states=(s,))) for s in TrialState}
    record = {
        "study": spec.name,
        "trial": best.number,
        "params": best.params,
        "objective": [o.model_dump() for o in spec.objective],
        "select": spec.select,
        "validation": _reported_at_best(best, spec),
        "test": test,
        "values": best.values,
        "base_model": spec.model.name,
        "dataset": spec.task.dataset,
        "revisions": revisions(spec, prepared),
        "task": spec.task.model_dump(),  # how to tokenize new inputs as training did (predict, serve)
        "test_data": str(Path(prepared.data_dir).resolve()),  # the test split `studies export` scores
        "label_names": prepared.label_names,
        "positive_label": prepared.positive_label,
        "data_sizes": prepared.sizes,
        "trials": {k: v for k, v in counts.items() if v},
        "package_version": __version__,
        "promoted_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_dir(target) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        (staging / "promotion.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        write_reference(staging, prepared, record)  # what `serve` and `studies drift` compare new inputs with
        (staging / "README.md").write_text(model_card(record, spec), encoding="utf-8")
    study.set_user_attr("promoted", {"trial": best.number, "dir": str(target.resolve()), "test": test})
    _log_to_wandb(study, spec, target, record)
    if stream is not None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in test.items() if isinstance(v, float))
        print(f"promoted trial {best.number} to {target}  test: {shown}", file=stream, flush=True)
    return target


def promote(study_name: str, storage_url: str | None = None, *, stream: TextIO | None = sys.stderr) -> Path:
    """Evaluate a study's best trial on the test split and promote its model, from the store alone.

    This is ``studies promote NAME``; a launch promotes by itself when its budget is met.

    Args:
        study_name: The study.
        storage_url: The store (else ``STUDIES_STORAGE``, else ``sqlite:///studies.db``).
        stream: Where the one-line summary goes (``None``: nowhere).

    Returns:
        The model directory.

    Raises:
        NotFoundError: If there is no such study, no COMPLETE trial, or its model is gone.
    """
    from storage import open_storage, resolve_url
    from studies._names import require_name
    from studies._store import load_study, stored_spec
    from studies._task import prepare_task

    require_name(study_name, "study")
    study = load_study(open_storage(resolve_url(storage_url), create=False), study_name)
    spec = stored_spec(study)
    return promote_best(study, spec, prepare_task(spec), stream=stream)


def _reported_at_best(trial: optuna.trial.FrozenTrial, spec: StudySpec) -> dict[str, Any]:
    from studies._records import trial_record
    from studies._task import trial_value

    reports = {int(r["step"]): {k: v for k, v in r.items() if k != "step"} for r in trial_record(trial, "reports", [])}
    values = trial_value(spec, reports)
    if values is None:
        return {}
    for step in sorted(reports):
        if [reports[step].get(o.metric) for o in spec.objective] == values:
            return {"step": step, **reports[step]}
    return {}


def revisions(spec: StudySpec, prepared: Prepared) -> dict[str, dict[str, Any]]:
    """Where the base model and the data came from: the requested revision and, from the hub, the commit used."""
    found = prepared.revisions
    return {
        "model": {
            "name": spec.model.name,
            "source": found.get("model_source"),
            "revision": spec.model.revision,
            "commit": found.get("model"),
        },
        "dataset": {
            "name": spec.task.dataset,
            "source": found.get("dataset_source"),
            "config": spec.task.dataset_config,
            "revision": spec.task.dataset_revision,
            "commit": found.get("dataset"),
        },
    }


def _revision_line(entry: dict[str, Any]) -> str:
    if entry.get("source") != "hub":
        return f"`{entry['name']}` ({entry.get('source') or 'local'}, no hub revision)"
    requested = entry.get("revision") or "latest"
    return f"`{entry['name']}` at hub commit `{entry.get('commit') or 'unknown'}` (requested: {requested})"


def _metric_names(record: dict[str, Any]) -> list[str]:
    from trainers import METRICS

    reported = set(record["validation"]) | set(record["test"])
    return [name for name in METRICS if name in reported]


def model_card(record: dict[str, Any], spec: StudySpec) -> str:
    """The promoted model's README: what it is, how it was chosen, how to load it."""
    val = record["validation"]
    params = "\n".join(f"| `{k}` | {v} |" for k, v in sorted(record["params"].items()))
    metrics = "\n".join(
        f"| {name} | {val.get(name, float('nan')):.4f} | {record['test'].get(name, float('nan')):.4f} |"
        for name in _metric_names(record)
    )
    revisions = record.get("revisions") or {}
    labels = record["label_names"]
    positive = record.get("positive_label")
    scoring = (
        f"binary F1 and ROC AUC score the positive label `{positive}`"
        if len(labels) == 2
        else "F1 is the macro F1; ROC AUC the macro mean of one-vs-rest AUCs"
    )
    trials = ", ".join(f"{n} {k.lower()}" for k, n in record["trials"].items())
    base = _revision_line(revisions["model"]) if revisions else f"`{record['base_model']}`"
    data = _revision_line(revisions["dataset"]) if revisions else f"`{record['dataset']}`"
    return f"""# {record["study"]}: {spec.model.name} fine-tuned on {spec.task.dataset}

{spec.description or "A text classifier promoted from a hyperparameter-optimization study."}

- Base model: {base}
- Data: {data} (train {record["data_sizes"].get("train")}, validation \
{record["data_sizes"].get("validation")}, test {record["data_sizes"].get("test")} examples); \
labels {", ".join(labels)}; {scoring}
- Study: {trials}; objective {", ".join(f"{o['direction']} {o['metric']}" for o in record["objective"])} \
(trial value = its {record["select"]} report); promoted trial {record["trial"]}
- Promoted {record["promoted_at"]} by hpo-studies {record["package_version"]}

## Hyperparameters

| name | value |
| --- | --- |
{params}

## Metrics

Selection used the validation split only; the test split was evaluated once, on this model.

| metric | validation | test |
| --- | --- | --- |
{metrics}

## Load it

```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{record["study"]}")  # this folder
model = AutoModelForSequenceClassification.from_pretrained("{record["study"]}")
```
"""


def _log_to_wandb(study: optuna.Study, spec: StudySpec, target: Path, record: dict[str, Any]) -> None:
    from studies._tracking import TrialRun, wandb_context

    cfg = wandb_context(spec.wandb.model_dump(), study.user_attrs.get("uid", spec.name))
    try:
        run = TrialRun.promotion(cfg, study=spec.name, config={"trial": record["trial"], **record["params"]})
        run.summary({f"test_{k}": v for k, v in record["test"].items()})
        run.log_model(
            target, name=f"{spec.name}-model", metadata={k: record[k] for k in ("trial", "test", "validation")}
        )
        run.finish()
    except Exception as e:  # wandb is a mirror of the record; the promotion itself is done
        raise StudyError(f"the model was promoted to {target} but logging it to wandb failed: {e}") from e
