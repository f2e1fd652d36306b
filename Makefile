# Tally Portal. `make run` serves the portal with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
DEMO_VOTERS ?= 20000
DEMO_PRECINCTS ?= 40

# The tools that install and lock, pinned like the rest.
PIP_VERSION := 26.3
UV_VERSION := 0.13.9

.PHONY: install install-runtime install-embedded lock run serve db demo test lint format bench bench-scale clean

# Three installs into .venv, each from its lock file (requirements/*.lock: every package, transitive
# ones included, at one version), each made once and again only when its lock or pyproject.toml changes:
#   runtime   the portal against a PostgreSQL server: `make serve`, and `make run` where a server answers
#   embedded  runtime + pgserver (PostgreSQL 16 in a wheel): `make run` where none answers
#   dev       embedded + pytest, Playwright, ruff, mypy, jsonschema, psutil: `make install`, test, lint, bench
define install-lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/python -m pip install --quiet -r $(1)
	$(BIN)/python -m pip install --quiet --no-deps -e .
endef

$(VENV)/.installed-runtime: requirements/runtime.lock pyproject.toml
	$(call install-lock,requirements/runtime.lock)
	@touch $@

# Each lock holds the ones below it at the same versions (`make lock` compiles them against dev.lock).
$(VENV)/.installed-embedded: requirements/embedded.lock pyproject.toml
	$(call install-lock,requirements/embedded.lock)
	@touch $@ $(VENV)/.installed-runtime

$(VENV)/.installed: requirements/dev.lock pyproject.toml
	$(call install-lock,requirements/dev.lock)
	@touch $@ $(VENV)/.installed-runtime $(VENV)/.installed-embedded

install: $(VENV)/.installed
install-runtime: $(VENV)/.installed-runtime
install-embedded: $(VENV)/.installed-embedded

# The locks again from pyproject.toml (after changing a dependency there): for every platform and
# every Python from 3.11 on. A lock's existing pins are kept unless asked otherwise:
# `make lock LOCK_FLAGS=--upgrade` takes the newest transitive packages, `--upgrade-package NAME` one.
LOCK = $(BIN)/uv pip compile pyproject.toml --universal --quiet --custom-compile-command "make lock" $(LOCK_FLAGS)
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(LOCK) --extra dev -o requirements/dev.lock
	$(LOCK) --extra embedded -c requirements/dev.lock -o requirements/embedded.lock
	$(LOCK) -c requirements/dev.lock -o requirements/runtime.lock

# Only the demo and the tests may fall back to an embedded PostgreSQL when none answers (and no
# PORTAL_DATABASE_URL is set); `make serve` and gunicorn in production never do (config.toml).
run demo test: export PORTAL_EMBEDDED_DATABASE = true

# pgserver is installed only when the embedded PostgreSQL is wanted (`make run` where none answers).
EMBEDDED_WANTED = $(BIN)/python -c 'import sys; from portal.config import load_config; \
	from portal.embedded_pg import embedded_wanted; c = load_config(); sys.exit(0 if embedded_wanted( \
	c["DATABASE_URL"], from_env=c["DATABASE_URL_FROM_ENV"], embedded=c["EMBEDDED_DATABASE"]) else 1)'

db: install-runtime
	@if $(EMBEDDED_WANTED); then $(MAKE) --no-print-directory install-embedded; fi
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
	$(BIN)/mypy portal

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	@bash tests/browser_deps.sh
	cd bench && ../$(BIN)/python foundation.py && ../$(BIN)/python voters.py && ../$(BIN)/python imports.py \
		&& ../$(BIN)/python import_browser.py && ../$(BIN)/python tally.py && ../$(BIN)/python checkin_load.py \
		&& ../$(BIN)/python reports.py && ../$(BIN)/python faults.py

# A statewide roll (10,000,000 voters, 10,000 precincts; bench/scale.py): not part of `make bench`,
# ten minutes on the 2-core machine and several GB of disk for a while. For a quick look:
# BENCH_SCALE_VOTERS=200000 BENCH_SCALE_PRECINCTS=200 make bench-scale
bench-scale: install
	cd bench && ../$(BIN)/python scale.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
