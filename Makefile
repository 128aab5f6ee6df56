# The two commands (see README.md):
#   make run    set everything up, migrate, seed the demo firm and serve on http://127.0.0.1:6543
#   make test   set up what the tests need, then ruff, mypy and the whole pytest suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= development.ini
HOST ?= 127.0.0.1
PORT ?= 6543
# Both cores: the suite (three databases, browsers, chaos) runs in half the time.
PYTEST_ARGS ?= -n 2

.PHONY: run test setup assets catalogs messages lint typecheck pytest chromium wrk bench migrate demo serve worker clean

run: setup migrate demo serve

setup: $(VENV)/.installed assets catalogs

# The payer's pages in English and Spanish: gettext catalogs, compiled here (never committed).
CATALOGS := $(patsubst %.po,%.mo,$(wildcard clientpay_connect/locale/*/LC_MESSAGES/*.po))

catalogs: $(CATALOGS)

clientpay_connect/locale/%.mo: clientpay_connect/locale/%.po $(VENV)/.installed
	$(BIN)/pybabel compile --domain clientpay -i $< -o $@

# After changing what a payer reads: re-extract, then translate what is new in es/.../clientpay.po.
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output \
	  -o clientpay_connect/locale/clientpay.pot .
	$(BIN)/pybabel update --domain clientpay -d clientpay_connect/locale --ignore-obsolete \
	  --no-fuzzy-matching -i clientpay_connect/locale/clientpay.pot

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[testing]"
	touch $@

assets: node_modules/.installed
	npm run --silent build

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

migrate: setup
	$(BIN)/clientpay --config $(CONFIG) db upgrade

demo: setup
	$(BIN)/clientpay --config $(CONFIG) demo --reset-passwords

# The links the app sends out must point at the address it really serves on.
serve: setup
	CLIENTPAY_PUBLIC_URL=$${CLIENTPAY_PUBLIC_URL:-http://$(HOST):$(PORT)} \
	  $(BIN)/clientpay --config $(CONFIG) serve --host $(HOST) --port $(PORT)

worker: setup
	$(BIN)/clientpay --config $(CONFIG) worker

# Browser tests drive Debian's chromium; never a downloaded browser.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy clientpay_connect adapters benchmarks

# The benchmarks load the server as a user measuring would: Debian's wrk, pinned to one core
# with taskset (util-linux), the server to the other. Never a downloaded or hand-built wrk.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian's wrk for the benchmarks"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# The payment page against hello-world, on SQLite and (when CLIENTPAY_BENCH_DATABASE_URL names
# a PostgreSQL server) on PostgreSQL, in one run. BENCH_ARGS=--duration 5, for instance.
bench: setup wrk
	$(BIN)/python benchmarks/pay_page.py $(BENCH_ARGS)

pytest: setup chromium
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) node_modules clientpay_connect/static/vendor var
