"""``studies report``: a study's plots as PNG (matplotlib) and interactive HTML (plotly), and ``summary.md``.

PNGs come from Optuna's matplotlib plots, which need no browser (plotly's PNG
export through kaleido >= 1 would need a Chrome on the machine). The HTML files
share one ``plotly.min.js`` written beside them, so they open offline.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studies._errors import StudyError

if TYPE_CHECKING:
    import optuna

_log = logging.getLogger(__name__)


@dataclass
class Report:
    """What ``write_report`` wrote.

    Attributes:
        folder: The report folder.
        plots: ``(name, title)`` of every plot written, as ``<name>.png`` and ``<name>.html``.
        skipped: ``(name, why)`` of the plots that do not apply to this study.
        summary: The ``summary.md`` path.
    """

    folder: Path
    plots: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    summary: Path | None = None


def write_report(study: optuna.Study, out: Path) -> Report:
    """Draw every plot that applies to ``study`` into ``out`` and write ``summary.md``.

    Raises:
        StudyError: If the study has no trials (there is nothing to draw).
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    from studies.browse.plots import plots_for

    trials = study.get_trials(deepcopy=False)
    if not trials:
        raise StudyError(
            f"study {study.study_name!r} has no trials yet: nothing to draw; "
            f"run it first (`studies resume {study.study_name}`)"
        )
    out.mkdir(parents=True, exist_ok=True)
    report = Report(folder=out)
    plots, report.skipped = plots_for(study)
    for plot in plots:
        try:
            # Optuna and matplotlib warn about degenerate data (equal importances, flat axes): the plot is still right.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                figure = _figure_of(plot.png())
                _tidy(figure, plot.size)
                figure.savefig(out / f"{plot.name}.png", dpi=100, bbox_inches="tight")
                plt.close(figure)
                plot.html().write_html(out / f"{plot.name}.html", include_plotlyjs="directory", full_html=True)
            for warning in caught:
                _log.info("plot %s: %s", plot.name, warning.message)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:  # an Optuna plot that does not apply after all
            _log.info("plot %s: %s", plot.name, e)
            report.skipped.append((plot.name, str(e).splitlines()[0] if str(e) else type(e).__name__))
            plt.close("all")
            continue
        report.plots.append((plot.name, plot.title))
    report.summary = out / "summary.md"
    report.summary.write_text(summary_markdown(study, report), encoding="utf-8")
    return report


def _tidy(figure: Any, size: tuple[float, float]) -> None:
    """Give the figure room for its panels; give a log axis shorter than a decade two labelled ticks.

    On such an axis (a learning rate's range) matplotlib labels every minor
    tick, and in the narrow panels of a slice or contour plot those labels overlap.
    """
    import numpy as np
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    figure.set_size_inches(*size)
    for ax in figure.axes:
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            low, high = sorted(axis.get_view_interval())
            if scale == "log" and low > 0 and high / low < 10:
                axis.set_major_locator(FixedLocator([float(f"{v:.2g}") for v in np.geomspace(low, high, 4)[1:3]]))
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.2g}"))
                axis.set_minor_locator(NullLocator())


def _figure_of(drawn: Any) -> Any:
    """The figure behind what an Optuna matplotlib plot returns (one ``Axes`` or an array of them)."""
    import numpy as np

    first = np.asarray(drawn, dtype=object).flat[0] if not hasattr(drawn, "figure") else drawn
    return first.figure


def summary_markdown(study: optuna.Study, report: Report) -> str:
    """The trials table, the best trial(s), the promotion and the list of plots."""
    names = study.metric_names or ["value"]
    trials = study.get_trials(deepcopy=False)
    params = sorted({k for t in trials for k in t.params})
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    lines = [
        f"# Study {study.study_name}",
        "",
        f"Report written {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}: {len(trials)} trials ("
        + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        + ").",
        "",
    ]
    lines += _best_lines(study, names)
    promoted = study.user_attrs.get("promoted")
    if promoted:
        test = ", ".join(f"{k}={v:.4f}" for k, v in promoted.get("test", {}).items() if isinstance(v, float))
        lines += ["## Promoted model", "", f"Trial {promoted['trial']} at `{promoted['dir']}`; test: {test}.", ""]
    lines += ["## Trials", "", "| # | state | " + " | ".join([*names, *params]) + " | seconds | note |"]
    lines.append("|" + " --- |" * (len(names) + len(params) + 4))
    for t in trials:
        values = [f"{v:.4f}" for v in t.values] if t.values else ["-"] * len(names)
        seconds = f"{t.duration.total_seconds():.0f}" if t.duration else "-"
        note = t.user_attrs.get("fail_reason", "")
        if t.state.name == "PRUNED":
            note = f"pruned at step {max(t.intermediate_values, default='?')}"
        lines.append(
            f"| {t.number} | {t.state.name} | "
            + " | ".join([*values, *(_short(t.params.get(p)) for p in params)])
            + f" | {seconds} | {note} |"
        )
    lines += ["", "## Plots", ""]
    lines += [f"- [{title}]({name}.html) ([png]({name}.png))" for name, title in report.plots]
    if report.skipped:
        lines += ["", "Not drawn:", ""]
        lines += [f"- {name}: {why}" for name, why in report.skipped]
    return "\n".join(lines) + "\n"


def _best_lines(study: optuna.Study, names: list[str]) -> list[str]:
    try:
        best = study.best_trials if len(names) > 1 else [study.best_trial]
    except ValueError:
        return ["No COMPLETE trial yet: there is no best trial.", ""]
    title = "## Best trial" if len(best) == 1 else f"## Pareto front ({len(best)} trials)"
    rows = []
    for t in best:
        values = ", ".join(f"{n}={v:.4f}" for n, v in zip(names, t.values))
        rows.append(f"- trial {t.number}: {values}; " + ", ".join(f"`{k}`={_short(v)}" for k, v in t.params.items()))
    return [title, "", *rows, ""]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
