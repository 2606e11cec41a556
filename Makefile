# Two commands on a fresh machine with Python >= 3.11 and pip:
#   make demo   set up .venv/ and run lookalike on the sample images in examples/
#   make test   set up .venv/ with the test tools and run every test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,heif]'
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	touch $(STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh $(BIN)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
