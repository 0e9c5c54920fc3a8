"""Model folders and specs that can run code: remote code stays off, pickled weights are a last resort."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT saved twice in one folder: safetensors and a pickled ``pytorch_model.bin``."""
    import torch
    import transformers

    folder = tmp_path_factory.mktemp("model")
    config = transformers.BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    model = transformers.BertForSequenceClassification(config)
    model.save_pretrained(folder)  # safetensors
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # the pickled format older tools write
    assert {"model.safetensors", "pytorch_model.bin"} <= {p.name for p in folder.iterdir()}
    return folder


def test_with_safetensors_the_pickle_is_never_read(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    import transformers

    from trainers._models import pickled_weights, pretrained_options

    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    (folder / "pytorch_model.bin").write_bytes(b"not a pickle: reading it would fail")
    assert pickled_weights(folder) == []
    options = pretrained_options(folder)
    assert options == {"trust_remote_code": False, "use_safetensors": True}
    transformers.AutoModelForSequenceClassification.from_pretrained(folder, **options)  # the broken .bin is not read


def test_pickled_only_weights_load_with_a_warning(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    import transformers

    from trainers import ModelSpec
    from trainers._models import pickled_weights, pretrained_options, warn_unsafe

    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    (folder / "model.safetensors").unlink()
    assert pickled_weights(folder) == ["pytorch_model.bin"]
    assert pretrained_options(folder) == {"trust_remote_code": False}
    transformers.AutoModelForSequenceClassification.from_pretrained(folder, **pretrained_options(folder))
    with caplog.at_level(logging.WARNING, logger="trainers._models"):
        warn_unsafe(ModelSpec(name=str(folder)), folder)
    assert [r.getMessage() for r in caplog.records] == [
        f"model folder {folder} has pickled weights only (pytorch_model.bin), which can run code when loaded: "
        "load it only if you trust it, or save it again with safetensors (save_pretrained's default)"
    ]


def test_remote_code_is_off_unless_the_spec_sets_it(caplog: pytest.LogCaptureFixture) -> None:
    from studies import validate_spec
    from trainers import ModelSpec
    from trainers._models import warn_unsafe

    off = validate_spec({"name": "q", "search_space": "tiny-fast"})
    assert off.model.trust_remote_code is False
    assert "trust_remote_code" not in off.identity()["model"]  # studies stored before the field keep their hash
    on = validate_spec({"name": "q", "search_space": "tiny-fast", "model": {"trust_remote_code": True}})
    assert on.identity_hash() != off.identity_hash()
    with caplog.at_level(logging.WARNING, logger="trainers._models"):
        warn_unsafe(ModelSpec(name="tiny-bert"))
        assert not caplog.records
        warn_unsafe(on.model)
    assert [r.getMessage() for r in caplog.records] == [
        "model.trust_remote_code is on: Python code shipped with 'tiny-bert' will run on every node; "
        "set it only for models you trust"
    ]
