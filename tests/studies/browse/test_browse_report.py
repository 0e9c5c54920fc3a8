"""``studies report``: every listed plot as a valid PNG and an HTML page, and the edge cases of small studies."""

from __future__ import annotations

import re
import struct
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

DIST = {"learning_rate": FloatDistribution(1e-4, 1e-2, log=True), "warmup_ratio": FloatDistribution(0.0, 0.2)}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def listed_plots(stdout: str) -> list[str]:
    return re.findall(r"^  (\w+)\.png ", stdout, flags=re.M)


def check_plots(folder: Path, names: list[str]) -> None:
    summary = (folder / "summary.md").read_text()
    assert (folder / "plotly.min.js").stat().st_size > 1_000_000  # the HTML pages open offline
    for name in names:
        width, height = png_size(folder / f"{name}.png")
        assert 600 <= width <= 2000 and 350 <= height <= 1500, (name, width, height)
        assert (folder / f"{name}.png").stat().st_size > 5_000, f"{name}.png looks empty"
        html = (folder / f"{name}.html").read_text()
        assert 'src="plotly.min.js"' in html and "Plotly.newPlot" in html, name
        assert f"]({name}.html)" in summary and f"]({name}.png)" in summary


def make_study(url: str, name: str, directions=("maximize",), metrics=("accuracy",)) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=url, directions=list(directions))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(metrics))
    return study


def add(study, state, values=None, curve=(), **params):
    params = params or {"learning_rate": 1e-3, "warmup_ratio": 0.1}
    study.add_trial(
        create_trial(
            state=state,
            values=values,
            params=params,
            distributions={k: DIST[k] for k in params},
            intermediate_values=dict(enumerate(curve, start=1)),
        )
    )


@pytest.mark.slow
def test_the_quickstart_report_draws_every_plot(quickstart, tmp_path, studies_cli):
    run = studies_cli("report", "quickstart", "--storage", quickstart.url, "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # degenerate-data warnings go to the log, not the terminal
    names = listed_plots(run.stdout)
    expected = {
        "optimization_history",
        "learning_curves",
        "param_importances",
        "parallel_coordinate",
        "slice",
        "contour",
        "timeline",
    }
    assert set(names) == expected, run.stdout
    check_plots(tmp_path / "r", names)
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "## Best trial" in summary and "## Promoted model" in summary and "| 1 | COMPLETE |" in summary


def test_an_empty_study_is_one_clear_error(tmp_path, studies_main):
    url = f"sqlite:///{tmp_path}/s.db"
    make_study(url, "empty")
    run = studies_main("report", "empty", "--storage", url, "--out", str(tmp_path / "r"))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: study 'empty' has no trials yet: nothing to draw; run it first (`studies resume empty`)"
    ]
    assert not (tmp_path / "r").exists()


def test_a_single_trial_gets_what_can_be_drawn_and_says_what_cannot(tmp_path, studies_main):
    url = f"sqlite:///{tmp_path}/s.db"
    add(make_study(url, "single"), TrialState.COMPLETE, [0.8], curve=(0.6, 0.8))
    run = studies_main("report", "single", "--storage", url, "--out", str(tmp_path / "r"))
    assert run.returncode == 0, run.stderr
    assert "has one finished trial: the plots that compare trials are left out" in run.stdout
    assert set(listed_plots(run.stdout)) == {"optimization_history", "learning_curves", "timeline"}
    assert "(not drawn) param_importances: needs at least 2 COMPLETE trials" in run.stdout
    check_plots(tmp_path / "r", listed_plots(run.stdout))


def test_a_study_of_failed_trials_only_gets_its_timeline_and_summary(tmp_path, studies_main):
    url = f"sqlite:///{tmp_path}/s.db"
    study = make_study(url, "failing")
    add(study, TrialState.FAIL, curve=(0.5,))
    add(study, TrialState.FAIL)
    run = studies_main("report", "failing", "--storage", url, "--out", str(tmp_path / "r"))
    assert run.returncode == 0, run.stderr
    assert "has no COMPLETE or PRUNED trial yet" in run.stdout
    assert set(listed_plots(run.stdout)) == {"learning_curves", "timeline"}
    assert "No COMPLETE trial yet" in (tmp_path / "r" / "summary.md").read_text()


def test_failed_and_pruned_curves_are_drawn_apart_and_two_objectives_get_a_pareto_front(tmp_path, studies_main):
    url = f"sqlite:///{tmp_path}/s.db"
    study = make_study(url, "multi", ("maximize", "minimize"), ("accuracy", "eval_loss"))
    for i, (acc, loss) in enumerate([(0.7, 0.5), (0.8, 0.6), (0.75, 0.4), (0.6, 0.7)]):
        add(
            study,
            TrialState.COMPLETE,
            [acc, loss],
            curve=(acc - 0.1, acc),
            learning_rate=1e-3 * (i + 1),
            warmup_ratio=0.05 * i,
        )
    add(study, TrialState.PRUNED, curve=(0.3,))
    add(study, TrialState.FAIL, curve=(0.2, 0.1))
    run = studies_main("report", "multi", "--storage", url, "--out", str(tmp_path / "r"))
    assert run.returncode == 0, run.stderr
    names = listed_plots(run.stdout)
    assert {"pareto_front", "optimization_history_accuracy", "optimization_history_eval_loss"} <= set(names)
    check_plots(tmp_path / "r", names)
    curves = (tmp_path / "r" / "learning_curves.html").read_text()
    assert "(pruned)" in curves and "(fail)" in curves and "(complete)" in curves
