# Every target creates the virtual environment it needs; nothing is assumed installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint unit demo bench about clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest
	# Every tap test again with streams synced one after another.
	$(BIN)/python -m pytest -q --max-parallel-streams 1 tests \
		--ignore=tests/e2e --ignore=tests/test_sandbox.py --ignore=tests/test_load.py

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/run.py --docs

about: $(STAMP)
	$(BIN)/tap-analytics --about --format markdown

clean:
	rm -rf $(VENV) .meltano .demo .pytest_cache .mypy_cache .ruff_cache
