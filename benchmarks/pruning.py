"""Pruning benchmark: the quickstart study with and without a pruner, over several seeds.

Measured, not asserted. For each seed the same study runs twice side by side
(pruner ``none`` and the pruner under test), with the same sampler seed; the
table reports epochs consumed, wall time and best validation accuracy, and the
JSON file keeps every trial. Run with ``make benchmark-pruning`` or::

    python benchmarks/pruning.py --seeds 0 1 2 --pruner median
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PRUNERS = {
    "median": {"name": "median", "options": {"n_startup_trials": 2, "n_warmup_steps": 1}},
    "successive_halving": {"name": "successive_halving", "options": {"min_resource": 1}},
    "percentile": {"name": "percentile", "options": {"percentile": 33.0, "n_startup_trials": 2, "n_warmup_steps": 1}},
}


def run_one(preset: str, pruner: dict, seed: int, n_trials: int, root: Path) -> dict:
    import optuna

    from studies import launch, load_spec

    name = f"bench-{pruner['name']}-{seed}"
    spec = load_spec(
        preset,
        [
            f"name={name}",
            f"sampler.seed={seed}",
            f"budget.n_trials={n_trials}",
            "wandb.mode=disabled",
            "promotion.enabled=false",
            f"work_dir={root / 'runs'}",
            f"pruner={json.dumps(pruner)}",
        ],
    )
    url = f"sqlite:///{root / 'bench.db'}"
    started = time.perf_counter()
    launch(spec, storage_url=url, stream=None)
    wall = time.perf_counter() - started
    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    return {
        "pruner": pruner["name"],
        "seed": seed,
        "wall_seconds": round(wall, 1),
        "epochs": sum(len(t.intermediate_values) for t in trials),
        "pruned": sum(t.state.name == "PRUNED" for t in trials),
        "best": max((t.value for t in trials if t.state.name == "COMPLETE"), default=None),
        "trials": [
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "steps": len(t.intermediate_values),
                "params": t.params,
            }
            for t in trials
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quickstart")
    parser.add_argument("--pruner", default="median", choices=sorted(PRUNERS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--out", default="benchmarks/results/pruning.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for pruner in ({"name": "none"}, PRUNERS[args.pruner]):
                row = run_one(args.preset, pruner, seed, args.trials, Path(tmp))
                rows.append(row)
                print(
                    f"seed {seed} pruner {row['pruner']:<18} epochs {row['epochs']:>3} pruned {row['pruned']} "
                    f"best {row['best']:.4f} wall {row['wall_seconds']:.0f}s",
                    flush=True,
                )

    def col(name: str, key: str) -> list[float]:
        return [r[key] for r in rows if r["pruner"] == name]

    base, test = "none", args.pruner
    ratio_epochs = [p / n for p, n in zip(col(test, "epochs"), col(base, "epochs"))]
    ratio_wall = [p / n for p, n in zip(col(test, "wall_seconds"), col(base, "wall_seconds"))]
    delta_best = [p - n for p, n in zip(col(test, "best"), col(base, "best"))]
    summary = {
        "preset": args.preset,
        "pruner": PRUNERS[args.pruner],
        "seeds": args.seeds,
        "trials_per_study": args.trials,
        "median_epochs_ratio": round(statistics.median(ratio_epochs), 3),
        "median_wall_ratio": round(statistics.median(ratio_wall), 3),
        "median_best_delta": round(statistics.median(delta_best), 4),
        "rows": rows,
    }
    print()
    print(f"{'seed':>4}  {'epochs none':>11}  {'epochs ' + test:>16}  {'best none':>9}  {'best ' + test:>14}")
    for seed, en, ep, bn, bp in zip(
        args.seeds, col(base, "epochs"), col(test, "epochs"), col(base, "best"), col(test, "best")
    ):
        print(f"{seed:>4}  {en:>11}  {ep:>16}  {bn:>9.4f}  {bp:>14.4f}")
    print(
        f"median epochs ratio {summary['median_epochs_ratio']}, wall ratio {summary['median_wall_ratio']}, "
        f"best-value change {summary['median_best_delta']:+.4f}"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
