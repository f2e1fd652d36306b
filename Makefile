# Tally Portal. `make run` serves the portal with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
DEMO_VOTERS ?= 20000
DEMO_PRECINCTS ?= 40

.PHONY: install run serve db demo test lint format bench bench-scale clean

# Installs the pinned dependencies once; again only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

# Only the demo and the tests may fall back to an embedded PostgreSQL when none answers (and no
# PORTAL_DATABASE_URL is set); `make serve` and gunicorn in production never do (config.toml).
run demo test: export PORTAL_EMBEDDED_DATABASE = true

db: install
	$(FLASK) db-upgrade

demo: db
	$(FLASK) seed-demo --if-empty --voters $(DEMO_VOTERS) --precincts $(DEMO_PRECINCTS)

run: demo
	@echo
	@echo "Tally Portal on http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	@if [ -f instance/demo-logins.txt ]; then sed -n '1,2p' instance/demo-logins.txt; \
	  echo "All demo sign-ins: instance/demo-logins.txt"; \
	else echo "This database was seeded from another checkout; add an account with:"; \
	  echo "  $(FLASK) create-user NAME --role admin"; fi
	@echo
	PORTAL_BIND=$(HOST):$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# The same server without demo data: threads sized for live panels (see gunicorn.conf.py).
serve: db
	PORTAL_BIND=$(HOST):$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: install
	@bash tests/browser_deps.sh
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	cd bench && ../$(BIN)/python foundation.py && ../$(BIN)/python voters.py && ../$(BIN)/python imports.py \
		&& ../$(BIN)/python tally.py && ../$(BIN)/python checkin_load.py && ../$(BIN)/python reports.py \
		&& ../$(BIN)/python faults.py

# A statewide roll (10,000,000 voters, 10,000 precincts; bench/scale.py): not part of `make bench`,
# ten minutes on the 2-core machine and several GB of disk for a while. For a quick look:
# BENCH_SCALE_VOTERS=200000 BENCH_SCALE_PRECINCTS=200 make bench-scale
bench-scale: install
	cd bench && ../$(BIN)/python scale.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
