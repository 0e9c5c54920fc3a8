"""The hub presets (imdb-bert, boolq-roberta) up to the network boundary.

No hub is reachable here, so the two functions that download are replaced by
ones that record the names they were called with and return small real
objects of the same shape: a DatasetDict with the hub's splits and columns; for
bert-base-uncased a tiny BERT with a real WordPiece tokenizer, for roberta-base a
tiny RoBERTa with a real byte-level BPE RoBERTa tokenizer trained here (so its
``<s> A </s></s> B </s>`` pair template is what preparation must follow).
Everything after them is the real preparation path.
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
                "question": BOOLQ_QUESTIONS,
                "passage": BOOLQ_PASSAGES,
                "answer": [bool(i % 3) for i in range(60)],
            }
            return datasets.DatasetDict(
                {"train": datasets.Dataset.from_dict(rows), "validation": datasets.Dataset.from_dict(rows)}
            )
        raise AssertionError(f"unexpected dataset {name}")

    def load_hub_model(name, revision, *, random_init, trust_remote_code=False):
        import transformers

        calls["models"].append((name, revision, random_init))
        if name == "roberta-base":
            return tiny_roberta()
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


BOOLQ_QUESTIONS = [f"is it true {i}" for i in range(60)]
BOOLQ_PASSAGES = [f"a passage about fact {i}" for i in range(60)]


def tiny_roberta():
    """A one-layer RoBERTa and a RoBERTa tokenizer whose byte-level BPE is trained on the BoolQ rows."""
    import tempfile

    import transformers
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's, at RoBERTa's ids 0-4
    bpe.train_from_iterator(BOOLQ_QUESTIONS + BOOLQ_PASSAGES, vocab_size=300, special_tokens=specials)
    with tempfile.TemporaryDirectory() as folder:
        vocab, merges = bpe.save_model(folder)
        tokenizer = transformers.RobertaTokenizer(vocab=vocab, merges=merges)
    config = transformers.RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=260,  # max_length 256 + RoBERTa's padding offset
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return transformers.RobertaModel(config), tokenizer


def test_imdb_bert_loads_the_right_names_and_carves_validation_from_train(fake_hub, tmp_path):
    spec = load_spec("imdb-bert")
    prepared = prepare(spec.task, spec.model, tmp_path)
    assert fake_hub["datasets"] == [("stanfordnlp/imdb", None, None)]
    assert fake_hub["models"] == [("bert-base-uncased", None, False)]
    assert prepared.text_pair is False and prepared.num_labels == 2
    assert prepared.sizes["test"] == 60  # the hub's test split, used once on the promoted model
    assert prepared.sizes["train"] + prepared.sizes["validation"] == 60


def test_boolq_roberta_loads_pairs_and_tests_on_the_validation_split(fake_hub, tmp_path):
    import datasets
    import transformers

    spec = load_spec("boolq-roberta")
    prepared = prepare(spec.task, spec.model, tmp_path)
    assert fake_hub["datasets"] == [("google/boolq", None, None)]
    assert fake_hub["models"] == [("roberta-base", None, False)]
    assert prepared.text_pair is True
    assert prepared.label_names == ["false", "true"]
    assert prepared.sizes["test"] == 60
    assert prepared.sizes["train"] + prepared.sizes["validation"] == 60

    # Every example is RoBERTa's own pair encoding, <s> question </s></s> passage </s>, and RoBERTa
    # takes no token types.
    tokenizer = transformers.AutoTokenizer.from_pretrained(prepared.model_dir)
    assert type(tokenizer).__name__.startswith("RobertaTokenizer")
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    expected = set()
    for question, passage in zip(BOOLQ_QUESTIONS, BOOLQ_PASSAGES):
        q = tokenizer(question, add_special_tokens=False)["input_ids"]
        p = tokenizer(passage, add_special_tokens=False)["input_ids"]
        pair = [bos, *q, eos, eos, *p, eos]
        assert tokenizer(question, passage)["input_ids"] == pair  # the template this test is about
        expected.add(tuple(pair))
    splits = datasets.load_from_disk(str(prepared.data_dir))
    for name in ("train", "validation", "test"):
        assert "token_type_ids" not in splits[name].column_names
        assert {tuple(ids) for ids in splits[name]["input_ids"]} <= expected, name
    assert transformers.AutoConfig.from_pretrained(prepared.model_dir).model_type == "roberta"
