# Otklik — everything a newcomer needs: `make run`, `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
# Compile bytecode at install time: start-up is seconds faster, and some
# environments set PYTHONDONTWRITEBYTECODE, so it would never be cached.
export UV_COMPILE_BYTECODE := 1
PG_URL ?= $(OTKLIK_TEST_POSTGRES_URL)

.PHONY: run install dev lint typecheck test test-sqlite test-pg test-pg-if-set migrate bench clean browser

$(BIN)/uv:
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv

$(VENV)/.runtime: pyproject.toml uv.lock | $(BIN)/uv
	$(BIN)/uv sync --frozen --inexact --quiet
	touch $@

$(VENV)/.dev: pyproject.toml uv.lock | $(BIN)/uv
	$(BIN)/uv sync --frozen --inexact --extra dev --quiet
	touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
dev: $(VENV)/.dev

migrate: install
	$(BIN)/otklik migrate

## run: create the environment, migrate, seed the demo (once), serve on http://127.0.0.1:8000
run: install
	@mkdir -p var
	$(BIN)/otklik migrate
	$(BIN)/otklik demo --if-empty --history-days 14
	@echo
	@echo "Otklik is starting: open http://127.0.0.1:8000/login (demo users above; also in var/demo-credentials.txt)"
	$(BIN)/otklik serve --host 127.0.0.1 --port 8000

## lint: ruff, and the import contracts that keep the rooms' arrows one way (pyproject.toml)
lint: dev
	$(BIN)/ruff check app webhooks tests bench
	$(BIN)/ruff format --check app webhooks tests bench
	$(BIN)/lint-imports --no-cache

typecheck: dev
	$(BIN)/mypy

browser:
	@scripts/ensure-chromium

## test: lint, types, and the suite on SQLite and on PostgreSQL (when OTKLIK_TEST_POSTGRES_URL
## is set; CI always sets it) all at once, each suite on PYTEST_WORKERS pytest-xdist workers.
## Much of the suite waits on processes, browsers and sleeps, so the runs share two cores
## well. Each part's output is printed whole when it ends (make -O); every part runs to its
## end (make -k) and any failure fails `make test`.
PYTEST_WORKERS ?= 2
PYTEST_ARGS := $(if $(filter-out 0 1,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadscope) --durations=25

test: dev browser
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -k -j 4 --output-sync=target lint typecheck test-sqlite test-pg-if-set; \
	rc=$$?; echo "make test: $$(( $$(date +%s) - start )) s, $$([ $$rc = 0 ] && echo passed || echo FAILED)"; \
	exit $$rc

test-pg-if-set:
	@if [ -n "$(PG_URL)" ]; then $(MAKE) --no-print-directory test-pg; \
	else echo "OTKLIK_TEST_POSTGRES_URL is not set: PostgreSQL run skipped (CI always sets it)"; fi

test-sqlite: dev
	@echo "=== test suite on SQLite ==="
	OTKLIK_TEST_BACKEND=sqlite scripts/pytest-run $(PYTEST_ARGS)

test-pg: dev
	@test -n "$(PG_URL)" || { echo "set OTKLIK_TEST_POSTGRES_URL=postgresql://user@host:5432/db"; exit 2; }
	@echo "=== test suite on PostgreSQL ==="
	OTKLIK_TEST_BACKEND=postgres OTKLIK_TEST_POSTGRES_URL="$(PG_URL)" scripts/pytest-run $(PYTEST_ARGS)

## bench: throughput and latency figures (prints ratios against a bare endpoint)
bench: dev
	@scripts/ensure-wrk
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## soak: the reliability tests with large counts (1,000 events, six SIGKILLs, a storm of
## 10,000 deliveries), printing their figures; PostgreSQL too when OTKLIK_TEST_POSTGRES_URL is set
.PHONY: soak
soak: dev
	@echo "=== soak on SQLite ==="
	OTKLIK_SOAK=1 OTKLIK_TEST_BACKEND=sqlite scripts/pytest-run -p no:cacheprovider -q -s tests/reliability
	@if [ -n "$(PG_URL)" ]; then echo "=== soak on PostgreSQL ==="; \
	OTKLIK_SOAK=1 OTKLIK_TEST_BACKEND=postgres OTKLIK_TEST_POSTGRES_URL="$(PG_URL)" \
	scripts/pytest-run -p no:cacheprovider -q -s tests/reliability; \
	else echo "OTKLIK_TEST_POSTGRES_URL is not set: PostgreSQL soak skipped"; fi
