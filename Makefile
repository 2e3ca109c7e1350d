# Ticketer: `make run` serves the demo on http://127.0.0.1:5000 with the scheduler; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
PORT ?= 5000
WEB_WORKERS ?= 2
# The suite runs again on this PostgreSQL server when it answers (each run makes its own database).
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: run test lint venv chromium clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/activate
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.dev

instance/secret_key:
	mkdir -p instance
	$(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@
	chmod 600 $@

# Debian's Chromium for the page tests (Playwright drives it; no browser download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: $(VENV)/.runtime instance/secret_key
	@export SECRET_KEY="$${SECRET_KEY:-$$(cat instance/secret_key)}"; \
	$(FLASK) db upgrade && \
	$(FLASK) seed-demo --if-empty && \
	{ $(FLASK) scheduler & scheduler=$$!; \
	  trap 'kill $$scheduler 2>/dev/null; wait $$scheduler 2>/dev/null' EXIT INT TERM; \
	  echo "Serving Ticketer on http://127.0.0.1:$(PORT) (scheduler pid $$scheduler)"; \
	  $(BIN)/gunicorn --workers $(WEB_WORKERS) --bind 127.0.0.1:$(PORT) --access-logfile - 'app:create_app()'; }

lint: venv
	$(BIN)/ruff check .

test: venv chromium
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider
	@if $(BIN)/python -c "import psycopg; psycopg.connect('$(PG_TEST_URL)', connect_timeout=3).close()" 2>/dev/null; then \
	  echo "== again on PostgreSQL ($(PG_TEST_URL)) =="; \
	  TEST_DATABASE_URL='$(PG_TEST_URL)' $(BIN)/pytest -q -p no:cacheprovider; \
	else echo "PostgreSQL at $(PG_TEST_URL) does not answer: suite ran on SQLite only."; fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
