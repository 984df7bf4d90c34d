# Every target creates the virtual environment it needs; nothing is assumed installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The Dagster code location's own environment (orchestrate/requirements.txt): never the tap's.
ORCHESTRATE := orchestrate/.venv
ORCHESTRATE_STAMP := $(ORCHESTRATE)/.installed

SDK_NEXT := .venv-sdk-next

.PHONY: test test-full check sdk-next lint demo bench about clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy tests/e2e/*.py
	MYPYPATH=tests/e2e $(BIN)/mypy scripts
	MYPYPATH=benchmarks $(BIN)/mypy --explicit-package-bases benchmarks/*.py benchmarks/harness
	$(BIN)/mypy -p benchmarks.stock_tap

# Test processes side by side: the tests wait on subprocesses and sockets much of the time, so a
# third worker on two cores fills those waits.
WORKERS ?= 3
PYTEST := $(BIN)/python -m pytest -q -n $(WORKERS)

# What a change can break: lint and types, then every test once (unit, integration, e2e, the
# docs' commands) but for the ones marked `full` or `bench` in pyproject.toml.
test: lint
	$(PYTEST) -m "not full and not bench"

# What `make test` leaves out: the slowest cases, the benchmark harness's tests, and every tap
# test again with streams (and, where the tap has the setting, requests) one at a time.
test-full: $(STAMP) $(ORCHESTRATE_STAMP)  # built once, before tests run make backfill side by side
	$(PYTEST) -m "full or bench"
	$(PYTEST) --max-parallel-streams 1 --max-parallel-requests 1 \
		-m "not e2e and not sandbox and not full and not bench"

# The edit-test loop: lint, then the tests that are neither slow nor e2e.
check: lint
	$(PYTEST) -m "not slow and not e2e and not bench"

# The fast tests against the newest singer-sdk on the registry, over the pin: what the next
# upgrade breaks, seen early. Not part of `make test`.
sdk-next:
	test -x $(SDK_NEXT)/bin/python || $(PYTHON) -m venv $(SDK_NEXT)
	$(SDK_NEXT)/bin/python -m pip install --quiet --upgrade pip
	$(SDK_NEXT)/bin/python -m pip install --quiet -e '.[dev]'
	# pip reports the pin this breaks; breaking it is the point.
	$(SDK_NEXT)/bin/python -m pip install --quiet --upgrade 'singer-sdk[msgspec,testing]'
	$(SDK_NEXT)/bin/python -m pip show singer-sdk | grep '^Version'
	$(SDK_NEXT)/bin/python -m pytest -q -m "not slow and not e2e and not bench"

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/run.py --docs

about: $(STAMP)
	$(BIN)/tap-analytics --about --format markdown

clean:
	rm -rf $(VENV) $(SDK_NEXT) .venv-dist .venv-3.12 .venv-3.13 .meltano .demo .backfill orchestrate/.venv .pytest_cache .mypy_cache .ruff_cache

DIST_TOOLS := .venv-dist

.PHONY: dist matrix

# The sdist and the wheel, their metadata checked, and the wheel tried alone in a fresh venv.
dist:
	test -x $(DIST_TOOLS)/bin/python || $(PYTHON) -m venv $(DIST_TOOLS)
	$(DIST_TOOLS)/bin/python -m pip install --quiet build twine
	scripts/check_dist.sh $(DIST_TOOLS)/bin/python

# The fast tests under each Python version pyproject.toml claims besides the one of .venv.
matrix:
	scripts/matrix.sh 3.12 3.13

.PHONY: settings-copies

# tap-analytics.yml, meltano.yml's extractor and the README's settings table, written again
# from tap_analytics/settings.py (through `tap-analytics --about`) after a setting changes.
settings-copies: $(STAMP)
	$(BIN)/python scripts/settings_copies.py


.PHONY: backfill lint-orchestrate

$(ORCHESTRATE_STAMP): orchestrate/requirements.txt
	test -x $(ORCHESTRATE)/bin/python || $(PYTHON) -m venv $(ORCHESTRATE)
	$(ORCHESTRATE)/bin/python -m pip install --quiet --upgrade pip
	$(ORCHESTRATE)/bin/python -m pip install --quiet -r orchestrate/requirements.txt
	touch $(ORCHESTRATE_STAMP)

# The history as Dagster partitions (windows of updated_at), then the schedule's first run
# (docs/orchestration.md); BACKFILL_START, BACKFILL_END, BACKFILL_WINDOWS, BACKFILL_CONCURRENCY.
backfill: $(STAMP) $(ORCHESTRATE_STAMP)
	$(BIN)/python scripts/backfill.py

# The code location type-checked against the Dagster it pins, then loaded as a code server would.
lint-orchestrate: $(STAMP) $(ORCHESTRATE_STAMP)
	$(BIN)/mypy --python-executable $(ORCHESTRATE)/bin/python orchestrate
	$(ORCHESTRATE)/bin/dagster definitions validate -m orchestrate.definitions
