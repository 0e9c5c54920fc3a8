# One-word entry points. `make quickstart` and `make test` set everything up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS ?= -q

.PHONY: setup quickstart test test-fast lint dashboard clean benchmark-pruning benchmark-throughput benchmark-serving

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install_torch.sh
	python3 -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	bash scripts/install_torch.sh $(PY)
	$(PY) -m pip install $(PIP_FLAGS) -e '.[dev]'
	touch $@

quickstart: setup  ## run the quickstart study (tiny-bert, synthetic data, SQLite, local Ray, wandb offline)
	WANDB_MODE=$${WANDB_MODE:-offline} $(VENV)/bin/studies launch quickstart

test: setup  ## the whole test suite (PostgreSQL tests skip without a server unless CI=true)
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff check studies search_spaces trainers storage tests benchmarks

dashboard: setup
	$(VENV)/bin/studies dashboard

benchmark-pruning: setup  ## quickstart with and without the median pruner, seeds 0-2
	$(PY) benchmarks/pruning.py --seeds 0 1 2

benchmark-throughput: setup  ## random-init BERT-base training throughput and MFU (meant for a GPU)
	$(PY) benchmarks/throughput.py --shape bert-base --max-length 256 --batch-size 32 --repeats 3

benchmark-serving: setup  ## requests/s and p50/p99 of `studies serve` (tiny, MiniLM; PyTorch, int8 ONNX) on loopback
	$(PY) benchmarks/serving.py --requests 200 --concurrency 4

clean:
	rm -rf runs models wandb studies.db .pytest_cache
