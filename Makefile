# The two commands: `make dev` runs the service, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: dev test lint chromium bench screenshots clean

$(BIN)/tidings: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

dev: $(BIN)/tidings
	$(BIN)/tidings dev

# Tests need no annotations on fixture arguments, nor on helpers answering JSON; their
# bodies are still type-checked.
lint: $(BIN)/tidings
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tidings
	$(BIN)/mypy --allow-untyped-defs --allow-incomplete-defs --no-warn-return-any tests

# Then the API contract, the workers end to end, flow control's scripts and what waits in the
# due sets again, on a 3-master Redis Cluster with each scope spread over six partitions
# (tests/conftest.py, CLUSTER_RUN).
CLUSTER_TESTS := tests/test_api.py tests/test_workers.py tests/test_flow_store.py \
	tests/test_delayed.py tests/test_debounce.py

test: lint chromium
	$(BIN)/pytest
	TIDINGS_TEST_CLUSTER=1 $(BIN)/pytest $(CLUSTER_TESTS)

# The browser tests (tests/browser_support.py) drive Debian's Chromium; Playwright's own
# browser download is not used. Installed when missing, which needs root.
chromium: /usr/bin/chromium

/usr/bin/chromium:
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "make: /usr/bin/chromium is missing and this is not root: the browser tests" \
			"will fail. Install it with: sudo apt-get install -y chromium" >&2; \
	fi

bench: $(BIN)/tidings
	$(BIN)/python bench/query_cost.py

# The dashboard's pages, shot in headless Chromium with a worker and a shop's events.
screenshots: $(BIN)/tidings chromium
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) .tidings
