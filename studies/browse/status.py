"""Machine-readable ``studies status --json`` / ``list --json``, the trial links and ``status --watch``.

The JSON shapes are documented by JSON schemas shipped with the package
(``studies/browse/schemas/``); their ``schema`` field names the shape and its
version, which changes only when a field is removed or changes meaning.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from studies._records import study_record

if TYPE_CHECKING:
    import optuna

STATUS_SCHEMA = "studies.status/1"
LIST_SCHEMA = "studies.list/1"
SCHEMA_DIR = Path(__file__).parent / "schemas"
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
# Trial user attributes shown as links, and the words for them.
LINKS = {
    "wandb_run_id": "wandb run",
    "wandb_run_path": "wandb folder",
    "wandb_url": "wandb url",
    "checkpoint_path": "checkpoint",
    "best_model_dir": "model",
    "hostname": "node",
    "gpu": "gpu",
    "retry_of": "rerun of",
    "traceback_file": "traceback",
}


def counts(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    return {s: sum(t.state.name == s for t in trials) for s in STATES}


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds") if moment else None


def _best(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    try:
        return list(study.best_trials) if len(study.directions) > 1 else [study.best_trial]
    except ValueError:
        return []


def trial_links(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {key: trial.user_attrs[key] for key in LINKS if trial.user_attrs.get(key) not in (None, "")}


def status_record(study: optuna.Study, storage_url: str, launchers: list[Any]) -> dict[str, Any]:
    """The ``studies status --json`` object (``schemas/status.schema.json``)."""
    trials = study.get_trials(deepcopy=False)
    spec = study_record(study, "spec") or {}
    return {
        "schema": STATUS_SCHEMA,
        "study": study.study_name,
        "storage": storage_url,
        "metric_names": study.metric_names or [f"objective {i}" for i in range(len(study.directions))],
        "directions": [d.name.lower() for d in study.directions],
        "budget": (spec.get("budget") or {}).get("n_trials"),
        "counts": counts(trials),
        "best": [{"number": t.number, "values": list(t.values), "params": dict(t.params)} for t in _best(study)],
        "promoted": study.user_attrs.get("promoted"),
        "launchers": [{"host": x.host, "pid": x.pid} for x in launchers],
        "trials": [
            {
                "number": t.number,
                "state": t.state.name,
                "values": list(t.values) if t.values else None,
                "params": dict(t.params),
                "steps": len(t.intermediate_values),
                "started": _iso(t.datetime_start),
                "finished": _iso(t.datetime_complete),
                "fail_reason": t.user_attrs.get("fail_reason"),
                "fail_message": t.user_attrs.get("fail_message"),
                "links": trial_links(t),
            }
            for t in trials
        ],
    }


def list_record(storage: Any, storage_url: str) -> dict[str, Any]:
    """The ``studies list --json`` object (``schemas/list.schema.json``)."""
    import optuna

    studies = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        best = _best(study)
        studies.append(
            {
                "study": study.study_name,
                "metric_names": study.metric_names or [f"objective {i}" for i in range(len(study.directions))],
                "directions": [d.name.lower() for d in study.directions],
                "trials": len(trials),
                "counts": counts(trials),
                "best": list(best[0].values) if len(best) == 1 else None,
                "started": _iso(summary.datetime_start),
            }
        )
    return {"schema": LIST_SCHEMA, "storage": storage_url, "studies": studies}


def link_lines(study: optuna.Study) -> list[str]:
    """One line per trial that failed or has links: ``trial 3 FAIL (oom: ...): wandb run abc, model /m``."""
    lines = []
    for t in study.get_trials(deepcopy=False):
        links = trial_links(t)
        shown = ", ".join(f"{LINKS[k]} {v}" for k, v in links.items() if k != "wandb_run_path")
        why = ""
        if t.state.name == "FAIL":
            why = f" ({t.user_attrs.get('fail_reason', 'error')}: {t.user_attrs.get('fail_message', '')})"
        if shown or why:
            lines.append(f"trial {t.number} {t.state.name}{why}" + (f": {shown}" if shown else ""))
    return lines


def watch_view(study: optuna.Study, now: float) -> tuple[str, bool]:
    """The live view's text, and whether the study is done (budget met, nothing running or queued)."""
    from studies._progress import best_summary

    trials = study.get_trials(deepcopy=False)
    tally = counts(trials)
    budget = ((study_record(study, "spec") or {}).get("budget") or {}).get("n_trials")
    finished = tally["COMPLETE"] + tally["PRUNED"]
    starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start]
    elapsed = now - min(starts) if starts else 0.0
    durations = [t.duration.total_seconds() for t in trials if t.duration and t.state.name in ("COMPLETE", "PRUNED")]
    lines = [
        f"study {study.study_name}: finished {finished}"
        + (f"/{budget}" if budget else "")
        + f" (complete {tally['COMPLETE']}, pruned {tally['PRUNED']}), failed {tally['FAIL']}, "
        f"running {tally['RUNNING']}, queued {tally['WAITING']}",
        best_summary(study) or "best: none yet",
        f"elapsed {_clock(elapsed)}",
    ]
    left = max(0, (budget or finished) - finished)
    if left and durations:
        at_once = max(1, tally["RUNNING"])
        lines[-1] += f", about {_clock(sum(durations) / len(durations) * left / at_once)} left ({left} trials)"
    done = left == 0 and tally["RUNNING"] == 0 and tally["WAITING"] == 0
    return "\n".join(lines), done


def watch(load: Callable[[], optuna.Study], interval: float, stream: TextIO) -> None:
    """Redraw :func:`watch_view` every ``interval`` seconds until the study is done (or Ctrl-C)."""
    tty = stream.isatty()
    while True:
        text, done = watch_view(load(), time.time())
        if tty:
            stream.write("\x1b[H\x1b[J")  # home, clear: redraw in place
        stream.write(f"{text}\n" + ("" if tty else "\n"))
        stream.flush()
        if done:
            return
        time.sleep(interval)


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
