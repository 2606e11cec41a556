# Two commands on a fresh machine with Python >= 3.11 and pip:
#   make demo   set up .venv/ with lookalike alone and run it on the sample images in examples/
#               (no root, no PostgreSQL, no browser)
#   make test   add the test tools, PostgreSQL and Chromium (installed as root when missing), then
#               lint (ruff, mypy --strict, the import contracts), build the docs site (--strict) and run every test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint docs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,heif,learned]'
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	touch $(TEST_STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh $(BIN)

test: $(TEST_STAMP)
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory docs
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile --durations 15

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src
	$(BIN)/mypy
	$(BIN)/lint-imports

# the documentation site from docs/ into site/; --strict turns a broken link or a stale API reference into a failure
docs: $(TEST_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
