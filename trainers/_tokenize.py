"""Tokenize every split once, with a choice of where long texts are cut.

``head`` keeps the start of a long text, ``tail`` its end, and ``head+tail``
the first quarter and the last three quarters of the token budget (Sun et al.
2019, "How to Fine-Tune BERT for Text Classification?", found this best on
IMDb). For text pairs (a question and a passage) only the second text is cut.
``max_length`` includes the special tokens (``[CLS]``, ``[SEP]``). Nothing is
padded here: batches are padded dynamically when they are built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import DatasetDict
    from tokenizers import Encoding, Tokenizer
    from transformers import PreTrainedTokenizerBase


def cut(ids: list[int], length: int, truncation: str) -> list[int]:
    """Shorten token ids (without special tokens) to at most ``length``.

    Args:
        ids: Token ids.
        length: The token budget.
        truncation: ``head``, ``tail`` or ``head+tail``.
    """
    if len(ids) <= length:
        return ids
    if truncation == "head":
        return ids[:length]
    head = length // 4 if truncation == "head+tail" else 0
    return ids[:head] + ids[len(ids) - (length - head) :]


class _Template:
    """Where a tokenizer puts its special tokens around one text or a pair, and their token types.

    Read once from the tokenizer's own post-processor applied to a probe text,
    so any prefix/middle/suffix scheme (BERT's ``[CLS] A [SEP] B [SEP]``,
    RoBERTa's ``<s> A </s></s> B </s>``) is followed without knowing it.
    """

    def __init__(self, backend: Tokenizer) -> None:
        probe = backend.encode("a", add_special_tokens=False)
        if not probe.ids:
            raise ValueError("the tokenizer turns the probe text 'a' into no tokens: its template cannot be read")
        self.single = self._segments(backend.post_process(probe, None, True), len(probe.ids))
        self.pair = self._segments(backend.post_process(probe, probe, True), len(probe.ids))

    @staticmethod
    def _segments(encoding: Encoding, probe_length: int) -> list[tuple[int | None, list[int], int]]:
        """``(text, ids, type_id)`` runs: ``text`` is None for special tokens (``ids``), else 0 or 1."""
        runs: list[tuple[int | None, list[int], int]] = []
        content = 0
        for token, special, type_id in zip(encoding.ids, encoding.special_tokens_mask, encoding.type_ids, strict=True):
            if special:
                if runs and runs[-1][0] is None and runs[-1][2] == type_id:
                    runs[-1][1].append(token)
                else:
                    runs.append((None, [token], type_id))
                continue
            if content % probe_length == 0:  # the first token of a text
                runs.append((content // probe_length, [], type_id))
            content += 1
        return runs

    def special_count(self, pair: bool) -> int:
        return sum(len(ids) for sequence, ids, _ in (self.pair if pair else self.single) if sequence is None)

    def build(self, first: list[int], second: list[int] | None) -> tuple[list[int], list[int]]:
        """The input ids and token type ids of one example."""
        ids: list[int] = []
        types: list[int] = []
        texts = (first, second)
        for sequence, special, type_id in self.pair if second is not None else self.single:
            part = special if sequence is None else texts[sequence] or []
            ids += part
            types += [type_id] * len(part)
        return ids, types


def _fit(
    template: _Template, first: list[int], second: list[int] | None, max_length: int, truncation: str
) -> tuple[list[int], list[int], bool]:
    """Cut one example to ``max_length`` tokens with its special tokens; say whether it was cut."""
    budget = max_length - template.special_count(second is not None)
    if second is None:
        ids, types = template.build(cut(first, budget, truncation), None)
        return ids, types, len(first) > budget
    was_cut = len(first) + len(second) > budget
    if len(first) > budget - 1:  # the first text alone fills the budget: keep its head, half the budget
        first = first[: budget // 2]
    ids, types = template.build(first, cut(second, budget - len(first), truncation))
    return ids, types, was_cut


def raw_backend(tokenizer: PreTrainedTokenizerBase) -> Tokenizer:
    """A copy of the fast tokenizer's backend with its own padding and truncation turned off.

    Args:
        tokenizer: A fast (``tokenizers``-backed) tokenizer.
    """
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def tokenize_splits(
    splits: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int, truncation: str
) -> tuple[DatasetDict, int]:
    """Tokenize the ``text`` (and ``text_pair``) column of every split.

    Args:
        splits: Splits with ``text``, optionally ``text_pair``, and ``labels``.
        tokenizer: A fast tokenizer.
        max_length: The most tokens per example, special tokens included.
        truncation: ``head``, ``tail`` or ``head+tail``.

    Returns:
        The splits with ``input_ids``, ``attention_mask``, ``token_type_ids`` (if
        the model takes them) and ``labels``, and how many examples were cut.
    """
    import datasets

    backend = raw_backend(tokenizer)
    template = _Template(backend)
    type_ids = "token_type_ids" in tokenizer.model_input_names
    ids = datasets.List(datasets.Value("int32"))
    flags = datasets.List(datasets.Value("int8"))
    features = datasets.Features(
        {
            "input_ids": ids,
            "attention_mask": flags,
            **({"token_type_ids": flags} if type_ids else {}),
            "labels": datasets.Value("int64"),
            "was_cut": datasets.Value("bool"),
        }
    )

    def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        firsts = [e.ids for e in backend.encode_batch(batch["text"], add_special_tokens=False)]
        seconds = None
        if "text_pair" in batch:
            seconds = [e.ids for e in backend.encode_batch(batch["text_pair"], add_special_tokens=False)]
        out: dict[str, list[Any]] = {"input_ids": [], "attention_mask": [], "was_cut": []}
        if type_ids:
            out["token_type_ids"] = []
        for i, first in enumerate(firsts):
            ids, types, was_cut = _fit(template, first, seconds[i] if seconds else None, max_length, truncation)
            out["input_ids"].append(ids)
            out["attention_mask"].append([1] * len(ids))
            out["was_cut"].append(was_cut)
            if type_ids:
                out["token_type_ids"].append(types)
        out["labels"] = batch["labels"]
        return out

    tokenized = {}
    n_cut = 0
    for name, split in splits.items():
        columns = split.column_names
        split = split.map(encode, batched=True, remove_columns=columns, features=features, keep_in_memory=True)
        n_cut += sum(split["was_cut"])
        tokenized[name] = split.remove_columns("was_cut")
    return datasets.DatasetDict(tokenized), n_cut


def example_encoder(
    tokenizer: PreTrainedTokenizerBase, max_length: int, truncation: str
) -> Callable[[list[str], list[str] | None], list[dict[str, list[int]]]]:
    """An encoder of raw examples that cuts and frames them exactly as :func:`tokenize_splits` did for training.

    Args:
        tokenizer: The model's fast tokenizer.
        max_length: The most tokens per example, special tokens included.
        truncation: ``head``, ``tail`` or ``head+tail``.

    Returns:
        ``encode(texts, pairs)``: one dict per example with ``input_ids``,
        ``attention_mask`` and (when the model takes them) ``token_type_ids``,
        unpadded; ``pairs`` is ``None`` or one second text per example.
    """
    backend = raw_backend(tokenizer)
    template = _Template(backend)
    type_ids = "token_type_ids" in tokenizer.model_input_names

    def encode(texts: list[str], pairs: list[str] | None) -> list[dict[str, list[int]]]:
        firsts = [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
        seconds = [e.ids for e in backend.encode_batch(pairs, add_special_tokens=False)] if pairs else None
        out = []
        for i, first in enumerate(firsts):
            ids, types, _ = _fit(template, first, seconds[i] if seconds else None, max_length, truncation)
            example = {"input_ids": ids, "attention_mask": [1] * len(ids)}
            if type_ids:
                example["token_type_ids"] = types
            out.append(example)
        return out

    return encode
