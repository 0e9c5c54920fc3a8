"""The throughput benchmark: its FLOPs accounting and one short real run through the project's trainer."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
os.environ["HF_HUB_OFFLINE"] = "1"

import throughput


def test_bert_base_model_flops_follow_the_palm_accounting():
    import transformers

    config = transformers.BertConfig()  # the bert-base-uncased shape
    model = transformers.BertForSequenceClassification(config)
    layer_params = sum(p.numel() for p in model.bert.encoder.parameters())
    assert layer_params == 12 * 7_087_872  # attention 4 x (768^2 + 768), FFN 2 x 768 x 3072 + biases, 2 LayerNorms
    per_token = throughput.flops_per_token(config, 256, layer_params)
    assert per_token == 6 * layer_params + 12 * 12 * 768 * 256
    assert 0.53e9 < per_token < 0.54e9


@pytest.mark.parametrize(
    ("device", "half", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", True, 989.4),
        ("NVIDIA H100 PCIe", True, 756.0),
        ("NVIDIA H200", True, 989.4),
        ("NVIDIA A100-SXM4-80GB", False, 19.5),
        ("NVIDIA L40S", True, 362.1),
        ("NVIDIA L4", True, 121.0),
        ("Some Future GPU", True, None),
    ],
)
def test_peak_lookup_by_device_name(device, half, peak):
    assert throughput.peak_tflops(device, half) == peak


def test_a_short_run_reports_consistent_figures(tmp_path, capsys):
    out = tmp_path / "figures.json"
    argv = ["--shape", "tiny", "--max-length", "32", "--batch-size", "4", "--steps", "3", "--warmup", "1"]
    assert throughput.main([*argv, "--repeats", "2", "--peak-tflops", "1.0", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert [r["timed_steps"] for r in figures["repeats"]] == [3, 3]
    assert figures["samples_per_second"] > 0
    assert figures["tokens_per_second"] == pytest.approx(figures["samples_per_second"] * 32, rel=1e-3)
    assert figures["achieved_tflops"] == pytest.approx(
        figures["tokens_per_second"] * figures["model_tflops_per_token"], rel=1e-2, abs=1e-4
    )
    assert figures["mfu"] == pytest.approx(figures["achieved_tflops"] / 1.0, abs=1e-4)
    assert "samples/s" in capsys.readouterr().out and figures["repeats"]
