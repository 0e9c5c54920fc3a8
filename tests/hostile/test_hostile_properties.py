"""Generated specs and ``--set`` overrides: each ends valid or as one ``error:`` line with exit 2.

The command runs in this process (``main()``), so 10,000 examples take seconds.
Besides the outcome, every example checks that nothing was written: not the
store (``STUDIES_STORAGE`` and ``--storage`` point at a temporary SQLite file),
not the working folder, where relative ``work_dir``, ``promotion.dir`` and
``wandb.dir`` would land.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from conftest import Sandbox, assert_clean_outcome, run_cli
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from studies._presets import PRESET_DIR

EXAMPLES = 7_000  # and 3,000 in the --set test: 10,000 in all
BASE = yaml.safe_load((PRESET_DIR / "quickstart.yaml").read_text())

# Dotted paths a careless or hostile spec sets: real fields, fields that become folders, and typos.
PATHS = [
    "name",
    "description",
    "task",
    "task.dataset",
    "task.max_length",
    "task.train_size",
    "task.eval_fraction",
    "task.labels",
    "model",
    "model.name",
    "model.hidden_size",
    "model.num_heads",
    "model.trust_remote_code",
    "trainer.learning_rate",
    "trainer.num_train_epochs",
    "trainer.precision",
    "trainer.warmup_ratio",
    "objective",
    "objective.metric",
    "objective.direction",
    "select",
    "search_space",
    "search_space.learning_rate",
    "search_space.learning_rate.low",
    "search_space.learning_rate.high",
    "search_space.learning_rate.log",
    "search_space.params",
    "sampler",
    "sampler.name",
    "sampler.seed",
    "sampler.options",
    "sampler.options.n_startup_trials",
    "pruner.name",
    "pruner.options",
    "budget",
    "budget.n_trials",
    "budget.timeout",
    "budget.max_concurrent",
    "resources.cpus",
    "resources.gpus",
    "enqueue",
    "storage",
    "work_dir",
    "wandb.dir",
    "wandb.mode",
    "promotion.dir",
    "promotion.enabled",
    "nmae",
    "budget.n_trails",
]
HOSTILE_NAMES = [
    "../x",
    "a/b",
    "..",
    ".",
    "",
    "a" * 300,
    "a\x00b",
    "a\nb",
    "a\x1bb",
    "C:\\x",
    "~",
    "/etc",
    "a..b",
    "-x",
    "ok-name",
    "q.1",
    "naïve",
    "a\u202eb",
]
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e-4, 0.5, 1, 2, 64, "tpe", "median", "tiny-fast", "synthetic", "maximize", "auto"]),
    st.sampled_from(HOSTILE_NAMES),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.one_of(TEXT, st.sampled_from(PATHS)), inner, max_size=4)
    ),
    max_leaves=5,
)
DELETE = object()
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# A failing example is reported as found: shrinking these nested specs takes minutes.
NO_SHRINKING = (Phase.explicit, Phase.reuse, Phase.generate)

# Raw YAML pieces: anchors, merge keys, tags, deep nesting and numbers Python cannot read.
TOKENS = [
    "name: q\n",
    "search_space: tiny-fast\n",
    "budget: ",
    "a: &a ",
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n",
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
    "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
    "<<: *a\n",
    "*a",
    "&r [*r]",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "\n",
    "  ",
    "x",
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!!binary aGk=",
    "!!set {a, b}",
    "!!timestamp 2001-12-14",
    ".nan",
    "-.inf",
    "1e400",
    "9" * 5000,
    "'",
    '"',
    "\t",
    "%YAML 1.1\n---\n",
    "---\n",
    "...\n",
    "? [1, 2]\n: x\n",
    "[" * 40,
    "]" * 40,
    "\x00",
    "\ufeff",
]
RAW = st.lists(st.sampled_from(TOKENS), max_size=12).map("".join)


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if value is DELETE:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def _flow(value: Any) -> str:
    """``value`` as the YAML a user would type after ``--set key=``."""
    return yaml.dump(value, Dumper=DUMPER, default_flow_style=True, width=10**6).removesuffix("\n...\n").strip()


@st.composite
def spec_texts(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(RAW)
    data = copy.deepcopy(BASE)
    for path, value in draw(
        st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(VALUES, st.just(DELETE))), max_size=3)
    ):
        _set(data, path, value)
    return yaml.dump(data, Dumper=DUMPER, allow_unicode=draw(st.booleans()), sort_keys=False)


OVERRIDES = st.lists(
    st.one_of(
        st.builds(lambda p, v: f"{p}={_flow(v)}", st.sampled_from(PATHS), VALUES),
        st.builds(lambda p, v: f"{p}={v}", st.sampled_from(PATHS), st.one_of(TEXT, RAW)),
        TEXT,
    ),
    max_size=3,
)


def test_generated_specs_and_overrides_end_valid_or_as_one_line(sandbox: Sandbox) -> None:
    seen = {"examples": 0, "valid": 0}
    spec = sandbox.specs / "spec.yaml"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=NO_SHRINKING,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(text=spec_texts(), overrides=OVERRIDES, new_name=st.one_of(st.none(), st.sampled_from(HOSTILE_NAMES)))
    def check(text: str, overrides: list[str], new_name: str | None) -> None:
        seen["examples"] += 1
        spec.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        sets = [arg for item in overrides for arg in ("--set", item)]
        validated = run_cli(["validate", str(spec), *sets])
        assert_clean_outcome(validated, (text, overrides))
        if validated.code == 0:
            seen["valid"] += 1
            assert validated.out.endswith(" trials)\n")
        else:
            # The same mistakes given to launch stop before anything is written.
            renamed = ["--new-name", new_name] if new_name is not None else []
            launched = run_cli(["launch", str(spec), *sets, *renamed, "--storage", sandbox.store_url, "--quiet"])
            assert_clean_outcome(launched, (text, overrides, new_name))
            assert launched.code == 2
        assert not sandbox.written(), (text, overrides, sandbox.written())

    check()
    assert seen["examples"] >= EXAMPLES
    # The generator must reach valid specs too, or it tests only the first check.
    assert seen["valid"] >= EXAMPLES // 20, seen


def test_set_overrides_alone_end_valid_or_as_one_line(sandbox: Sandbox) -> None:
    """``--set`` on the quickstart preset, the way users type them."""
    seen = {"examples": 0}

    @settings(
        max_examples=3_000,
        deadline=None,
        database=None,
        phases=NO_SHRINKING,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(overrides=OVERRIDES)
    def check(overrides: list[str]) -> None:
        seen["examples"] += 1
        sets = [arg for item in overrides for arg in ("--set", item)]
        assert_clean_outcome(run_cli(["validate", "quickstart", *sets]), overrides)
        resumed = run_cli(["resume", "quickstart", *sets, "--quiet"])  # no store: an error, and none is created
        assert_clean_outcome(resumed, overrides)
        assert resumed.code == 2
        assert not sandbox.written(), (overrides, sandbox.written())

    check()
    assert seen["examples"] >= 3_000


def test_the_sandbox_sees_writes(sandbox: Sandbox, tmp_path: Path) -> None:
    """The checks above can fail: a valid launch's first write lands where the sandbox looks."""
    (sandbox.cwd / "runs").mkdir()
    assert sandbox.written() == ["runs"]
    (sandbox.cwd / "runs").rmdir()
