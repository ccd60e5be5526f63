# Forge: `make run` starts the whole thing; `make test` runs every check. Both install what is missing.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: install run test lint typecheck check-django pytest bench clean services-stop

install:
	bash scripts/install-system.sh
	bash scripts/install-python.sh

# make run FORGE_REDIS_PORT=6380 FORGE_WEB_PORT=8002 FORGE_SERVING_PORT=8003 when the default ports are taken.
FORGE_REDIS_PORT ?= 6379
FORGE_WEB_PORT ?= 8000
FORGE_SERVING_PORT ?= 8001
run: export FORGE_REDIS_PORT := $(FORGE_REDIS_PORT)
run: export FORGE_WEB_PORT := $(FORGE_WEB_PORT)
run: export FORGE_SERVING_PORT := $(FORGE_SERVING_PORT)
run: export FORGE_SERVING_URL ?= http://127.0.0.1:$(FORGE_SERVING_PORT)
run: export REDIS_URL := redis://127.0.0.1:$(FORGE_REDIS_PORT)/0
run: install
	@bash scripts/run-preflight.sh
	$(PY) manage.py migrate --noinput
	$(PY) manage.py forge_demo
	@echo
	@$(PY) manage.py forge_demo --print-logins --port $(FORGE_WEB_PORT)
	@echo
	@echo "Forge is starting on http://127.0.0.1:$(FORGE_WEB_PORT)  (Ctrl-C stops everything)"
	@echo "Predict is served on $$FORGE_SERVING_URL  (POST /api/v1/rollouts/{id}/predict/)"
	exec $(PY) scripts/supervise.py

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck:
	.venv/bin/mypy forge_site models_registry governance rollouts

check-django:
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

# The whole suite on PostgreSQL (what deployments run), then again on SQLite (the embedded default) without the
# browser tests; PostgreSQL-only tests (trigger, concurrency) skip themselves there.
pytest:
	eval "$$(bash scripts/test-services.sh start)" && \
	  $(PY) manage.py check && \
	  .venv/bin/pytest -p no:cacheprovider $(PYTEST_ARGS)
	eval "$$(bash scripts/test-services.sh start)" && unset DATABASE_URL && \
	  FORGE_VAR_DIR=$(CURDIR)/var/test-sqlite .venv/bin/pytest -p no:cacheprovider -m "not e2e" $(PYTEST_ARGS)

test: install lint typecheck check-django pytest

# Speed and memory claims (results and method: docs/performance.md). Not part of `make test`.
bench: install
	bash benchmarks/run_all.sh

services-stop:
	bash scripts/test-services.sh stop

clean:
	rm -rf var .mypy_cache .ruff_cache .pytest_cache
