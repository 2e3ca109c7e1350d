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

# Debian packages the tests use: chromium for the page tests (Playwright drives it; no browser
# download), and the sqlite3 / pg_dump / pg_restore clients that the backup-and-restore test runs.
chromium:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v sqlite3 >/dev/null 2>&1 || missing="$$missing sqlite3"; \
	command -v pg_dump >/dev/null 2>&1 || missing="$$missing postgresql-client"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

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
	$(BIN)/lint-imports --no-cache

# SQLite and PostgreSQL runs go side by side (one per core); each prints its own summary.
test: venv chromium
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	@set -u; mkdir -p test-artifacts; \
	if $(BIN)/python -c "import psycopg; psycopg.connect('$(PG_TEST_URL)', connect_timeout=3).close()" 2>/dev/null; then \
	  TEST_DATABASE_URL='$(PG_TEST_URL)' $(BIN)/pytest -q -p no:cacheprovider > test-artifacts/pytest-postgresql.log 2>&1 & pg=$$!; \
	else pg=; echo "PostgreSQL at $(PG_TEST_URL) does not answer: the suite runs on SQLite only."; fi; \
	echo "== SQLite =="; $(BIN)/pytest -q -p no:cacheprovider; sqlite_rc=$$?; pg_rc=0; \
	if [ -n "$$pg" ]; then wait $$pg; pg_rc=$$?; echo "== PostgreSQL ($(PG_TEST_URL)) =="; \
	  tail -n 60 test-artifacts/pytest-postgresql.log; fi; \
	test $$sqlite_rc -eq 0 -a $$pg_rc -eq 0

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
