# Mailpath: `make run` starts the app on its embedded default, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
# Tests run on PostgreSQL; set DATABASE_URL to use another server or sqlite:///...
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mailpath

.PHONY: install run test lint format migrate seed bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput

seed: migrate
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py seed_demo
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py setup_periodic_tasks

run: seed
	@echo "Mailpath: http://127.0.0.1:$(PORT)  (Ctrl-C stops web, worker and beat)"
	PATH=$(BIN):$$PATH DEBUG=$${DEBUG:-true} PORT=$(PORT) $(BIN)/honcho start -f Procfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/pytest $(PYTEST_ARGS)

bench: install
	for script in bench/[!_]*.py; do echo "== $$script"; \
	  DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/python $$script || exit 1; done

clean:
	rm -rf var staticfiles .pytest_cache .ruff_cache
