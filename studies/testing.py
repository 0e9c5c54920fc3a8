"""Deterministic trainables for testing the study machinery with real Ray and Optuna.

They stand in for fine-tuning only where the test is about the record-keeping
(pruning, states, budgets, resume), the way ``optuna.testing`` provides
objectives. Each reads its behaviour from the trial's ``seed`` parameter and
the launch ``context``, so a test can craft learning curves exactly:

* ``extra["curves"][str(seed)]``: the accuracy reported at each step;
* ``extra["fail"][str(seed)]``: a step at which the trial raises;
* ``extra["step_seconds"]``: a sleep per step (to keep trials running);
* ``extra["kill"][str(seed)]``: a step at which the worker process kills
  itself with SIGKILL, once (a marker file in ``extra["marker_dir"]``
  remembers it), as an out-of-memory kill would.

``extra`` is the launch's ``context=`` argument, delivered as ``TrialContext.extra``.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studies._context import TrialContext


def curve_trainable(config: dict[str, Any], context: TrialContext) -> None:
    """Report a crafted learning curve, one step at a time, with a checkpoint per step."""
    from ray import tune

    extra = context.extra

    seed = str(int(config["params"].get("seed", 0)))
    curve = extra.get("curves", {}).get(seed) or _default_curve(config["params"], extra.get("steps", 3))
    fail_at = extra.get("fail", {}).get(seed)
    pause = float(extra.get("step_seconds", 0.0))
    log = extra.get("event_log")

    start = 1
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = json.loads((Path(folder) / "state.json").read_text())["step"] + 1
    if log:
        _append(log, {"event": "start", "trial": config["trial_number"], "from_step": start, "pid": os.getpid()})
    for step in range(start, len(curve) + 1):
        if pause:
            time.sleep(pause)
        kill_at = extra.get("kill", {}).get(seed)
        if kill_at is not None and step == int(kill_at):
            marker = Path(extra["marker_dir"]) / f"killed-{config['trial_number']}"
            if not marker.exists():
                marker.write_text(str(step))
                os.kill(os.getpid(), signal.SIGKILL)
        if fail_at is not None and step == int(fail_at):
            raise ValueError(f"crafted failure at step {step}")
        value = float(curve[step - 1])
        metrics = {"accuracy": value, "eval_loss": 1.0 - value, "f1": value, "step": step, "node_id": _node_id()}
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "state.json").write_text(json.dumps({"step": step}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        if log:
            _append(log, {"event": "report", "trial": config["trial_number"], "step": step, "pid": os.getpid()})


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _default_curve(params: dict[str, Any], steps: int) -> list[float]:
    """A smooth curve whose level depends on the parameters (for sampler tests)."""
    lr = float(params.get("learning_rate", 1e-3))
    level = 0.9 - 0.1 * abs(__import__("math").log10(lr) + 3)
    return [round(level * (1 - 0.5 ** (s + 1)), 6) for s in range(steps)]


def _append(path: str, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
