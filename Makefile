# The two commands: `make run` and `make test`. Everything else here serves them.
VENV   ?= .venv
PYTHON ?= python3
PORT   ?= 5000
PY     := $(VENV)/bin/python
FLASK  := PLATFORM_DOMAIN=$${PLATFORM_DOMAIN:-localhost:$(PORT)} $(VENV)/bin/flask --app wsgi

.PHONY: run test bench setup lock clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt '.[test]'
	touch $@

setup: $(VENV)/.installed

# Fresh machine → virtualenv, dependencies, database, demo tenant, printed logins, then the
# web server and the background-job worker side by side (Ctrl-C stops both).
run: setup
	$(FLASK) db upgrade
	$(FLASK) demo
	@echo "Serving on http://demo.localhost:$(PORT)/staff — Ctrl-C to stop."
	@$(FLASK) worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

# Lint (ruff: what is wrong, not taste), the whole suite on SQLite, then again on PostgreSQL
# when TEST_DATABASE_URL is set.
test: setup
	$(VENV)/bin/ruff check .
	env -u TEST_DATABASE_URL $(PY) -m pytest
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "--- again on PostgreSQL ($$TEST_DATABASE_URL)"; \
		$(PY) -m pytest; \
	fi

# Every benchmark at a quick size on PostgreSQL (BENCH_DATABASE_URL, else the local server's
# portico_bench database): one table of figures against their targets, one JSON line last.
bench: setup
	$(PY) bench/all.py

# Refresh the pinned versions after changing pyproject.toml.
lock:
	$(PY) -m pip freeze --exclude portico | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
