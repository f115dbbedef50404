# One-command entry points. Everything runs from the project's own virtualenv in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export CRYPTO_ASSETS_HOME ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CRYPTO_ASSETS_HOME)/dagster_home
DATE ?= $(shell date -u -d yesterday +%Y-%m-%d)
ASSETS := raw_klines,clean_klines,snowflake_btcusdt

.PHONY: setup run materialize backfill test lint format clean

$(BIN)/dagster: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/dagster

$(DAGSTER_HOME):
	mkdir -p $@

## The Dagster UI on http://127.0.0.1:3000 (webserver and daemon), local environment.
run: setup | $(DAGSTER_HOME)
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

## Materialize the lineage for one day: make materialize DATE=2024-01-01
materialize: setup | $(DAGSTER_HOME)
	$(BIN)/dagster asset materialize -m crypto_assets.definitions --select '$(ASSETS)' --partition $(DATE)

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
