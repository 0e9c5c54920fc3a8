"""The hub presets (imdb-bert, boolq-roberta) up to the network boundary.

No hub is reachable here, so the two functions that download are replaced by
ones that record the names they were called with and return small real
objects of the same shape (a DatasetDict with the hub's splits and columns, a
tiny BERT with a real WordPiece tokenizer). Everything after them is the real
preparation path.
"""

import pytest

import trainers._models as models
import trainers._sources as sources
from studies import load_spec
from trainers import prepare


@pytest.fixture
def fake_hub(monkeypatch):
    calls = {"datasets": [], "models": []}

    def load_hub_dataset(name, config, revision, *, cache_dir):
        import datasets

        calls["datasets"].append((name, config, revision))
        if name == "stanfordnlp/imdb":
            rows = {
                "text": [f"a<br />great film {i}" if i % 2 else f"an awful film {i}" for i in range(60)],
                "label": [i % 2 for i in range(60)],
            }
            return datasets.DatasetDict(
                {"train": datasets.Dataset.from_dict(rows), "test": datasets.Dataset.from_dict(rows)}
            )
        if name == "google/boolq":
            rows = {
                "question": [f"is it true {i}" for i in range(60)],
                "passage": [f"a passage about fact {i}" for i in range(60)],
                "answer": [bool(i % 3) for i in range(60)],
            }
            return datasets.DatasetDict(
                {"train": datasets.Dataset.from_dict(rows), "validation": datasets.Dataset.from_dict(rows)}
            )
        raise AssertionError(f"unexpected dataset {name}")

    def load_hub_model(name, revision, *, random_init, trust_remote_code=False):
        import transformers

        calls["models"].append((name, revision, random_init))
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(models.minilm_dir()))
        config = transformers.BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
        )
        return transformers.BertModel(config), tokenizer

    monkeypatch.setattr(sources, "load_hub_dataset", load_hub_dataset)
    monkeypatch.setattr(models, "load_hub_model", load_hub_model)
    return calls


def test_imdb_bert_loads_the_right_names_and_carves_validation_from_train(fake_hub, tmp_path):
    spec = load_spec("imdb-bert")
    prepared = prepare(spec.task, spec.model, tmp_path)
    assert fake_hub["datasets"] == [("stanfordnlp/imdb", None, None)]
    assert fake_hub["models"] == [("bert-base-uncased", None, False)]
    assert prepared.text_pair is False and prepared.num_labels == 2
    assert prepared.sizes["test"] == 60  # the hub's test split, used once on the promoted model
    assert prepared.sizes["train"] + prepared.sizes["validation"] == 60


def test_boolq_roberta_loads_pairs_and_tests_on_the_validation_split(fake_hub, tmp_path):
    spec = load_spec("boolq-roberta")
    prepared = prepare(spec.task, spec.model, tmp_path)
    assert fake_hub["datasets"] == [("google/boolq", None, None)]
    assert fake_hub["models"] == [("roberta-base", None, False)]
    assert prepared.text_pair is True
    assert prepared.label_names == ["false", "true"]
    assert prepared.sizes["test"] == 60
    assert prepared.sizes["train"] + prepared.sizes["validation"] == 60
