# One-command entry points. Everything runs from the project's own virtualenv in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export CRYPTO_ASSETS_HOME ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CRYPTO_ASSETS_HOME)/dagster_home
DATE ?= $(shell date -u -d yesterday +%Y-%m-%d)
ASSETS := raw_klines,clean_klines,snowflake_btcusdt

.PHONY: setup run stack dashboard materialize backfill analytics test lint format clean

$(BIN)/dagster: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/dagster

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.local.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

## The whole platform: the market on http://127.0.0.1:8501 (DASHBOARD_PORT) and the pipeline
## (Dagster webserver + daemon) on http://127.0.0.1:3000. A fresh home loads the last 30 days
## and turns the live loop on by itself. Ctrl-C (or SIGTERM) stops everything.
run: setup
	$(BIN)/crypto-assets platform --dashboard-port $(or $(DASHBOARD_PORT),8501)

## The same UI as two processes, the way a deployment runs them: dagster-webserver + dagster-daemon
stack: setup
	scripts/local_stack.sh

## The market dashboard on http://127.0.0.1:8501 (Streamlit), over the local warehouse
dashboard: setup
	$(BIN)/crypto-assets dashboard --host 127.0.0.1 --port $(or $(DASHBOARD_PORT),8501)

## Materialize the lineage for one day: make materialize DATE=2024-01-01
materialize: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster asset materialize -m crypto_assets.definitions --select '$(ASSETS)' --partition $(DATE)

## Backfill a date range in one run: make backfill START=2024-01-01 END=2024-01-31
backfill: setup $(DAGSTER_HOME)/dagster.yaml
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill START=YYYY-MM-DD END=YYYY-MM-DD"; exit 2; }
	$(BIN)/dagster asset materialize -m crypto_assets.definitions --select '$(ASSETS)' --partition-range '$(START)...$(END)'

## Every analytics asset (bars, indicators, levels, volume profile, backtests, charts) over the
## days the warehouse holds, as one run the UI shows.
analytics: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/crypto-assets analytics

## Two workers, one per core; a test file stays on one worker, so its module fixtures are built once.
test: setup
	$(BIN)/pytest -n 2 --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
