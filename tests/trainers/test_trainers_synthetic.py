"""The synthetic sentiment generator: deterministic, balanced, noisy, and structured."""

from __future__ import annotations

from collections import Counter

from trainers._synthetic import LABELS, generate


def test_same_seed_same_rows_and_other_seed_other_rows():
    assert generate(200, seed=3) == generate(200, seed=3)
    assert generate(200, seed=3) != generate(200, seed=4)


def test_rows_are_texts_with_negative_or_positive_labels():
    rows = generate(300, seed=0)
    assert len(rows) == 300
    assert {row["label"] for row in rows} == set(LABELS)
    assert all(isinstance(row["text"], str) and row["text"].endswith(".") for row in rows)
    assert len({row["text"] for row in rows}) > 250  # varied, not a handful of templates


def test_classes_are_balanced_before_noise():
    counts = Counter(row["label"] for row in generate(1001, seed=1, label_noise=0.0))
    assert abs(counts["positive"] - counts["negative"]) <= 1


def test_label_noise_flips_about_the_given_fraction_and_nothing_else():
    clean = generate(4000, seed=2, label_noise=0.0)
    noisy = generate(4000, seed=2, label_noise=0.05)
    assert [r["text"] for r in clean] == [r["text"] for r in noisy]
    flipped = sum(a["label"] != b["label"] for a, b in zip(clean, noisy, strict=True)) / len(clean)
    assert 0.035 < flipped < 0.065


def test_negation_and_contrast_make_word_order_matter():
    rows = generate(2000, seed=5, label_noise=0.0)
    negated = [r for r in rows if " not " in f" {r['text']} "]
    contrasted = [r for r in rows if " but " in r["text"]]
    assert len(negated) > 100 and len(contrasted) > 200
    # A negated positive adjective in a one-clause review is a negative review.
    simple = [r for r in rows if r["text"].startswith("the ") and r["text"].count(".") == 1]
    not_good = [r for r in simple if " was not good." in r["text"] or " was not great." in r["text"]]
    assert not_good and all(r["label"] == "negative" for r in not_good)
