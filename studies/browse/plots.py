"""The plots of a study report, each as a matplotlib figure (PNG) and a plotly figure (HTML).

Optuna's own plot functions draw all but the learning curves: its
intermediate-values plot leaves out failed trials and does not tell pruned
ones apart, so the curves are drawn here, one style per trial state.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

# Line colour and style of a trial's learning curve, by state.
STATE_STYLE = {
    "COMPLETE": ("#1f77b4", "solid"),
    "PRUNED": ("#ff7f0e", "dashed"),
    "FAIL": ("#d62728", "dotted"),
    "RUNNING": ("#2ca02c", "dashdot"),
}


@dataclass
class Plot:
    """One plot of the report: how to draw it with each library, and why it may not apply."""

    name: str
    title: str
    png: Callable[[], Any]
    html: Callable[[], Any]
    size: tuple[float, float] = (8.0, 5.0)  # inches, at 100 dpi


def plots_for(study: optuna.Study, top_params: int = 3) -> tuple[list[Plot], list[tuple[str, str]]]:
    """The plots that apply to ``study``, and ``(name, why not)`` for the ones that do not."""
    import optuna.visualization as pv
    import optuna.visualization.matplotlib as pm
    from optuna.trial import TrialState

    names = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
    multi = len(names) > 1
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    params = sorted({k for t in complete for k in t.params})
    plots: list[Plot] = []
    skipped: list[tuple[str, str]] = []

    def target(i: int) -> dict[str, Any]:
        return {"target": (lambda t: t.values[i]), "target_name": names[i]} if multi else {"target_name": names[0]}

    if complete:
        for i, metric in enumerate(names):
            suffix = f"_{metric}" if multi else ""
            plots.append(
                Plot(
                    f"optimization_history{suffix}",
                    f"Optimization history ({metric})",
                    functools.partial(pm.plot_optimization_history, study, **target(i)),
                    functools.partial(pv.plot_optimization_history, study, **target(i)),
                )
            )
    else:
        skipped.append(("optimization_history", "no COMPLETE trial"))
    if any(t.intermediate_values for t in trials):
        plots.append(
            Plot(
                "learning_curves",
                f"Learning curves ({names[0]} per step)",
                lambda: _curves_png(study, names[0]),
                lambda: _curves_html(study, names[0]),
            )
        )
    else:
        skipped.append(("learning_curves", "no trial reported an intermediate value"))
    varied = [p for p in params if len({repr(t.params.get(p)) for t in complete}) > 1]
    if len(complete) >= 2 and varied:
        important = _most_important(study, varied, target(0), top_params)
        plots += [
            Plot(
                "param_importances",
                f"Parameter importances ({names[0]})",
                lambda: pm.plot_param_importances(study, **target(0)),
                lambda: pv.plot_param_importances(study, **target(0)),
            ),
            Plot(
                "parallel_coordinate",
                f"Parallel coordinates ({names[0]})",
                lambda: pm.plot_parallel_coordinate(study, **target(0)),
                lambda: pv.plot_parallel_coordinate(study, **target(0)),
                (10.0, 5.0),
            ),
            Plot(
                "slice",
                f"Slice of the most important parameters ({names[0]})",
                lambda: pm.plot_slice(study, params=important, **target(0)),
                lambda: pv.plot_slice(study, params=important, **target(0)),
                (max(8.0, 3.5 * len(important)), 5.0),
            ),
        ]
        if len(important) >= 2:
            plots.append(
                Plot(
                    "contour",
                    f"Contour of the most important parameters ({names[0]})",
                    lambda: pm.plot_contour(study, params=important[:3], **target(0)),
                    lambda: pv.plot_contour(study, params=important[:3], **target(0)),
                    (4.0 * min(3, len(important)) + 2, 3.5 * min(3, len(important)) + 1),
                )
            )
        else:
            skipped.append(("contour", "needs two parameters that vary across COMPLETE trials"))
    else:
        why = "needs at least 2 COMPLETE trials whose parameters differ"
        skipped += [(n, why) for n in ("param_importances", "parallel_coordinate", "slice", "contour")]
    if multi:
        if complete:
            plots.append(
                Plot(
                    "pareto_front",
                    "Pareto front",
                    lambda: pm.plot_pareto_front(study, target_names=names),
                    lambda: pv.plot_pareto_front(study, target_names=names),
                )
            )
        else:
            skipped.append(("pareto_front", "no COMPLETE trial"))
    if any(t.datetime_start for t in trials):
        plots.append(
            Plot("timeline", "Timeline of trials", lambda: pm.plot_timeline(study), lambda: pv.plot_timeline(study))
        )
    else:
        skipped.append(("timeline", "no trial has started"))
    return plots, skipped


def _most_important(study: optuna.Study, params: list[str], target: dict[str, Any], top: int) -> list[str]:
    """The ``top`` parameters by fANOVA importance (all of ``params`` when importance cannot be computed)."""
    import optuna

    try:
        ranked = optuna.importance.get_param_importances(
            study,
            params=params,
            target=target.get("target"),
            evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
        )
    except (RuntimeError, ValueError):
        return params[:top]
    return list(ranked)[:top] or params[:top]


def _curves(study: optuna.Study) -> list[tuple[optuna.trial.FrozenTrial, list[int], list[float]]]:
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.intermediate_values and t.state.name in STATE_STYLE:
            steps = sorted(t.intermediate_values)
            out.append((t, steps, [t.intermediate_values[s] for s in steps]))
    return out


def _curves_png(study: optuna.Study, metric: str) -> Any:
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(8, 5))
    seen = set()
    for t, steps, values in _curves(study):
        color, style = STATE_STYLE[t.state.name]
        label = t.state.name.lower() if t.state.name not in seen else None
        seen.add(t.state.name)
        ax.plot(steps, values, color=color, linestyle=style, marker="o", markersize=3, alpha=0.8, label=label)
        ax.annotate(str(t.number), (steps[-1], values[-1]), fontsize=7, xytext=(3, 0), textcoords="offset points")
    ax.set_xlabel("step (epoch)")
    ax.set_ylabel(metric)
    ax.set_title("Learning curves")
    ax.grid(alpha=0.3)
    ax.legend(title="trial state")
    return ax


def _curves_html(study: optuna.Study, metric: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    seen = set()
    for t, steps, values in _curves(study):
        color, style = STATE_STYLE[t.state.name]
        dash = {"solid": "solid", "dashed": "dash", "dotted": "dot", "dashdot": "dashdot"}[style]
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=values,
                mode="lines+markers",
                name=f"trial {t.number} ({t.state.name.lower()})",
                line={"color": color, "dash": dash},
                legendgroup=t.state.name,
                showlegend=True,
            )
        )
        seen.add(t.state.name)
    fig.update_layout(title="Learning curves", xaxis_title="step (epoch)", yaxis_title=metric)
    return fig
