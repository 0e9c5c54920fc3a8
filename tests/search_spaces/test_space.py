import optuna
import pytest
from pydantic import ValidationError

from search_spaces import SearchSpace, load_preset, preset_names


def space(params):
    return SearchSpace.model_validate({"params": params})


def test_float_log_int_step_categorical_convert_to_optuna_distributions():
    s = space(
        {
            "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
            "num_train_epochs": {"type": "int", "low": 2, "high": 6, "step": 2},
            "per_device_train_batch_size": {"type": "categorical", "choices": [16, 32]},
        }
    )
    d = s.distributions()
    assert d["learning_rate"] == optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True)
    assert d["num_train_epochs"] == optuna.distributions.IntDistribution(2, 6, step=2)
    assert d["per_device_train_batch_size"] == optuna.distributions.CategoricalDistribution((16, 32))


def test_distributions_are_sampled_inside_their_ranges_by_a_real_study():
    s = space(
        {
            "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
            "num_train_epochs": {"type": "int", "low": 2, "high": 6, "step": 2},
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask(s.distributions())
        assert 1e-5 <= trial.params["learning_rate"] <= 1e-3
        assert trial.params["num_train_epochs"] in (2, 4, 6)
        assert s.contains(trial.params)
        study.tell(trial, 0.0)


@pytest.mark.parametrize(
    ("param", "needle"),
    [
        ({"type": "float", "low": 1.0, "high": 0.1}, "must be <= high"),
        ({"type": "float", "low": 0.0, "high": 0.1, "log": True}, "log=true needs low > 0"),
        ({"type": "int", "low": 5, "high": 1}, "must be <= high"),
        ({"type": "categorical", "choices": []}, "at least 1"),
        ({"type": "categorical", "choices": [1, 1]}, "repeat"),
        ({"type": "float", "low": 0.0, "high": 1.0, "sneaky": 1}, "Extra inputs"),
        ({"type": "gaussian", "low": 0.0, "high": 1.0}, "does not match any of the expected tags"),
    ],
)
def test_invalid_params_are_rejected_with_a_reason(param, needle):
    with pytest.raises(ValidationError, match=needle):
        space({"learning_rate": param})


def test_grid_points_cover_the_product_once():
    s = SearchSpace.model_validate({"params": load_preset("bert-paper")})
    points = s.grid_points()
    assert s.grid_size() == 18 == len(points)
    assert len({tuple(sorted(p.items())) for p in points}) == 18


def test_float_without_step_cannot_be_gridded():
    s = space({"warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2}})
    with pytest.raises(ValueError, match="needs a step"):
        s.grid()
    stepped = space({"warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2, "step": 0.1}})
    assert stepped.grid() == {"warmup_ratio": [0.0, 0.1, 0.2]}


def test_presets_exist_and_validate():
    assert {"bert-paper", "bert-continuous"} <= set(preset_names())
    paper = load_preset("bert-paper")
    assert paper["learning_rate"]["choices"] == [2e-5, 3e-5, 5e-5]
    assert paper["per_device_train_batch_size"]["choices"] == [16, 32]
    assert paper["num_train_epochs"]["choices"] == [2, 3, 4]
    for name in preset_names():
        SearchSpace.model_validate({"params": load_preset(name)})
    with pytest.raises(KeyError, match="choose one of"):
        load_preset("nope")
