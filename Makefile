# The two commands a new user needs: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := .tools/bin/uv
RUFF := .venv/bin/ruff

.PHONY: help install run test loadtest soak bench lint format unit-backend unit-frontend system-tests system-deps lock demo-data

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install: ## create the venvs and install the pinned dependencies (idempotent, fast when done)
	@scripts/bootstrap.sh dev

run: install ## start backend (:12015) and frontend (:12016); loads the demo data on first start
	@scripts/run.sh

# SCALE=N: N years of flights (336,776 a year; 30 = about 10 million), built from the 2013 data.
SCALE ?= 1
demo-data: install ## (re)load the demo data into DATABASE_PATH (default data/app.db), SCALE=N years; stop `make run` first
	cd backend && DB_LOCK_TIMEOUT_SECONDS=0 DATABASE_PATH=$${DATABASE_PATH:-$(CURDIR)/data/app.db} .venv/bin/python -m api load-demo-data --force --scale $(SCALE)

system-deps: ## install Debian packages the tests need (chromium, prometheus)
	@scripts/install-system-deps.sh

test: system-deps ## install everything, then lint, unit tests of both services, whole-system tests
	@scripts/bootstrap.sh test
	$(MAKE) lint
	@# The two services' unit suites side by side: they wait on the servers they start far
	@# more than they compute; each one's output is printed whole when it ends.
	$(MAKE) -j2 --output-sync=target unit-backend unit-frontend
	$(MAKE) system-tests

lint: ## ruff lint and format check, bandit, mypy --strict (both services), pinned requirements in step with their locks, docs/observability.md generated from telemetry/registry
	@scripts/bootstrap.sh test
	@scripts/lock.sh --check
	$(RUFF) check .
	$(RUFF) format --check .
	.venv/bin/bandit -q -r backend/api frontend/web frontend/gunicorn.conf.py
	.venv/bin/python scripts/telemetry_registry.py --check
	cd backend && .venv/bin/mypy api
	cd frontend && .venv/bin/mypy web

format: ## apply ruff fixes and formatting
	@scripts/bootstrap.sh test
	$(RUFF) check --fix .
	$(RUFF) format .

unit-backend: ## backend unit tests only (backend/tests; needs `make install`)
	cd backend && .venv/bin/python -m pytest -q

unit-frontend: ## frontend unit tests only (frontend/tests; needs `make install`)
	cd frontend && .venv/bin/python -m pytest -q

loadtest: ## Locust load test of the production stack; fails when loadtests/thresholds.toml is missed
	@scripts/bootstrap.sh test
	@scripts/loadtest.sh

soak: ## 10 minutes of mixed load (SOAK_DURATION=...); memory and metric files must stay flat
	@scripts/bootstrap.sh test
	@scripts/soak.sh

# The hard limits of `make bench`: 20 min on the demo data, 40 min with SCALE>1 (building the
# larger database once, copying it per stack, slower DuckDB scenarios); bench/run.py stops
# itself earlier (BENCH_TIMEOUT).
BENCH_LIMIT = $(if $(filter 1,$(SCALE)),1200,2400)
bench: ## benchmark telemetry on vs off vs the peer stack, the dashboard, raw DuckDB; SCALE=N years of data (docs/performance.md)
	@scripts/bootstrap.sh bench
	BENCH_SCALE=$(SCALE) timeout --kill-after=30 $(BENCH_LIMIT) .venv/bin/python bench/run.py

system-tests: ## whole-system tests: real processes, real DuckDB file, real browser
	.venv/bin/python -m pytest -q tests --durations=15

lock: install ## re-lock each service (uv.lock) and re-export its pinned requirements files
	@scripts/lock.sh
