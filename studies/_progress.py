"""A compact progress display that replaces Ray Tune's console tables.

One line per event: a trial starts, reports an epoch, or ends; each end line
carries the study's tally (finished/running/total and the best value so far).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from ray.tune import Callback

if TYPE_CHECKING:
    from studies._bridge import StudyBridge


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress(Callback):
    """Prints study progress; ``stream=None`` silences it."""

    def __init__(self, bridge: StudyBridge, stream: TextIO | None = sys.stderr) -> None:
        self._bridge = bridge
        self._stream = stream
        self._t0 = time.monotonic()

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles callbacks; the bridge and the stream stay behind.
        return {**self.__dict__, "_bridge": None, "_stream": None}

    def _say(self, text: str) -> None:
        if self._stream is not None:
            elapsed = int(time.monotonic() - self._t0)
            print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {text}", file=self._stream, flush=True)

    @staticmethod
    def _number(trial: Any) -> Any:
        return trial.config.get("trial_number", "?")

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        params = " ".join(f"{k}={_fmt(v)}" for k, v in sorted(trial.config.get("params", {}).items()))
        self._say(f"trial {self._number(trial)} started  {params}")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if "step" not in result:
            return
        shown = " ".join(f"{k}={_fmt(result[k])}" for k in ("accuracy", "f1", "eval_loss") if k in result)
        self._say(f"trial {self._number(trial)} epoch {result['step']}  {shown}")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial)

    def _end(self, trial: Any) -> None:
        outcome = self._bridge.outcomes.get(trial.trial_id, "ended")
        self._say(f"trial {self._number(trial)} {outcome}  | {self.tally()}")

    def tally(self) -> str:
        counted, running = self._bridge.budget_counts()
        text = f"finished {counted}/{self._bridge.n_trials()}, running {running}"
        best = best_summary(self._bridge.study)
        return f"{text}, {best}" if best else text


def best_summary(study: Any) -> str:
    """``best accuracy=0.91 (trial 3)``, or the Pareto front size for several objectives."""
    try:
        if len(study.directions) > 1:
            return f"pareto front: {len(study.best_trials)} trials"
        best = study.best_trial
    except ValueError:
        return ""
    metric = (study.metric_names or ["value"])[0]
    return f"best {metric}={_fmt(best.value)} (trial {best.number})"
