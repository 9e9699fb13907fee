# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

HOST     ?= 127.0.0.1
PORT     ?= 8080
DATA_DIR ?= ./data

.PHONY: run test lint typecheck bench openapi clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null

$(STAMP): pyproject.toml $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# The record decoder compiled with mypyc (storage/_accelerate.py): about 2-3x faster fetches. Best
# effort: without a C compiler the same source runs as Python, and storage.records says which it uses.
NATIVE := $(VENV)/.native-$(shell cat storage/_decode.py | cksum | cut -d' ' -f1)

$(NATIVE): $(STAMP) storage/_decode.py
	$(BIN)/python -m storage._accelerate >$(VENV)/accelerate.log 2>&1 \
	  || echo "note: compiled decoder not built (see $(VENV)/accelerate.log); the Python decoder runs"
	rm -f $(VENV)/.native-*
	touch $(NATIVE)

run: $(NATIVE)
	mkdir -p $(DATA_DIR)
	$(BIN)/tidelog serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: $(NATIVE)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check app storage tidelog tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy app storage

openapi: $(STAMP)
	$(BIN)/tidelog openapi > openapi/openapi.json

# The benchmark suite needs the `bench` extra (redis-py, nats-py, matplotlib, py-spy) on top of `dev`.
BENCH_STAMP := $(VENV)/.bench-installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

$(BENCH_STAMP): pyproject.toml $(BIN)/python
	$(BIN)/pip install -e '.[dev,bench]'
	rm -f $(VENV)/.bench-installed-*
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
