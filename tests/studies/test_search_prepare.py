"""A searched max_length/truncation: each value is tokenized once, and a trial reads the data of its own value."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _longest(prepared) -> int:
    import datasets

    splits = datasets.load_from_disk(str(prepared.data_dir))
    return max(len(ids) for ids in splits["train"]["input_ids"])


def test_each_searched_max_length_is_prepared_and_picked_by_the_trial_params(tmp_path: Path):
    from studies import validate_spec
    from studies._task import prepare_task

    spec = validate_spec(
        {
            "name": "lengths",
            "task": {"train_size": 120, "eval_size": 30, "test_size": 30, "max_length": 40},
            "search_space": {
                "truncation": {"type": "categorical", "choices": ["head", "tail"]},
                "max_length": {"type": "categorical", "choices": [12], "when": {"truncation": "tail"}},
            },
            "sampler": {"name": "random"},
            "work_dir": str(tmp_path),
        }
    )
    prepared = prepare_task(spec)
    head = prepared.for_params({"truncation": "head"})  # max_length inactive: the task's 40
    short = prepared.for_params({"truncation": "tail", "max_length": 12})
    assert _longest(short) == 12
    assert 12 < _longest(head) <= 40
    assert len({head.data_dir, short.data_dir}) == 2
    # One tiny-bert for every length: its position table fits the longest.
    for variant in (head, short):
        assert json.loads((variant.model_dir / "config.json").read_text())["max_position_embeddings"] == 40
    # Preparing again reuses every tokenization from the cache.
    again = prepare_task(spec)
    trials = ({"truncation": "head"}, {"truncation": "tail", "max_length": 12})
    assert all(again.for_params(params).cache_hit for params in trials)
