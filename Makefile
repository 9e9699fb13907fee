# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Both distributions, editable, in one pip call so that ./client satisfies the broker's requirement
# on tidelog-client. A stamp per set of extras: `make run` installs only what the broker needs.
# editable_mode=compat puts client/ on sys.path (a .pth) instead of an import hook: a stale tidelog/
# directory left at the root by an older checkout (its __pycache__) is then never mistaken for the
# package (a namespace package found first on the path would shadow an import-hook install).
EDITABLE := --config-settings editable_mode=compat
PROJECT_FILES := pyproject.toml client/pyproject.toml
DIGEST := $(shell cat $(PROJECT_FILES) | cksum | cut -d' ' -f1)
RUN_STAMP   := $(VENV)/.installed-run-$(DIGEST)
STAMP       := $(VENV)/.installed-dev-$(DIGEST)
BENCH_STAMP := $(VENV)/.installed-bench-$(DIGEST)

HOST     ?= 127.0.0.1
PORT     ?= 8080
DATA_DIR ?= ./data

.PHONY: run test test-fast lint typecheck bench openapi clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null

# A venv made before the client had its own distribution loses bin/tidelog when pip replaces the
# old `tidelog` distribution that owned it: the client is then reinstalled to put it back.
RESTORE_SCRIPT := test -x $(BIN)/tidelog || $(BIN)/pip install -q --force-reinstall --no-deps $(EDITABLE) -e ./client

$(RUN_STAMP): $(PROJECT_FILES) $(BIN)/python
	$(BIN)/pip install $(EDITABLE) -e ./client -e .
	$(RESTORE_SCRIPT)
	rm -f $(VENV)/.installed-run-*
	touch $(RUN_STAMP)

$(STAMP): $(PROJECT_FILES) $(BIN)/python
	$(BIN)/pip install $(EDITABLE) -e ./client -e '.[dev]'
	$(RESTORE_SCRIPT)
	rm -f $(VENV)/.installed-dev-* $(VENV)/.installed-run-*
	touch $(STAMP) $(RUN_STAMP)

$(BENCH_STAMP): $(PROJECT_FILES) $(BIN)/python
	$(BIN)/pip install $(EDITABLE) -e ./client -e '.[dev,bench]'
	$(RESTORE_SCRIPT)
	rm -f $(VENV)/.installed-*
	touch $(BENCH_STAMP) $(STAMP) $(RUN_STAMP)

# The record decoder compiled with mypyc (client/tidelog/_codec/_accelerate.py): about 2-3x faster
# fetches. Best effort: without a C compiler (or without mypy, which `make run` does not install) the
# same source runs as Python, and tidelog._codec.decoder.DECODER says which it uses.
DECODE_SOURCE := client/tidelog/_codec/_decode.py
NATIVE := $(VENV)/.native-$(shell cat $(DECODE_SOURCE) | cksum | cut -d' ' -f1)

$(NATIVE): $(RUN_STAMP) $(DECODE_SOURCE)
	$(BIN)/python -m tidelog._codec._accelerate >$(VENV)/accelerate.log 2>&1 \
	  || echo "note: compiled decoder not built (see $(VENV)/accelerate.log); the Python decoder runs"
	rm -f $(VENV)/.native-*
	touch $(NATIVE)

run: $(RUN_STAMP) $(NATIVE)
	mkdir -p $(DATA_DIR)
	$(BIN)/tidelog serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: $(STAMP) $(NATIVE)
	$(BIN)/pytest -q

# The inner loop: no real broker processes, no crash loops (CI runs everything through `make test`).
test-fast: $(STAMP) $(NATIVE)
	$(BIN)/pytest -q -m "not e2e and not slow"

lint: $(STAMP)
	$(BIN)/ruff check app storage client tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy app storage client/tidelog

openapi: $(STAMP)
	$(BIN)/tidelog openapi > openapi/openapi.json
	$(BIN)/tidelog openapi --spec-version 3.2 > openapi/openapi-3.2.json

# The benchmark suite needs the `bench` extra (redis-py, nats-py, matplotlib, py-spy) on top of `dev`.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
