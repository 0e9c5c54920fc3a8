"""The pieces under the commands: the address check, and new inputs framed exactly as training framed them."""

from __future__ import annotations

from pathlib import Path

import pytest

from studies import StudyError
from studies.serve import check_host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_addresses_need_no_permission(host: str) -> None:
    check_host(host, allow_remote=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.0.2.1"])
def test_other_addresses_need_allow_remote(host: str) -> None:
    with pytest.raises(StudyError, match="--allow-remote"):
        check_host(host, allow_remote=False)
    check_host(host, allow_remote=True)


@pytest.mark.parametrize("truncation", ["head", "tail", "head+tail"])
def test_new_inputs_are_cut_as_the_training_splits_were(tiny_model: Path, truncation: str) -> None:
    import datasets
    import transformers

    from trainers import example_encoder
    from trainers._tokenize import tokenize_splits

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model)
    long = " ".join(f"the plot was great and the acting was awful number {i}" for i in range(20))
    texts, pairs = ["a short one", long, "is it good ?"], ["", "a fine film", long]
    for second in (None, pairs):
        columns = {"text": texts, "labels": [0, 1, 0], **({"text_pair": second} if second else {})}
        trained, _ = tokenize_splits(
            datasets.DatasetDict({"test": datasets.Dataset.from_dict(columns)}), tokenizer, 24, truncation
        )
        served = example_encoder(tokenizer, 24, truncation)(texts, second)
        assert [e["input_ids"] for e in served] == trained["test"]["input_ids"]
        assert [e["token_type_ids"] for e in served] == trained["test"]["token_type_ids"]
        assert max(len(e["input_ids"]) for e in served) == 24
