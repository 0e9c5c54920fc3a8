import subprocess
import sys
from pathlib import Path

import pytest

from storage import redact
from studies import SpecError, load_spec, study_preset_names, validate_spec
from studies._registry import SAMPLER_NAMES, build_pruner, build_sampler, check_names

MINIMAL = {"name": "s", "search_space": "bert-continuous"}


def test_every_shipped_preset_validates():
    names = study_preset_names()
    assert {"quickstart", "imdb-bert", "boolq-roberta"} <= set(names)
    for name in names:
        spec = load_spec(name)
        check_names(spec)
        assert spec.name == name


def test_quickstart_meets_the_smoke_study_shape():
    spec = load_spec("quickstart")
    assert spec.task.dataset == "synthetic" and spec.model.name == "tiny-bert"
    assert spec.budget.n_trials >= 6 and spec.budget.max_concurrent == 2
    assert spec.trainer.num_train_epochs >= 2
    assert spec.resources.gpus == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["budget.n_trail=3"], "budget: unknown key 'n_trail'; did you mean 'n_trials'?"),
        (["trainer.learnig_rate=1"], "trainer: unknown key 'learnig_rate'; did you mean 'learning_rate'?"),
        (["budget.n_trials=0"], "budget.n_trials: Input should be greater than or equal to 1 (got 0)"),
        (["objective.direction=up"], "objective.0.direction: Input should be 'maximize' or 'minimize'"),
        (["search_space.learning_rate.low=1"], "search_space.params.learning_rate: low (1.0) must be <= high"),
        (["search_space=nope"], "unknown search space preset 'nope': choose one of"),
        (["resources.gpus=-1"], "resources.gpus: Input should be greater than or equal to 0"),
        (["name=has space"], "name: not a valid study name (it holds ' ')"),
        (["colour=red"], "spec: unknown key 'colour'"),
        (["trainer.precision=bf16"], "trainer.precision bf16 needs a CUDA GPU but resources.gpus is 0"),
        (["trainer.lr_scheduler_type=cosin"], "trainer.lr_scheduler_type: Input should be 'linear', 'cosine'"),
        # Values the space can sample must be valid trainer settings, or every trial would fail.
        (
            ["search_space.warmup_ratio={type: float, low: 0.0, high: 1.0}"],
            "search_space.params.warmup_ratio: the value 1.0 is not a valid trainer.warmup_ratio "
            "(input should be less than 1)",
        ),
        (
            ["search_space.per_device_train_batch_size={type: categorical, choices: [0, 16]}"],
            "the value 0 is not a valid trainer.per_device_train_batch_size",
        ),
        (
            ["search_space.lr_scheduler_type={type: categorical, choices: [linear, warmup]}"],
            "search_space.params.lr_scheduler_type: the value 'warmup' is not a valid trainer.lr_scheduler_type",
        ),
    ],
)
def test_errors_name_the_field_and_the_fix(overrides, message):
    with pytest.raises(SpecError) as info:
        load_spec("quickstart", overrides)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_unknown_sampler_and_pruner_list_the_choices():
    spec = validate_spec({**MINIMAL, "sampler": {"name": "tpx"}})
    with pytest.raises(SpecError, match="sampler.name 'tpx' is unknown: choose one of tpe, random"):
        check_names(spec)
    spec = validate_spec({**MINIMAL, "pruner": {"name": "meridian"}})
    with pytest.raises(SpecError, match="pruner.name 'meridian' is unknown"):
        check_names(spec)


def test_unknown_sampler_option_lists_the_valid_options():
    spec = validate_spec({**MINIMAL, "sampler": {"name": "tpe", "options": {"n_startup": 3}}})
    with pytest.raises(
        SpecError,
        match=r"sampler.options.n_startup is not an option of the tpe sampler; valid options: .*n_startup_trials",
    ):
        build_sampler(spec)


# Written out here, not read from the registry, so a name mapped to the wrong class fails.
SAMPLER_CLASSES = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "grid": "GridSampler",
    "cmaes": "CmaEsSampler",
    "qmc": "QMCSampler",
    "gp": "GPSampler",
    "nsga2": "NSGAIISampler",
    "nsga3": "NSGAIIISampler",
}


def _sampled(spec, seed):
    """The params of the first trials a sampler built from ``spec`` (with ``seed``) proposes."""
    import optuna

    spec = spec.model_copy(update={"sampler": spec.sampler.model_copy(update={"seed": seed})})
    sampler = build_sampler(spec)
    directions = [o.direction for o in spec.objective]
    study = optuna.create_study(sampler=sampler, directions=directions)
    space = spec.search_space.distributions()
    for _ in range(4):
        trial = study.ask(space)
        value = sum(float(v) for v in trial.params.values() if isinstance(v, (int, float)))
        study.tell(trial, [value, -value] if len(directions) == 2 else value)
    return sampler, [t.params for t in study.trials]


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_every_sampler_builds_as_named_and_takes_the_seed(name):
    space = "bert-paper" if name == "grid" else "bert-continuous"
    raw = {**MINIMAL, "search_space": space, "sampler": {"name": name, "seed": 1}}
    if name.startswith("nsga"):
        raw["objective"] = [{"metric": "accuracy"}, {"metric": "eval_loss", "direction": "minimize"}]
    spec = validate_spec(raw)
    check_names(spec)
    assert set(SAMPLER_CLASSES) == set(SAMPLER_NAMES)
    sampler, first = _sampled(spec, seed=1)
    assert type(sampler).__name__ == SAMPLER_CLASSES[name]
    _, again = _sampled(spec, seed=1)
    _, other = _sampled(spec, seed=2)
    assert first == again, "the same seed must give the same trials"
    assert first != other, "another seed must give other trials"
    for params in first:
        assert spec.search_space.contains(params), params


def test_tpe_defaults_to_constant_liar_for_parallel_trials():
    sampler = build_sampler(validate_spec(MINIMAL))
    assert sampler._constant_liar is True


@pytest.mark.parametrize(
    ("pruner", "cls"),
    [
        ({"name": "none"}, "NopPruner"),
        ({"name": "median", "options": {"n_startup_trials": 2}}, "MedianPruner"),
        ({"name": "percentile", "options": {"percentile": 25.0}}, "PercentilePruner"),
        ({"name": "successive_halving"}, "SuccessiveHalvingPruner"),
        ({"name": "hyperband", "options": {"max_resource": 3}}, "HyperbandPruner"),
        ({"name": "threshold", "options": {"lower": 0.6}}, "ThresholdPruner"),
        ({"name": "patient", "options": {"patience": 1, "wrapped": {"name": "median"}}}, "PatientPruner"),
    ],
)
def test_pruners_build_with_options(pruner, cls):
    assert type(build_pruner(validate_spec({**MINIMAL, "pruner": pruner}))).__name__ == cls


def test_multi_objective_disables_pruning_with_a_warning(caplog):
    spec = validate_spec(
        {
            **MINIMAL,
            "objective": [{"metric": "accuracy"}, {"metric": "eval_loss", "direction": "minimize"}],
            "pruner": {"name": "median"},
        }
    )
    assert spec.multi_objective
    assert type(build_pruner(spec)).__name__ == "NopPruner"
    assert "pruning is disabled" in caplog.text


def test_cmaes_refuses_several_objectives():
    spec = validate_spec(
        {**MINIMAL, "objective": [{"metric": "accuracy"}, {"metric": "f1"}], "sampler": {"name": "cmaes"}}
    )
    with pytest.raises(SpecError, match="cannot optimize several objectives"):
        check_names(spec)


def test_search_space_names_must_be_trainer_hyperparameters():
    with pytest.raises(SpecError, match="'lr' is not a tunable hyperparameter; choose from"):
        validate_spec({**MINIMAL, "search_space": {"lr": {"type": "float", "low": 0.1, "high": 0.2}}})


def test_enqueued_configs_must_fit_the_space():
    with pytest.raises(SpecError, match=r"enqueue\[0\]"):
        validate_spec({**MINIMAL, "search_space": "bert-paper", "enqueue": [{"learning_rate": 2e-5}]})
    ok = validate_spec(
        {
            **MINIMAL,
            "search_space": "bert-paper",
            "enqueue": [{"learning_rate": 2e-5, "per_device_train_batch_size": 32, "num_train_epochs": 3}],
        }
    )
    assert len(ok.enqueue) == 1


def test_set_values_are_parsed_as_yaml():
    spec = load_spec("quickstart", ["budget.n_trials=9", "trainer.learning_rate=1e-4", "wandb.mode=disabled"])
    assert spec.budget.n_trials == 9
    assert spec.trainer.learning_rate == pytest.approx(1e-4)
    assert spec.wandb.mode == "disabled"
    with pytest.raises(SpecError, match="not of the form key.path=value"):
        load_spec("quickstart", ["budget.n_trials"])


def test_identity_ignores_harmless_sections():
    a = load_spec("quickstart")
    b = load_spec("quickstart", ["budget.n_trials=50", "resources.cpus=2", "wandb.mode=disabled"])
    c = load_spec("quickstart", ["search_space.learning_rate.high=0.01"])
    assert a.identity_hash() == b.identity_hash() != c.identity_hash()


def test_storage_password_is_redacted_in_the_stored_spec():
    spec = validate_spec({**MINIMAL, "storage": "postgresql://alice:s3cret@db.example/studies"})
    assert "s3cret" not in str(spec.redacted())
    assert spec.redacted()["storage"] == redact("postgresql://alice:s3cret@db.example/studies")


@pytest.mark.parametrize(
    "url", ["postgresql:/alice:s3cret@db/studies", "postgresql//alice:s3cret@db/x", "postgresql://alice:s3@cret@db/x"]
)
def test_a_malformed_storage_url_is_redacted_in_the_stored_spec_too(url):
    # A malformed spec URL may be overridden by a valid --storage, so the launch goes on and stores the spec.
    stored = str(validate_spec({**MINIMAL, "storage": url}).redacted())
    assert "s3cret" not in stored and "cret" not in stored and "***" in stored


def test_missing_spec_file_and_unknown_preset(tmp_path: Path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(str(tmp_path / "nope.yaml"))
    with pytest.raises(SpecError, match="did you mean 'quickstart'"):
        load_spec("quickstrat")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="is not valid YAML"):
        load_spec(str(bad))


def test_cli_validate_exit_codes_and_one_line_errors():
    ok = subprocess.run(
        [sys.executable, "-m", "studies._cli", "validate", "quickstart"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "studies._cli", "validate", "quickstart", "--set", "budget.n_trail=1"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0
    assert bad.stderr.startswith("error: preset quickstart: budget: unknown key 'n_trail'")
