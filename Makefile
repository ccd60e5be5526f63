# Forge: `make run` starts the whole thing; `make test` runs every check. Both install what is missing.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: install run test lint typecheck check-django pytest demo clean services-stop

install:
	bash scripts/install-system.sh
	bash scripts/install-python.sh

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py forge_demo
	@echo
	@echo "Forge is starting on http://127.0.0.1:8000  (Ctrl-C stops everything)"
	@$(PY) manage.py forge_demo --print-logins
	exec .venv/bin/honcho start -f Procfile

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck:
	.venv/bin/mypy forge_site models_registry governance rollouts

check-django:
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

pytest:
	eval "$$(bash scripts/test-services.sh start)" && \
	  $(PY) manage.py check && \
	  .venv/bin/pytest -p no:cacheprovider $(PYTEST_ARGS)

test: install lint typecheck check-django pytest

services-stop:
	bash scripts/test-services.sh stop

clean:
	rm -rf var .mypy_cache .ruff_cache .pytest_cache
