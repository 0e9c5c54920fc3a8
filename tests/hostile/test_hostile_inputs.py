"""A table of malformed specs, command lines, study names and storage URLs, each with its one-line message.

Every case runs ``studies`` in this process and expects exit 2 and exactly the
line in the table (``{spec}`` is the spec file, ``{dir}`` the test's folder).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Sandbox, assert_clean_outcome, run_cli

RULE = "use 1 to 100 characters: letters, digits, '_', '-' and '.', starting with a letter or digit, no '..'"
SPACE = "search_space: tiny-fast\n"
LAUGHS = "".join(
    f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([f'*{chr(96 + i)}'] * 10) if i else 'x, x, x, x, x, x, x, x, x, x'}]\n"
    for i in range(7)
)


def _name(name_yaml: str, problem: str, got: str) -> tuple[str, str]:
    return (
        f"name: {name_yaml}\n{SPACE}",
        f"error: {{spec}}: name: not a valid study name ({problem}): {RULE} (got {got})",
    )


# (id, spec text, extra arguments after `validate {spec}`, expected line)
SPECS: list[tuple[str, str, list[str], str]] = [
    ("name-traversal", *_name('"../x"', "it holds a path separator", "'../x'"), []),
    ("name-separator", *_name("a/b", "it holds a path separator", "'a/b'"), []),
    ("name-backslash", *_name('"a\\\\b"', "it holds a path separator", "'a\\\\b'"), []),
    ("name-dotdot", *_name('".."', "it holds '..'", "'..'"), []),
    ("name-inner-dotdot", *_name("a..b", "it holds '..'", "'a..b'"), []),
    ("name-empty", *_name('""', "it is empty", "''"), []),
    ("name-bell", *_name('"a\\ab"', "it holds a control character", "'a\\x07b'"), []),
    ("name-newline", *_name('"a\\nb"', "it holds a control character", "'a\\nb'"), []),
    ("name-bidi", *_name('"a\\u202eb"', "it holds a control character", "'a\\u202eb'"), []),
    ("name-non-ascii", *_name("naïve", "it holds 'ï'", "'naïve'"), []),
    ("name-dash-first", *_name("-x", "it must start with a letter or digit", "'-x'"), []),
    ("name-number", *_name("12", "it is int, not text", "12"), []),
    (
        "name-300",
        *_name(
            "a" * 300,
            "it is 300 characters long, more than 100",
            f"'{'a' * 59}...{'a' * 9}' (302 characters)",
        ),
        [],
    ),
]
SPECS = [(case_id, text, args, expected) for case_id, text, expected, args in SPECS]  # type: ignore[misc]
SPECS += [
    (
        "billion-laughs",
        f"name: q\n{SPACE}{LAUGHS}",
        [],
        "error: spec {spec} is refused: it expands to more than 100000 values (anchors and aliases counted in full): "
        "write the spec out plainly",
    ),
    (
        "merge-key-laughs",
        f"name: q\n{SPACE}{LAUGHS}budget: {{<<: *g}}\n",
        [],
        "error: spec {spec} is refused: it expands to more than 100000 values (anchors and aliases counted in full): "
        "write the spec out plainly",
    ),
    (
        "deep-nesting",
        "name: q\nx: " + "[" * 40 + "]" * 40 + "\n",
        [],
        "error: spec {spec} is refused: it nests deeper than 32 levels (line 2): write the spec out plainly",
    ),
    (
        "recursive-alias",
        "name: &a [*a]\n",
        [],
        "error: spec {spec} is refused: the alias *a refers to a node that holds it (line 1): "
        "write the spec out plainly",
    ),
    (
        "huge-integer",
        f"name: q\n{SPACE}budget: {{n_trials: {'9' * 5000}}}\n",
        [],
        "error: spec {spec} is not valid YAML: a value cannot be read (Exceeds the limit (4300 digits) for integer "
        "string conversion: value has 5000 digits)",
    ),
    (
        "empty-timestamp",
        f"name: q\n{SPACE}description: !!timestamp\n",
        [],
        "error: spec {spec} is not valid YAML: a value does not fit its !! tag: "
        "check the tagged values, or drop the tags",
    ),
    (
        "timeout-inf",
        f"name: q\n{SPACE}budget: {{timeout: .inf}}\n",
        [],
        "error: {spec}: budget.timeout: inf is not a finite number: give a number (or null)",
    ),
    (
        "learning-rate-nan",
        f"name: q\n{SPACE}trainer: {{learning_rate: .nan}}\n",
        [],
        "error: {spec}: trainer.learning_rate: nan is not a finite number: give a number (or null)",
    ),
    (
        "space-bound-inf",
        "name: q\nsearch_space: {learning_rate: {type: float, low: 1.0e-5, high: .inf, log: true}}\n",
        [],
        "error: {spec}: search_space.learning_rate.high: inf is not a finite number: give a number (or null)",
    ),
    (
        "enqueue-nan",
        f"name: q\n{SPACE}enqueue: [{{learning_rate: .nan}}]\n",
        [],
        "error: {spec}: enqueue[0].learning_rate: nan is not a finite number: give a number (or null)",
    ),
    (
        "python-tag",
        f"name: q\n{SPACE}x: !!python/object/apply:os.system ['true']\n",
        [],
        "error: spec {spec} line 3 is not valid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'",
    ),
    (
        "duplicate-key",
        f"name: q\nname: r\n{SPACE}",
        [],
        "error: spec {spec} line 2 is not valid YAML: the key 'name' is given twice (on lines 1 and 2): keep one",
    ),
    (
        "binary-key",
        f"name: q\n{SPACE}sampler: {{options: {{!!binary aGk=: 1}}}}\n",
        [],
        "error: {spec}: sampler.options: the key b'hi' is not a name (YAML read it as bytes): "
        "write the key as plain text",
    ),
    (
        "set-date-key",
        f"name: q\n{SPACE}",
        ["--set", "sampler.options={2001-01-01: 1}"],
        "error: {spec}: sampler.options: the key datetime.date(2001, 1, 1) is not a name (YAML read it as date): "
        "write the key as plain text",
    ),
    (
        "not-a-mapping",
        "- name: q\n",
        [],
        "error: spec {spec} must be a YAML mapping with at least name and search_space",
    ),
    ("empty-file", "", [], "error: spec {spec} must be a YAML mapping with at least name and search_space"),
    (
        "space-preset-traversal",
        "name: q\nsearch_space: ../../studies/presets/quickstart\n",
        [],
        "error: {spec}: search_space: unknown search space preset '../../studies/presets/quickstart': "
        "choose one of bert-continuous, bert-paper, tiny-fast (got '../../studies/presets/quickstart')",
    ),
    (
        "boolean-trials",
        f"name: q\n{SPACE}budget: {{n_trials: true}}\n",
        [],
        "error: {spec}: budget.n_trials: true is a boolean, not an integer: give an integer",
    ),
    (
        "set-name-traversal",
        f"name: q\n{SPACE}",
        ["--set", "name=../x"],
        f"error: {{spec}}: name: not a valid study name (it holds a path separator): {RULE} (got '../x')",
    ),
    (
        "set-name-control",
        f"name: q\n{SPACE}",
        ["--set", "name=a\x1b[31mb"],
        f"error: {{spec}}: name: not a valid study name (it holds a control character): {RULE} (got 'a\\x1b[31mb')",
    ),
    (
        "set-empty-part",
        f"name: q\n{SPACE}",
        ["--set", "budget..n_trials=1"],
        "error: --set 'budget..n_trials': give a dotted path of field names (e.g. budget.n_trials)",
    ),
    (
        "set-no-key",
        f"name: q\n{SPACE}",
        ["--set", "=3"],
        "error: --set '=3' is not of the form key.path=value (e.g. --set budget.n_trials=10)",
    ),
    (
        "set-no-equals",
        f"name: q\n{SPACE}",
        ["--set", "budget.n_trials"],
        "error: --set 'budget.n_trials' is not of the form key.path=value (e.g. --set budget.n_trials=10)",
    ),
    (
        "set-inf",
        f"name: q\n{SPACE}",
        ["--set", "budget.timeout=.inf"],
        "error: {spec}: budget.timeout: inf is not a finite number: give a number (or null)",
    ),
    (
        "set-laughs",
        f"name: q\n{SPACE}",
        ["--set", "description=" + LAUGHS.replace("\n", ", ").join("{}")],
        "error: --set description: it expands to more than 100000 values (anchors and aliases counted in full)",
    ),
    (
        "set-deep",
        f"name: q\n{SPACE}",
        ["--set", "description=" + "[" * 40 + "]" * 40],
        "error: --set description: it nests deeper than 32 levels (line 1)",
    ),
    (
        "set-too-long",
        f"name: q\n{SPACE}",
        ["--set", "description=" + "x" * 70_000],
        "error: --set description: the value is longer than 65536 characters",
    ),
    (
        "set-into-scalar",
        f"name: q\n{SPACE}",
        ["--set", "name.x=1"],
        "error: --set name.x: 'name' is not a section (it is 'q')",
    ),
]


@pytest.mark.parametrize(("text", "args", "expected"), [c[1:] for c in SPECS], ids=[c[0] for c in SPECS])
def test_malformed_spec(sandbox: Sandbox, text: str, args: list[str], expected: str) -> None:
    spec = sandbox.specs / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    result = run_cli(["validate", str(spec), *args])
    assert_clean_outcome(result)
    assert result.code == 2
    assert result.err.rstrip("\n") == expected.format(spec=spec, dir=sandbox.specs)


# (id, files to write under the spec folder, arguments, expected line)
COMMANDS: list[tuple[str, dict[str, bytes | None], list[str], str]] = [
    (
        "spec-too-large",
        {"big.yaml": b"name: q\n" + b"#" * (1024 * 1024)},
        ["validate", "{dir}/big.yaml"],
        "error: spec {dir}/big.yaml is larger than 1024 KiB: a spec is a short YAML file; check it is the spec file",
    ),
    (
        "spec-not-utf8",
        {"latin.yaml": b"name: caf\xe9\n"},
        ["validate", "{dir}/latin.yaml"],
        "error: spec {dir}/latin.yaml is not UTF-8 text (byte 0xe9 at offset 9): save it as UTF-8, "
        "or check it is the spec file",
    ),
    (
        "spec-is-a-folder",
        {"folder.yaml/": None},
        ["validate", "{dir}/folder.yaml"],
        "error: spec {dir}/folder.yaml is a folder, not a YAML file: give the path of the spec file in it",
    ),
    (
        "new-name-traversal",
        {},
        ["launch", "quickstart", "--new-name", "../x"],
        f"error: --new-name '../x' is not a valid study name (it holds a path separator): {RULE}",
    ),
    (
        "new-name-empty",
        {},
        ["launch", "quickstart", "--new-name", ""],
        f"error: --new-name '' is not a valid study name (it is empty): {RULE}",
    ),
    (
        "new-name-300",
        {},
        ["launch", "quickstart", "--new-name", "b" * 300],
        f"error: --new-name '{'b' * 39}...{'b' * 9}' (300 characters) is not a valid study name "
        f"(it is 300 characters long, more than 100): {RULE}",
    ),
    (
        "new-name-control",
        {},
        ["launch", "quickstart", "--new-name", "a\rb"],
        f"error: --new-name 'a\\rb' is not a valid study name (it holds a control character): {RULE}",
    ),
    (
        "resume-traversal",
        {},
        ["resume", "../../etc"],
        f"error: study '../../etc' is not a valid study name (it holds a path separator): {RULE}",
    ),
    (
        "promote-separator",
        {},
        ["promote", "a/b"],
        f"error: study 'a/b' is not a valid study name (it holds a path separator): {RULE}",
    ),
    (
        "promote-dotdot",
        {},
        ["promote", ".."],
        f"error: study '..' is not a valid study name (it holds '..'): {RULE}",
    ),
    (
        "storage-unsupported-with-password",
        {},
        ["list", "--storage", "mongodb://admin:hunter2@db.example/studies"],
        "error: storage URL 'mongodb://admin:***@db.example/studies' is not supported: use "
        "sqlite:///path/to/studies.db, postgresql://user@host/db or mysql+pymysql://user@host/db",
    ),
    (
        "storage-raw-at-in-password",
        {},
        ["list", "--storage", "postgresql://admin:hun@ter2@127.0.0.1/studies"],
        "error: storage URL 'postgresql://admin:***@127.0.0.1/studies' has a raw '@' in its password: write it as %40 "
        "(and other special characters percent-encoded too, e.g. user:p%40ss@host/db)",
    ),
    (
        "storage-sqlite-missing",
        {},
        ["status", "q", "--storage", "sqlite:///{dir}/missing.db"],
        "error: no study store at sqlite:///{dir}/missing.db ({dir}/missing.db does not exist): check --storage, "
        "STUDIES_STORAGE and the folder you run in; `studies launch` creates a store",
    ),
    (
        "storage-no-scheme",
        {},
        ["list", "--storage", "admin:hunter2@db.example/studies"],
        "error: storage URL 'admin:***@db.example/studies' is not supported: use sqlite:///path/to/studies.db, "
        "postgresql://user@host/db or mysql+pymysql://user@host/db",
    ),
    (
        "storage-query-password",
        {},
        ["list", "--storage", "redis://db.example/0?password=hunter2"],
        "error: storage URL 'redis://db.example/0?password=***' is not supported: use sqlite:///path/to/studies.db, "
        "postgresql://user@host/db or mysql+pymysql://user@host/db",
    ),
    (
        "dashboard-port",
        {},
        ["dashboard", "--port", "0"],
        "error: argument --port: 0 is not a port number: give one from 1 to 65535; see `studies dashboard --help`",
    ),
]


@pytest.mark.parametrize(("files", "args", "expected"), [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_malformed_command(sandbox: Sandbox, files: dict[str, bytes | None], args: list[str], expected: str) -> None:
    for name, content in files.items():
        if content is None:
            (sandbox.specs / name).mkdir()
        else:
            (sandbox.specs / name).write_bytes(content)
    result = run_cli([arg.format(dir=sandbox.specs) for arg in args])
    assert_clean_outcome(result)
    assert result.code == 2
    assert result.err.rstrip("\n") == expected.format(dir=sandbox.specs)
    assert "hunter2" not in result.out + result.err


def test_cases_are_many() -> None:
    assert len(SPECS) + len(COMMANDS) + len(PATH_CASES) >= 40


def _symlinked_model_dir(tmp: Path) -> str:
    from storage import model_dir

    (tmp / "models").mkdir()
    (tmp / "elsewhere").mkdir()
    (tmp / "models" / "q").symlink_to(tmp / "elsewhere")
    model_dir(tmp / "models", "q")
    return ""


def _model_dir_traversal(tmp: Path) -> str:
    from storage import model_dir

    model_dir(tmp / "models", "../x")
    return ""


def _trial_folder_absolute(tmp: Path) -> str:
    from storage import contained

    contained(tmp / "runs", "trials", "/etc", what="trial folder")
    return ""


def _data_too_large(tmp: Path) -> str:
    from trainers import TaskSpec
    from trainers._sources import load_source

    (tmp / "rows.csv").write_text("text,label\n" + "some words,1\n" * 20_000)
    load_source(TaskSpec(dataset=str(tmp / "rows.csv")), tmp / "cache")
    return ""


def _data_limit_not_a_number(tmp: Path) -> str:
    from trainers import TaskSpec
    from trainers._sources import load_source

    (tmp / "rows.csv").write_text("text,label\nsome words,1\n")
    load_source(TaskSpec(dataset=str(tmp / "rows.csv")), tmp / "cache")
    return ""


# (id, call, environment, expected message) for the checks below the command line.
PATH_CASES = [
    (
        "model-dir-symlink",
        _symlinked_model_dir,
        {},
        "the model directory '{tmp}/models/q' would be outside '{tmp}/models' (resolves to '{tmp}/elsewhere'): "
        "use a study name that is one plain folder name, and no symbolic link that points elsewhere",
    ),
    (
        "model-dir-traversal",
        _model_dir_traversal,
        {},
        "the model directory '{tmp}/models/../x' would be outside '{tmp}/models' (resolves to '{tmp}/x'): "
        "use a study name that is one plain folder name, and no symbolic link that points elsewhere",
    ),
    (
        "trial-folder-absolute",
        _trial_folder_absolute,
        {},
        "the trial folder '/etc' would be outside '{tmp}/runs' (resolves to '/etc'): "
        "use a study name that is one plain folder name, and no symbolic link that points elsewhere",
    ),
    (
        "data-file-too-large",
        _data_too_large,
        {"STUDIES_MAX_DATA_MB": "0.1"},
        "task.dataset file rows.csv is 0.2 MB, more than the limit of 0.1 MB: "
        "sample it down, or raise the limit with STUDIES_MAX_DATA_MB=<megabytes>",
    ),
    (
        "data-limit-not-a-number",
        _data_limit_not_a_number,
        {"STUDIES_MAX_DATA_MB": "lots"},
        "STUDIES_MAX_DATA_MB='lots' is not a positive number of megabytes: e.g. STUDIES_MAX_DATA_MB=8192",
    ),
]


@pytest.mark.parametrize(("call", "env", "expected"), [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES])
def test_folders_and_files_stay_in_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call, env: dict[str, str], expected: str
) -> None:
    from studies._errors import USER_ERRORS

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(USER_ERRORS) as caught:
        call(tmp_path)
    assert str(caught.value) == expected.format(tmp=tmp_path)
    assert not (tmp_path / "elsewhere").exists() or not any((tmp_path / "elsewhere").iterdir())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.org", False),
    ],
)
def test_which_hosts_are_this_machine_only(host: str, loopback: bool) -> None:
    from studies._cmd_store import is_loopback

    assert is_loopback(host) is loopback


def test_the_dashboard_warns_when_it_listens_beyond_this_machine(tmp_path: Path) -> None:
    """A real dashboard on 0.0.0.0: the warning comes before the server's first line."""
    import socket
    import subprocess
    import sys

    import optuna

    store = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(study_name="q", storage=store)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studies._cli",
            "dashboard",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--storage",
            store,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = server.stdout.readline()  # the server is up (or the command ended: an empty line)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    warning = errors.splitlines()[0] if errors else ""
    assert warning.startswith(
        "warning: --host 0.0.0.0 makes the dashboard reachable from other machines, with no login"
    )
    assert banner.startswith(f"optuna-dashboard on {store}: http://0.0.0.0:{port}/")
