"""The study note and the trial notes optuna-dashboard shows, written as markdown.

Notes go through optuna-dashboard's note API, so the dashboard shows them and
a user's edit there is a new version, not a conflict. A note is rewritten only
when its text changed.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from studies._records import study_record, trial_record

if TYPE_CHECKING:
    import optuna

    from studies._spec import StudySpec

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def save_note(study: optuna.Study, body: str, trial_id: int | None = None) -> bool:
    """Store ``body`` as the study's note (or trial ``trial_id``'s); return whether it changed.

    optuna-dashboard's public ``save_note`` takes a running ``optuna.Trial``; trial
    notes here are kept current after the trial finished, so the same versioned
    write is made through the functions it uses.
    """
    from optuna_dashboard._note import get_note_from_system_attrs, note_ver_key, save_note_with_version

    storage = study._storage
    attrs = storage.get_study_system_attrs(study._study_id)
    if get_note_from_system_attrs(attrs, trial_id)["body"] == body:
        return False
    version = int(attrs.get(note_ver_key(trial_id), 0)) + 1
    save_note_with_version(storage, study._study_id, trial_id, version, body)
    return True


def resume_command(study: optuna.Study, storage_url: str) -> str:
    """The command that continues the study, run from the folder it was launched in."""
    launch_dir = study.user_attrs.get("launch_dir")
    cd = f"cd {launch_dir} && " if launch_dir else ""
    return f"{cd}studies resume {study.study_name} --storage {storage_url}"


def study_note(study: optuna.Study, spec: StudySpec, storage_url: str) -> str:
    """What the study is, how far it got, its best trial, its promoted model and how to resume it."""
    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state.name == s for t in trials) for s in STATES}
    objective = ", ".join(f"{o.direction} `{o.metric}`" for o in spec.objective)
    task = spec.task
    sizes = ", ".join(
        f"{k} {v}" for k, v in (("train", task.train_size), ("eval", task.eval_size), ("test", task.test_size)) if v
    )
    sampler = _named(spec.sampler.name, {**spec.sampler.options, "seed": spec.sampler.seed})
    budget = spec.budget
    lines = [
        f"# {spec.name}",
        "",
        spec.description or "A hyperparameter-optimization study.",
        "",
        "| | |",
        "| --- | --- |",
        f"| task | `{task.dataset}`{f' ({sizes})' if sizes else ''}, max length {task.max_length} |",
        f"| model | `{spec.model.name}` |",
        f"| objective | {objective} (a trial's value is its {spec.select} report) |",
        f"| sampler | {sampler} |",
        f"| pruner | {_named(spec.pruner.name, spec.pruner.options)} |",
        f"| budget | {budget.n_trials} trials, {budget.max_concurrent} at a time"
        + (f", {budget.timeout:g} s per launch" if budget.timeout else "")
        + " |",
        f"| resources | {spec.resources.cpus:g} CPU, {spec.resources.gpus:g} GPU per trial |",
        f"| wandb | project `{spec.wandb.project}`, group `{spec.name}` ({spec.wandb.mode}) |",
        f"| store | `{storage_url}` |",
        "",
        "## Search space",
        "",
        "| parameter | values |",
        "| --- | --- |",
        *(f"| `{name}` | {_space(p)} |" for name, p in sorted(spec.search_space.params.items())),
        "",
        "## Progress",
        "",
        f"{counts['COMPLETE'] + counts['PRUNED']} of {budget.n_trials} finished: {counts['COMPLETE']} complete, "
        f"{counts['PRUNED']} pruned, {counts['FAIL']} failed, {counts['RUNNING']} running"
        + (f", {counts['WAITING']} queued" if counts["WAITING"] else "")
        + ".",
        "",
        *_best_section(study),
        *_promotion_section(study),
        *_launches_section(study),
        "## Resume",
        "",
        "```",
        resume_command(study, storage_url),
        "```",
        "",
    ]
    return "\n".join(lines)


def trial_note(study: optuna.Study, trial: optuna.trial.FrozenTrial, spec: StudySpec) -> str:
    """A trial's state and why, its per-report metrics and its links."""
    attrs = trial.user_attrs
    lines = [f"# Trial {trial.number}: {trial.state.name}", "", _why(trial, spec), ""]
    reports = trial_record(trial, "reports", [])
    if reports:
        columns = [k for k in ("accuracy", "f1", "eval_loss", "train_loss") if any(k in r for r in reports)]
        lines += ["## Reports", "", "| step | " + " | ".join(columns) + " |", "|" + " --- |" * (len(columns) + 1)]
        for r in reports:
            lines.append(f"| {r['step']} | " + " | ".join(_num(r.get(k)) for k in columns) + " |")
        lines.append("")
    links = _links(attrs, spec)
    if links:
        lines += ["## Links", "", *(f"- {name}: {value}" for name, value in links), ""]
    return "\n".join(lines)


def _why(trial: optuna.trial.FrozenTrial, spec: StudySpec) -> str:
    attrs = trial.user_attrs
    state = trial.state.name
    if state == "COMPLETE":
        shown = ", ".join(f"{o.metric}={v:.4f}" for o, v in zip(spec.objective, trial.values or []))
        return f"Finished all its epochs: {shown} (its {spec.select} report)."
    if state == "PRUNED":
        step = max(trial.intermediate_values, default=None)
        return f"Pruned at step {step} by the `{spec.pruner.name}` pruner: its curve was behind the others'."
    if state == "FAIL":
        reason = attrs.get("fail_reason", "error")
        message = attrs.get("fail_message", "")
        return f"Failed (`{reason}`): {message}".rstrip(": ")
    if state == "RUNNING":
        return f"Running: {len(trial.intermediate_values)} report(s) so far."
    return "Queued: waiting for a worker."


def _links(attrs: dict[str, Any], spec: StudySpec) -> list[tuple[str, str]]:
    links = []
    if attrs.get("wandb_run_id"):
        run = f"`{attrs['wandb_run_id']}`"
        if attrs.get("wandb_url"):
            run += f" ({attrs['wandb_url']})"
        elif spec.wandb.entity and spec.wandb.mode == "online":
            run += f" (https://wandb.ai/{spec.wandb.entity}/{spec.wandb.project}/runs/{attrs['wandb_run_id']})"
        links.append(("wandb run", run))
    for key, name in (
        ("wandb_run_path", "wandb run folder"),
        ("checkpoint_path", "checkpoint"),
        ("best_model_dir", "best model folder"),
        ("trial_dir", "trial folder"),
        ("ray_trial_path", "Ray trial folder"),
    ):
        if attrs.get(key):
            links.append((name, f"`{attrs[key]}`"))
    host = attrs.get("hostname") or attrs.get("node_ip")
    if host:
        links.append(("node", f"`{host}`" + (f" (pid {attrs['pid']})" if attrs.get("pid") else "")))
    if attrs.get("gpu"):
        links.append(("GPU", f"`{attrs['gpu']}`"))
    if "retry_of" in attrs:
        links.append(("rerun of", f"trial {attrs['retry_of']}"))
    if attrs.get("retries"):
        links.append(("retries", str(attrs["retries"])))
    if attrs.get("traceback_file"):
        links.append(("traceback", f"`{attrs['traceback_file']}` (also among this trial's artifacts)"))
    return links


def _best_section(study: optuna.Study) -> list[str]:
    names = study.metric_names or ["value"]
    try:
        best = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    except ValueError:
        return []
    title = "## Best trial" if len(best) == 1 else f"## Pareto front ({len(best)} trials)"
    lines = [title, ""]
    for t in best[:10]:
        values = ", ".join(f"{n}={v:.4f}" for n, v in zip(names, t.values))
        params = ", ".join(f"`{k}`={_num(v)}" for k, v in sorted(t.params.items()))
        lines.append(f"- trial {t.number}: {values}; {params}")
    return [*lines, ""]


def _promotion_section(study: optuna.Study) -> list[str]:
    promoted = study.user_attrs.get("promoted")
    if not promoted:
        return []
    test = ", ".join(f"{k}={_num(v)}" for k, v in promoted.get("test", {}).items() if isinstance(v, float))
    return [
        "## Promoted model",
        "",
        f"Trial {promoted['trial']} at `{promoted['dir']}`; test split: {test}. "
        "Its model card and `promotion.json` are among the study's artifacts.",
        "",
    ]


def _launches_section(study: optuna.Study) -> list[str]:
    launches = study_record(study, "launches", [])
    if not launches:
        return []
    lines = ["## Launches", "", "| started (UTC) | host | version | spec changes |", "| --- | --- | --- | --- |"]
    for launch in launches:
        at = dt.datetime.fromtimestamp(launch["at"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        shown = ", ".join(launch.get("changes", [])) or "-"
        lines.append(f"| {at} | {launch.get('host', '?')} | {launch.get('version', '?')} | {shown} |")
    return [*lines, ""]


def _named(name: str, options: dict[str, Any]) -> str:
    shown = {k: v for k, v in options.items() if v is not None}
    return f"`{name}`" + (f" {json.dumps(shown, sort_keys=True)}" if shown else "")


def _space(param: Any) -> str:
    if param.type == "categorical":
        return ", ".join(str(c) for c in param.choices)
    text = f"{param.low} to {param.high}"
    if param.log:
        text += ", log scale"
    if getattr(param, "step", None) not in (None, 1):
        text += f", step {param.step}"
    return text


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
