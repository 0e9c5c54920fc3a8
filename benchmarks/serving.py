"""Serving benchmark: requests/s and latency of `studies serve` over real HTTP, PyTorch vs int8 ONNX.

Measured, not asserted. The models are promoted by real one-trial studies
(the quickstart preset's tiny-bert on synthetic data; the imdb-minilm preset's
MiniLM-L6 on the IMDb sample in ../shared/data, skipped when it is absent),
then exported with `studies export --quantize int8`, which scores each export
on the promotion's test split. Each (model, backend) is served by a
`studies serve` process on loopback; this process is the client: ``--concurrency``
threads, each with one keep-alive connection, send ``--requests`` single-text
requests in all (after a warm-up). Run with ``make benchmark-serving`` or::

    python benchmarks/serving.py --requests 200 --concurrency 4
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO / ".." / "shared" / "data"


def promote(preset: str, overrides: list[str], root: Path) -> Path:
    from studies import launch, load_spec

    spec = load_spec(
        preset,
        [
            "budget.n_trials=1",
            "budget.max_concurrent=1",
            "wandb.mode=disabled",
            f"work_dir={root / 'runs'}",
            f"promotion.dir={root / 'models'}",
            *overrides,
        ],
    )
    outcome = launch(spec, storage_url=f"sqlite:///{root / 'bench.db'}", stream=None)
    if outcome.promoted is None:
        raise SystemExit(f"{preset}: nothing was promoted")
    return Path(outcome.promoted)


def texts_for(model: str, n: int) -> list[str]:
    if model == "minilm":
        with (SHARED / "imdb_sample.csv").open(encoding="utf-8", newline="") as handle:
            rows = [r["review"] for r in csv.DictReader(handle)]
        return rows[-n:]
    from trainers._synthetic import generate

    return [r["text"] for r in generate(n, seed=7)]


def load(url: str, texts: list[str], total: int, concurrency: int) -> dict:
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            body = json.dumps({"text": texts[i % len(texts)]})
            started = time.perf_counter()
            conn.request("POST", "/score", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                errors += response.status != 200
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": total,
        "errors": errors,
        "requests_per_s": round(total / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
    }


def serve_and_load(folder: Path, backend: str, texts: list[str], args: argparse.Namespace) -> dict:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "studies._cli", "serve", str(folder), "--backend", backend, "--port", str(port)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    server = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        load(url, texts, min(50, args.requests), args.concurrency)  # warm-up
        result = load(url, texts, args.requests, args.concurrency)
        with urllib.request.urlopen(f"{url}/metrics") as response:
            metrics = response.read().decode()
        count = next(float(x.split()[-1]) for x in metrics.splitlines() if x.startswith("studies_batch_size_count"))
        total = next(float(x.split()[-1]) for x in metrics.splitlines() if x.startswith("studies_batch_size_sum"))
        result["mean_batch"] = round(total / count, 2)
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--threads", type=int, help="torch threads of the server")
    parser.add_argument("--models", nargs="+", default=["tiny", "minilm"], choices=["tiny", "minilm"])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "serving.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from studies.serve import export_onnx

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for model in args.models:
            if model == "minilm" and not (SHARED / "imdb_sample.csv").is_file():
                print("minilm: skipped (no ../shared/data/imdb_sample.csv)")
                continue
            if model == "tiny":
                folder = promote("quickstart", ["trainer.num_train_epochs=3"], root)
            else:
                enqueue = '[{"learning_rate": 1.0e-4, "warmup_ratio": 0.1, "per_device_train_batch_size": 16}]'
                folder = promote(
                    "imdb-minilm",
                    [
                        "trainer.num_train_epochs=1",
                        "trainer.max_steps_per_epoch=24",
                        f"task.dataset={SHARED / 'imdb_sample.csv'}",
                        f"enqueue={enqueue}",
                    ],
                    root,
                )
            export = export_onnx(folder, quantize="int8")
            texts = texts_for(model, 200)
            for backend in ("torch", "onnx-int8"):
                measured = serve_and_load(folder, backend, texts, args)
                scored = export["models"][backend]
                rows.append({"model": model, "backend": backend, **measured, "test_accuracy": scored["accuracy"]})
                print(json.dumps(rows[-1]), flush=True)
    header = ("model", "backend", "requests_per_s", "p50_ms", "p99_ms", "mean_batch", "test_accuracy", "errors")
    print("\n" + " | ".join(header))
    for r in rows:
        print(" | ".join(str(r[h]) for h in header))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"cpus": os.cpu_count(), "requests": args.requests, "concurrency": args.concurrency}
    args.out.write_text(json.dumps({"settings": meta, "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
