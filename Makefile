# Quick start: `make demo` runs the main job on the embedded default; `make test` runs every check.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench openapi config-doc clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m sim.demo_daemon

lint: $(STAMP)
	$(BIN)/ruff check dispatch sim tests bench
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.bench_optimise

openapi: $(STAMP)  # the REST API's spec, checked in (tests/test_api.py compares)
	$(BIN)/python -c 'import json; from dispatch.daemon.api import openapi_spec; \
	print(json.dumps(openapi_spec(), indent=1, sort_keys=True))' > docs/openapi.json

config-doc: $(STAMP)  # docs/config.md and docs/register-maps.md from the pydantic models
	$(BIN)/python -c 'from dispatch.config.doc import config_markdown; \
	print(config_markdown(), end="")' > docs/config.md
	$(BIN)/python -c 'from dispatch.devices.doc import map_markdown; \
	print(map_markdown(), end="")' > docs/register-maps.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
