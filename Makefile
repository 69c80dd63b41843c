# The one entry point: `make run`, `make test`, `make lint`, `make bench`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TONGBAN_DATABASE_URL ?= sqlite:///var/tongban.db

.PHONY: run test lint format bench install clean migrate demo

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed
	@if command -v npm >/dev/null; then [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --silent; else echo "!!! npm not installed: axe-core checks in the browser tests will be SKIPPED !!!" >&2; fi

migrate: install
	$(BIN)/tongban db upgrade

demo: migrate
	$(BIN)/tongban demo

run: demo
	$(BIN)/tongban serve --host 127.0.0.1 --port 8000

test: install
	scripts/test.sh

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: install
	scripts/bench.sh

bench-benefits: install  # 免申即享 alone: a rule change over 10M people beside DuckDB (ARGS=--quick)
	$(BIN)/python benchmarks/bench_benefits.py $(ARGS)

bench-dashboard: install  # 一体化监测 alone: refresh after 1M events, page p95, beside DuckDB (ARGS=--quick)
	$(BIN)/python benchmarks/bench_dashboard.py $(ARGS)

bench-dashboard-writes: install  # 一体化监测: the floor under the refresh, writing its 1M-event rows alone (ARGS=--pg-url URL)
	$(BIN)/python benchmarks/bench_dashboard_writes.py $(ARGS)

bench-virtual-window: install  # 远程虚拟窗口 alone: start -> media connected, form-change p50/p95 vs 1 s (ARGS=--quick)
	$(BIN)/python benchmarks/bench_virtual_window.py $(ARGS)

bench-emergency: install  # 应急物资 alone: request->commit->dispatch over 4 nodes p50/p95, stock queries beside SQL and DuckDB (ARGS=--quick)
	$(BIN)/python benchmarks/bench_emergency.py $(ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
