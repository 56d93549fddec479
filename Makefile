# redirectory — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# `make run` settings (override on the command line: make run PORT=9000)
HOST       ?= 127.0.0.1
PORT       ?= 8000
ADMIN_PORT ?= 8001
DATABASE   ?= sqlite:///var/redirectory.db
RULES      ?= examples/redirects.yaml
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck bench clean install dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e '.[browser]'  # a second step: see the browser extra in pyproject.toml
	touch $(STAMP) $@

install: $(STAMP)
dev: $(DEVSTAMP)

## run: start the gateway with the example rules (redirects on :8000, admin on :8001)
run: $(STAMP)
	$(BIN)/redirectory serve --rules $(RULES) --database $(DATABASE) \
		--host $(HOST) --port $(PORT) --admin-port $(ADMIN_PORT)

## test: install the dev dependencies and run the whole suite
test: $(DEVSTAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEVSTAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	bash bench/run.sh

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
