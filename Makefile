# customer720 — every target installs what it needs first (uv, .venv, the pinned lock).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
UV        := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTHON    ?= 3.11

# Demo company for `make run` (override: make run CUSTOMERS=10000 DAYS=365)
CUSTOMERS ?= 3000
DAYS      ?= 365
SEED      ?= 7
SOURCES   := .local/sources

# Benchmark scale for `make bench` (XS smoke, S, M; L needs BENCH_ARGS=--allow-large)
SCALE     ?= S
BENCH_ARGS ?=

export DO_NOT_TRACK=1
export GX_ANALYTICS_ENABLED=False
export SCARF_ANALYTICS=false

.PHONY: help install spark run train backfill test lint bench airflow airflow-stop app docs chromium clean lock

help: ## show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml quality/docs_assets/assets.json
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
	@test -x $(PY) || $(UV) venv -q --python $(PYTHON) $(VENV)
	$(UV) pip install -q --python $(PY) --compile-bytecode -r requirements.txt
	@# compat mode: the project root goes on sys.path, so new stage packages import at once
	$(UV) pip install -q --python $(PY) --no-deps --config-settings editable_mode=compat -e .
	@# GX's data docs link CDNs: fetch those files once, from npm (nothing downloads at run time)
	$(PY) quality/docs_assets/vendor.py
	@touch $(STAMP)

install: $(STAMP) ## create .venv with the pinned environment

# The `spark` extra (pyspark, dbt-spark): its own lock, requirements-spark.txt (the default
# lock plus Spark); the tests need it, `make install` / `make run` do not (DuckDB).
$(SPARK_STAMP): $(STAMP) requirements-spark.txt
	$(UV) pip install -q --python $(PY) --compile-bytecode -r requirements-spark.txt
	@touch $(SPARK_STAMP)

spark: $(SPARK_STAMP) ## add Apache Spark to .venv (C720_WAREHOUSE=spark; make test does this)

run: $(STAMP) ## make the demo company and run the whole pipeline through Airflow
	$(PY) -m simulator --customers $(CUSTOMERS) --days $(DAYS) --seed $(SEED) --out $(SOURCES) --if-missing
	C720_TASK_RETRIES=0 $(PY) -m orchestrate run

train: $(STAMP) ## train a churn model on the newest marts (the weekly DAG, on demand)
	$(PY) -m orchestrate train $(if $(DATE),--date $(DATE))

backfill: $(STAMP) ## replay dates in order: make backfill START=2024-12-24 END=2024-12-30
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill START=YYYY-MM-DD END=YYYY-MM-DD"; exit 2; }
	$(PY) -m orchestrate backfill --start $(START) --end $(END)

test: $(STAMP) $(SPARK_STAMP) chromium lint ## lint, then the test suite (unit, integration, end-to-end, browser)
	@# one worker per core, a test file per worker: module fixtures (a simulated company,
	@# an Airflow home) are built once; the slowest tests are listed at the end
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=25

bench: $(STAMP) $(SPARK_STAMP) ## time every stage vs the engines' limits (make bench SCALE=S|M); report in bench/results/
	$(PY) -m bench --scale $(SCALE) $(BENCH_ARGS)

lint: $(STAMP) ## ruff, and a dbt parse of the project
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -c "from customer720.dbt import run_dbt; run_dbt('parse')"

airflow: $(STAMP) ## open the Airflow UI on http://localhost:8080 (Ctrl-C stops it)
	$(PY) -m orchestrate ui

app: $(STAMP) ## the analysts' app on the published snapshot: http://localhost:8501 (C720_APP_PORT)
	$(PY) -m app serve

docs: $(STAMP) ## dbt docs, data docs and model reports as one offline site: .local/docs/index.html
	$(PY) -m app docs

# The browser tests drive Debian's chromium (Playwright's own browser download is not used);
# installed once, only when missing (needs root and the Debian mirror, ~1-2 min).
chromium: ## install headless Chromium for the browser tests, if missing
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
	  || echo "make chromium: could not install it (root and apt needed); the browser tests will be skipped"

airflow-stop: ## stop an Airflow UI started with `make airflow`
	@test -x $(PY) && $(PY) -m orchestrate stop || true

lock: ## re-compile requirements.txt (and requirements-spark.txt, with Spark) from pyproject.toml
	$(UV) pip compile -q pyproject.toml --extra dev --python-version $(PYTHON) -o requirements.txt
	$(UV) pip compile -q pyproject.toml --extra dev --extra spark --python-version $(PYTHON) \
	  --constraint requirements.txt -o requirements-spark.txt

clean: airflow-stop ## remove local state (.local/) and the environment (.venv/)
	rm -rf .local .venv .pytest_cache .ruff_cache
