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

run: $(STAMP)
	mkdir -p $(DATA_DIR)
	$(BIN)/tidelog serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: $(STAMP)
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
