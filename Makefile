# Two commands set everything up on a fresh machine with Python 3.11:
#   make run    create .venv, install, initialise the database, serve the app
#   make test   install the test extras and axe-core (npm, tests only), lint (ruff), type-check (mypy),
#               run the whole suite, in parallel (pytest -n auto, set in pyproject.toml: one process per core and
#               one more; PYTEST_ARGS="-n 0" runs it in one process)
#   make lint   ruff and mypy alone
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test lint init bench clean

$(BIN)/python:
	@echo "Creating $(VENV) ..."
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

# The build's own warnings go to a log, shown only when installing fails: a teacher sees the address.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	@echo "Installing flashapp into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e . > $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }
	@touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# axe-core, which the browser tests inject into every page; never served by the app.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

init: $(VENV)/.installed
	@$(BIN)/flashapp init

run: init
	@$(BIN)/flashapp serve --host $(HOST) --port $(PORT)

# Settings for both tools live in pyproject.toml; mypy's file list is there too.
lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/mypy

# Where PYTHONDONTWRITEBYTECODE is set, pytest would rewrite the asserts of every test module again in each
# worker on every run (about 5 s of each worker's start); the suite keeps Python's usual bytecode cache.
test: lint node_modules/.installed
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.test-installed
	$(BIN)/python bench/review_endpoint.py

clean:
	rm -rf $(VENV) build *.egg-info node_modules
