"""Training throughput benchmark: samples/s, tokens/s and model FLOPs utilization of one trial.

It fine-tunes a randomly initialized model of a real shape (``bert-base``: the
``bert-base-uncased`` architecture, 12 layers, hidden 768, vocabulary 30,522)
through the project's own trainer (``trainers.finetune``, so the same
precision, fused optimizer, pinned memory and padding choices as a study's
trial) on texts long enough that every sequence is ``--max-length`` tokens,
as the ``imdb-bert`` preset's reviews mostly are at 256 tokens. Nothing is
downloaded: the weights are random and the tokenizer is trained on the texts.

The clock runs from the end of optimizer step ``--warmup`` to the end of the
last step (CUDA is synchronized at both), so loading, compilation and the
epoch-end evaluation are left out. Model FLOPs per trained token follow the
PaLM paper's accounting (Chowdhery et al. 2022, appendix B):
``6 * N + 12 * layers * hidden * seq_len``, where ``N`` counts the encoder
layers' parameters (embedding lookups, the pooler and the classifier head
are left out). MFU divides the achieved model FLOP/s by the device's dense
peak for the precision used: a table of common GPUs, or ``--peak-tflops``.

    python benchmarks/throughput.py --shape bert-base --max-length 256 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHAPES: dict[str, dict[str, int]] = {
    # bert-base-uncased; roberta-base has the same encoder (only its embeddings differ).
    "bert-base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "vocab_size": 30522},
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 2000},
}

# Dense (no sparsity) peak TFLOP/s by device-name fragment, from the vendors' data sheets:
# half precision on tensor cores, and plain fp32 (PyTorch does not use TF32 for matmuls by default).
PEAK_TFLOPS: list[tuple[str, dict[str, float]]] = [
    ("H200", {"half": 989.4, "fp32": 66.9}),
    ("H100 PCIe", {"half": 756.0, "fp32": 51.2}),
    ("H100 NVL", {"half": 835.5, "fp32": 60.0}),
    ("H100", {"half": 989.4, "fp32": 66.9}),  # SXM ("NVIDIA H100 80GB HBM3")
    ("A100", {"half": 312.0, "fp32": 19.5}),
    ("L40S", {"half": 362.1, "fp32": 91.6}),
    ("L4", {"half": 121.0, "fp32": 30.3}),
    ("A10", {"half": 125.0, "fp32": 31.2}),
    ("V100", {"half": 125.0, "fp32": 15.7}),
    ("T4", {"half": 65.0, "fp32": 8.1}),
]

_REVIEW = (
    "the film was a long and often moving story about a family that never quite finds its way home "
    "although the acting is strong the script wanders and the ending feels rushed yet i kept watching "
    "because the camera work and the soundtrack carry every scene with a quiet confidence rarely seen"
)


def long_texts(count: int, words: int, seed: int) -> list[str]:
    """``count`` seeded review-like texts of ``words`` words each (enough to fill the sequence)."""
    rng = random.Random(seed)
    vocabulary = _REVIEW.split()
    return [" ".join(rng.choice(vocabulary) for _ in range(words)) for _ in range(count)]


def peak_tflops(device: str, half: bool) -> float | None:
    """The dense peak TFLOP/s of a GPU named ``device`` for the precision used, if it is in the table."""
    for fragment, peaks in PEAK_TFLOPS:
        if fragment.lower() in device.lower():
            return peaks["half" if half else "fp32"]
    return None


def flops_per_token(config: Any, seq_len: int, layer_params: int) -> float:
    """Training (forward and backward) model FLOPs per token, as in the PaLM paper's appendix B."""
    return 6 * layer_params + 12 * config.num_hidden_layers * config.hidden_size * seq_len


def build_model(shape: str, texts: list[str], max_length: int, target: Path) -> None:
    """Save a randomly initialized model of ``shape`` and a tokenizer trained on ``texts`` into ``target``."""
    import transformers

    from trainers._models import train_wordpiece

    dims = SHAPES[shape]
    tokenizer = train_wordpiece([texts], dims["vocab_size"], max_length)
    config = transformers.BertConfig(
        **{**dims, "vocab_size": max(dims["vocab_size"], len(tokenizer))},
        intermediate_size=4 * dims["hidden_size"],
        max_position_embeddings=max(512, max_length),
        pad_token_id=tokenizer.pad_token_id,
    )
    transformers.set_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(target)
    tokenizer.save_pretrained(target)


def make_timer(warmup: int) -> Any:
    """A TrainerCallback that times the optimizer steps after ``warmup``."""
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.start: float | None = None
            self.end: float | None = None
            self.steps = 0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            now = time.perf_counter()
            if state.global_step == warmup:
                self.start = now
            elif state.global_step > warmup:
                self.end, self.steps = now, state.global_step - warmup

    return StepTimer()


def measure(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Prepare the task once, then run ``args.repeats`` timed trials; return the figures."""
    import datasets
    import torch
    import transformers

    from trainers import ModelSpec, TaskSpec, TrainerSpec, finetune, prepare
    from trainers._runtime import precision_flags, quiet

    steps = args.warmup + args.steps
    train_size = steps * args.batch_size
    texts = long_texts(train_size + 2 * args.eval_size, words=args.max_length * 2, seed=0)
    data = root / "reviews.jsonl"
    rows = ({"text": text, "label": ("negative", "positive")[i % 2]} for i, text in enumerate(texts))
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    model_dir = root / f"{args.shape}-random"
    with quiet():
        build_model(args.shape, texts, args.max_length, model_dir)
    task = TaskSpec(
        dataset=str(data),
        labels=["negative", "positive"],
        max_length=args.max_length,
        train_size=train_size,
        eval_size=args.eval_size,
        test_size=args.eval_size,
    )
    prepared = prepare(task, ModelSpec(name=str(model_dir)), root / "cache")
    lengths = {len(ids) for ids in datasets.load_from_disk(str(prepared.data_dir))["train"]["input_ids"]}
    if lengths != {args.max_length}:
        raise SystemExit(f"error: sequences are not all {args.max_length} tokens long ({sorted(lengths)[:5]})")

    settings = TrainerSpec(
        num_train_epochs=1,
        max_steps_per_epoch=steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        precision=args.precision,
        torch_compile=args.compile,
        dataloader_workers=args.dataloader_workers,
    )
    config = transformers.AutoConfig.from_pretrained(model_dir)
    with quiet():
        model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir)
    layer_params = sum(p.numel() for p in model.base_model.encoder.parameters())
    total_params = sum(p.numel() for p in model.parameters())
    del model
    per_token = flops_per_token(config, args.max_length, layer_params)

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} torch threads)"
    half = any(precision_flags(args.precision).values())
    peak = args.peak_tflops or (peak_tflops(device, half) if cuda else None)
    runs = []
    for repeat in range(args.repeats):
        timer = make_timer(args.warmup)
        result = finetune(prepared, settings, {}, root / f"trial-{repeat}", report=lambda r: None, callbacks=[timer])
        if timer.start is None or timer.end is None:
            raise SystemExit("error: no timed steps: raise --steps")
        seconds = timer.end - timer.start
        samples = timer.steps * args.batch_size
        runs.append(
            {
                "timed_steps": timer.steps,
                "seconds": round(seconds, 4),
                "samples_per_second": round(samples / seconds, 3),
                "tokens_per_second": round(samples * args.max_length / seconds, 1),
                "startup_seconds": round(result.startup_seconds, 3),
            }
        )
        print(
            f"repeat {repeat}: {timer.steps} steps in {seconds:.2f} s, {runs[-1]['samples_per_second']:.1f} samples/s",
            file=sys.stderr,
        )
    samples_per_second = statistics.median(r["samples_per_second"] for r in runs)
    tokens_per_second = samples_per_second * args.max_length
    achieved = tokens_per_second * per_token / 1e12
    return {
        "device": device,
        "shape": args.shape,
        "parameters": total_params,
        "encoder_layer_parameters": layer_params,
        "precision": "bf16" if precision_flags(args.precision)["bf16"] else "fp16" if half else "fp32",
        "torch_compile": args.compile,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "timed_steps": args.steps,
        "repeats": runs,
        "samples_per_second": round(samples_per_second, 2),
        "tokens_per_second": round(tokens_per_second, 1),
        "model_tflops_per_token": per_token / 1e12,
        "achieved_tflops": round(achieved, 4),
        "peak_tflops": peak,
        "mfu": round(achieved / peak, 4) if peak else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="bert-base")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed optimizer steps first")
    parser.add_argument("--repeats", type=int, default=1, help="timed trials; the median is reported")
    parser.add_argument("--eval-size", type=int, default=64)
    parser.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], default="auto")
    parser.add_argument("--compile", action="store_true", help="trainer.torch_compile")
    parser.add_argument("--dataloader-workers", type=int, default=0)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/throughput.json"), help="JSON figures")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be at least 1")

    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        figures = measure(args, Path(tmp))
    print(table(figures))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures written to {args.out}")
    return 0


def table(figures: dict[str, Any]) -> str:
    """The figures as a small table: one row per repeat, then the median the summary uses."""
    per_token = figures["model_tflops_per_token"]
    peak = figures["peak_tflops"]
    lines = [
        f"{figures['device']} | {figures['shape']} {figures['precision']} | "
        f"batch {figures['batch_size']} x {figures['max_length']} tokens",
        f"{'run':>6}  {'samples/s':>10}  {'tokens/s':>10}  {'TFLOP/s':>8}  {'MFU':>6}",
    ]
    rows = [(str(i), r["samples_per_second"], r["tokens_per_second"]) for i, r in enumerate(figures["repeats"])]
    rows.append(("median", figures["samples_per_second"], figures["tokens_per_second"]))
    for name, samples, tokens in rows:
        achieved = tokens * per_token
        mfu = f"{achieved / peak:.1%}" if peak else "n/a"
        lines.append(f"{name:>6}  {samples:>10.2f}  {tokens:>10.0f}  {achieved:>8.3f}  {mfu:>6}")
    if not peak:
        lines.append("MFU needs the device's peak: pass --peak-tflops")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
