"""User-facing failures of the ``studies`` command: one ``error: ...`` line, exit 2, no traceback, nothing written."""

import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from studies import SpecError, load_spec, validate_spec
from studies._registry import build_sampler, check_names

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {"name": "s", "search_space": "tiny-fast"}
FITS = "{learning_rate: 0.001, warmup_ratio: 0.1, weight_decay: 0.0, per_device_train_batch_size: 16}"


def studies(*args, cwd, timeout=120):
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    env.pop("STUDIES_STORAGE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "studies._cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def one_error_line(run, needle=""):
    """The run failed as a user error: exit 2, one ``error:`` line on stderr and nothing on stdout."""
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, run.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert "Traceback" not in run.stderr and not run.stdout
    assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A SQLite store with one small study in it."""
    url = f"sqlite:///{tmp_path / 'store' / 'studies.db'}"
    (tmp_path / "store").mkdir()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="small", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=3)
    return url


# 1. Spec paths that are not readable YAML files.


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: (d / "specs.yaml").mkdir() or "specs.yaml", "is a folder, not a YAML file"),
        (lambda d: "", "the spec is empty"),
        (lambda d: (d / "latin1.yaml").write_bytes(b"name: caf\xe9\n") and "latin1.yaml", "is not UTF-8 text"),
        (lambda d: (d / "nul.yaml").write_bytes(b"name: a\x00\n") and "nul.yaml", "is not valid YAML"),
    ],
    ids=["folder", "empty", "not-utf8", "control-character"],
)
def test_unreadable_spec_paths_are_one_line(tmp_path: Path, make, needle):
    one_error_line(studies("validate", make(tmp_path), cwd=tmp_path), needle)


# 2. Duplicate keys.


def test_a_key_given_twice_in_the_spec_is_refused_with_its_line(tmp_path: Path):
    spec = tmp_path / "dup.yaml"
    spec.write_text("name: first\nsearch_space: tiny-fast\nbudget:\n  n_trials: 3\n  n_trials: 5\n")
    with pytest.raises(
        SpecError, match="line 5 is not valid YAML: the key 'n_trials' is given twice .on lines 4 and 5."
    ):
        load_spec(str(spec))
    spec.write_text("name: first\nsearch_space: tiny-fast\nname: second\n")
    one_error_line(studies("validate", str(spec), cwd=tmp_path), "the key 'name' is given twice (on lines 1 and 3)")


def test_a_key_given_twice_in_a_set_value_is_refused():
    with pytest.raises(SpecError, match="--set enqueue: the key 'learning_rate' is given twice"):
        load_spec("quickstart", ["enqueue=[{learning_rate: 0.001, learning_rate: 0.002}]"])


def test_yaml_merge_keys_may_still_be_overridden(tmp_path: Path):
    spec = tmp_path / "merge.yaml"
    spec.write_text(
        "name: merged\nsearch_space: tiny-fast\nenqueue:\n"
        "  - &base {learning_rate: 0.001, warmup_ratio: 0.1, weight_decay: 0.0, per_device_train_batch_size: 16}\n"
        "  - <<: *base\n"
        "    learning_rate: 0.002\n"
    )
    loaded = load_spec(str(spec))
    base = {"learning_rate": 0.001, "warmup_ratio": 0.1, "weight_decay": 0.0, "per_device_train_batch_size": 16}
    # The merged mapping keeps what it does not override and takes the override, without a duplicate-key error.
    assert loaded.enqueue == [base, {**base, "learning_rate": 0.002}]


# 3. Booleans are not numbers.


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("budget.n_trials=true", "budget.n_trials: true is a boolean, not an integer"),
        ("budget.max_failures=false", "budget.max_failures: false is a boolean, not an integer"),
        ("budget.timeout=true", "budget.timeout: true is a boolean, not a number"),
        ("sampler.seed=true", "sampler.seed: true is a boolean"),
        ("trainer.num_train_epochs=true", "trainer.num_train_epochs: true is a boolean"),
        ("task.max_length=true", "task.max_length: true is a boolean"),
        ("resources.cpus=true", "resources.cpus: true is a boolean, not a number"),
        ("search_space.learning_rate={type: int, low: true, high: 3}", "search_space.params.learning_rate.low: true"),
    ],
)
def test_booleans_do_not_pass_as_numbers(override, field):
    with pytest.raises(SpecError, match="preset quickstart: ") as info:
        load_spec("quickstart", [override])
    assert field in str(info.value)


def test_integral_floats_and_real_booleans_still_pass():
    spec = load_spec("quickstart", ["budget.n_trials=1000.0", "budget.count_failed=true", "trainer.seed=7.0"])
    assert spec.budget.n_trials == 1000 and isinstance(spec.budget.n_trials, int)
    assert spec.budget.count_failed is True and spec.trainer.seed == 7
    choices = load_spec("quickstart", ["search_space.seed={type: categorical, choices: [true, false]}"])
    assert choices.search_space.params["seed"].choices == [True, False]


def test_booleans_do_not_pass_as_numeric_sampler_or_pruner_options():
    spec = validate_spec({**MINIMAL, "sampler": {"name": "tpe", "options": {"n_startup_trials": True}}})
    with pytest.raises(SpecError, match="sampler.options.n_startup_trials: true is a boolean"):
        build_sampler(spec)
    spec = validate_spec({**MINIMAL, "pruner": {"name": "median", "options": {"n_warmup_steps": False}}})
    with pytest.raises(SpecError, match="pruner.options.n_warmup_steps: false is a boolean"):
        check_names(spec)
    assert build_sampler(validate_spec({**MINIMAL, "sampler": {"options": {"multivariate": False}}}))


# 4. and 5. Store paths.


@pytest.mark.parametrize(
    "command", [["list"], ["status", "small"], ["dashboard"], ["promote", "small"], ["delete", "small", "--yes"]]
)
def test_read_only_commands_do_not_create_a_mistyped_sqlite_store(tmp_path: Path, command):
    url = f"sqlite:///{tmp_path / 'typo' / 'studies.db'}"
    one_error_line(studies(*command, "--storage", url, cwd=tmp_path), f"no study store at {url}")
    assert not (tmp_path / "typo").exists()


def test_read_only_commands_still_read_an_existing_store(tmp_path: Path, store: str):
    listing = studies("list", "--storage", store, cwd=tmp_path)
    assert listing.returncode == 0 and "small" in listing.stdout, listing.stderr
    assert studies("status", "small", "--storage", store, cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("command", ["list", "launch"])
def test_a_sqlite_path_under_a_regular_file_is_one_line(tmp_path: Path, command):
    (tmp_path / "notes.txt").write_text("not a folder\n")
    url = f"sqlite:///{tmp_path / 'notes.txt' / 'studies.db'}"
    args = ["launch", "quickstart", "--set", "wandb.mode=disabled"] if command == "launch" else ["list"]
    line = one_error_line(studies(*args, "--storage", url, cwd=tmp_path))
    assert "internal error" not in line and "notes.txt" in line


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_a_sqlite_path_in_an_unwritable_place_is_one_line(tmp_path: Path):
    one_error_line(studies("list", "--storage", "sqlite:////proc/x/studies.db", cwd=tmp_path), "no study store")
    line = one_error_line(
        studies(
            "launch",
            "quickstart",
            "--set",
            "wandb.mode=disabled",
            "--storage",
            "sqlite:////proc/x/studies.db",
            cwd=tmp_path,
        )
    )
    assert "cannot create the folder /proc/x" in line


# 6. The dashboard's host and port.


def test_dashboard_port_out_of_range_is_one_line(tmp_path: Path, store: str):
    one_error_line(studies("dashboard", "--port", "99999", "--storage", store, cwd=tmp_path), "99999 is not a port")


def test_dashboard_port_in_use_is_one_line_before_the_server_starts(tmp_path: Path, store: str):
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = studies("dashboard", "--port", str(port), "--storage", store, cwd=tmp_path, timeout=60)
    line = one_error_line(run, "the port is in use")
    assert "pick another --port" in line
    assert "Listening" not in run.stderr and "Bottle" not in run.stderr


def test_dashboard_host_that_is_not_this_machine_blames_the_host(tmp_path: Path, store: str):
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine.
    run = studies("dashboard", "--host", "192.0.2.1", "--port", "18080", "--storage", store, cwd=tmp_path, timeout=60)
    line = one_error_line(run, "--host 192.0.2.1")
    assert "--port" not in line


# 7. A closed pipe.


def test_a_closed_pipe_ends_quietly(tmp_path: Path, store: str):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "studies._cli", "status", "small", "--storage", store],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # like `| head -0`: nobody reads what status prints
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert err == ""
    assert proc.returncode in (0, 141)


# 8. Library warnings.


def test_optuna_warnings_do_not_leak_into_the_output(tmp_path: Path):
    run = studies(
        "validate", "quickstart", "--set", "pruner.name=patient", "--set", "pruner.options.patience=-1", cwd=tmp_path
    )
    one_error_line(run, "patience cannot be negative")
    overrides = ["sampler.name=cmaes", "sampler.options.sigma0=0.1", "pruner.name=patient", "pruner.options.patience=1"]
    ok = studies("validate", "quickstart", *[arg for item in overrides for arg in ("--set", item)], cwd=tmp_path)
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    assert ok.stdout.strip().splitlines() == ["quickstart: valid (4 parameters, 6 trials)"]


# 9. Options of a pruner that takes none.


def test_options_of_the_none_pruner_say_it_takes_none():
    spec = validate_spec({**MINIMAL, "pruner": {"name": "none", "options": {"bogus": 2}}})
    with pytest.raises(SpecError) as info:
        check_names(spec)
    assert str(info.value) == "pruner.options.bogus: the none pruner takes no options: remove pruner.options"


# 11. Enqueued values.


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{learning_rate: abc}", "enqueue[1].learning_rate: 'abc' is not a number: give a float from 0.0003 to 0.003"),
        (FITS.replace("0.001", "true"), "enqueue[1].learning_rate: true is not a number"),
        (FITS.replace("0.001", "0.5"), "enqueue[1].learning_rate: 0.5 is outside the search space"),
        (
            FITS.replace("16}", "'16'}"),
            "enqueue[1].per_device_train_batch_size: '16' is not one of the choices [16, 32]",
        ),
        (FITS.replace("}", ", seed: 1}"), "enqueue[1].seed: not a parameter of the search space"),
        ("{learning_rate: 0.001}", "enqueue[1]: per_device_train_batch_size, warmup_ratio, weight_decay missing"),
    ],
)
def test_enqueued_values_are_checked_by_name(config, message):
    with pytest.raises(SpecError) as info:
        load_spec("quickstart", [f"enqueue=[{FITS}, {config}]"])
    assert message in str(info.value)


def test_an_enqueued_value_that_fits_still_passes():
    assert len(load_spec("quickstart", [f"enqueue=[{FITS}]"]).enqueue) == 1


# 10. Ctrl-C.


@pytest.fixture
def interrupted_launch(monkeypatch):
    import studies._launcher

    def launch(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(studies._launcher, "launch", launch)
    monkeypatch.setattr("studies._cli._quiet_libraries", lambda: None)  # process-wide settings, for the CLI only
    monkeypatch.delenv("STUDIES_STORAGE", raising=False)


def test_ctrl_c_names_the_study_to_resume_when_the_store_kept_it(interrupted_launch, store, capsys):
    from studies._cli import main

    optuna.create_study(study_name="quickstart", storage=store)
    assert main(["launch", "quickstart", "--storage", store]) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"interrupted: continue with `studies resume quickstart --storage {store}`"


def test_ctrl_c_does_not_offer_to_resume_a_study_that_was_not_kept(interrupted_launch, store, capsys):
    from studies._cli import main

    assert main(["launch", "quickstart", "--storage", store]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted: no trial of study quickstart had started, so nothing was kept")
    assert "resume" not in err and "STUDY" not in err


# 12. The launch summary.


@pytest.mark.parametrize(
    ("started", "finished", "line"),
    [
        (2, {}, "study q: this launch started 2 trials (none finished)"),
        (0, {}, "study q: this launch started 0 trials"),
        (1, {"COMPLETE": 1, "PRUNED": 0}, "study q: this launch started 1 trial (1 complete)"),
        (3, {"COMPLETE": 2, "PRUNED": 1}, "study q: this launch started 3 trials (2 complete, 1 pruned)"),
    ],
)
def test_launch_summary_reads_naturally(started, finished, line, capsys):
    from studies._cmd_run import _summarize

    outcome = SimpleNamespace(study_name="q", started=started, finished=finished, best_value=None, promoted=None)
    assert _summarize(outcome) == 0
    assert capsys.readouterr().out.splitlines() == [line]


# 13. Usage errors.


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["lauch"], "invalid choice: 'lauch'"),
        (["validate"], "the following arguments are required: SPEC_OR_PRESET; see `studies validate --help`"),
        (["list", "--bogus"], "unrecognized arguments: --bogus; see `studies list --help`"),
        (["dashboard", "--port", "http"], "argument --port: 'http' is not a port number"),
        ([], "the following arguments are required: COMMAND; see `studies --help`"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args, needle):
    one_error_line(studies(*args, cwd=tmp_path), needle)


def test_help_is_unchanged(tmp_path: Path):
    run = studies("--help", cwd=tmp_path)
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.startswith("usage: studies [-h] [--debug] [--version] COMMAND ...")
    sub = studies("dashboard", "--help", cwd=tmp_path)
    assert sub.returncode == 0 and "--port PORT" in sub.stdout
