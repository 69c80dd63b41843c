#!/usr/bin/env bash
# `make test`: lint, type-check and run the whole suite, SQLite and PostgreSQL tiers,
# with the browser tier when Chromium is present. Starts its own PostgreSQL server
# when none is given in TONGBAN_TEST_PG_URL and the server binaries are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin
# The modules whose coverage has a floor, and the floor (percent of lines and branches).
# The whole suite covered 91% of them at the end of issue 11's first session; the floor
# is a few points below that; raise it as the figure printed below grows.
COVERED="src/tongban/*/service.py,src/tongban/*/service/*.py,src/tongban/*/*_service.py,src/tongban/*/domain.py"
FLOOR=88
pgdir=""
cleanup() { [ -n "$pgdir" ] && scripts/pg-test-server.sh stop "$pgdir"; [ -n "$pgdir" ] && rm -rf "$pgdir"; true; }
trap cleanup EXIT
if [ -z "${TONGBAN_TEST_PG_URL:-}" ]; then
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    pgdir=$(mktemp -d /tmp/tongban-pg.XXXXXX)
    TONGBAN_TEST_PG_URL=$(scripts/pg-test-server.sh start "$pgdir" "${TONGBAN_TEST_PG_PORT:-54329}")
    export TONGBAN_TEST_PG_URL
  else
    echo "!!! PostgreSQL server not installed: the PostgreSQL tier will be SKIPPED !!!" >&2
  fi
fi
if [ -z "${TONGBAN_CHROMIUM:-}" ] && [ -x /usr/bin/chromium ]; then export TONGBAN_CHROMIUM=/usr/bin/chromium; fi
[ -n "${TONGBAN_CHROMIUM:-}" ] || echo "!!! Chromium not installed: the browser tier will be SKIPPED !!!" >&2
echo "== ruff"; $PY/ruff check src tests benchmarks
echo "== ruff format"; $PY/ruff format --check src tests benchmarks
echo "== mypy"; $PY/mypy src
echo "== import contracts"; $PY/lint-imports --no-cache
echo "== pytest"
# Derandomized Hypothesis (tests/conftest.py): the same examples on every run.
export TONGBAN_HYPOTHESIS_PROFILE="${TONGBAN_HYPOTHESIS_PROFILE:-ci}"
rm -rf var/coverage && mkdir -p var/coverage
# The 30 slowest tests are listed at the end, so the suite's time can be kept in check.
$PY/pytest -p no:cacheprovider -n "${TONGBAN_TEST_WORKERS:-2}" --durations=30 --cov=tongban --cov-report= "$@"
# Coverage of the use cases and the rules (every context's service and domain modules)
# may not fall below the floor when the whole suite ran (not for a run of some tests).
echo "== coverage"
echo "whole package: $($PY/coverage report --format=total)%"
echo "services and domain: $($PY/coverage report --include="$COVERED" --format=total)%"
if [ $# -eq 0 ]; then
  $PY/coverage report --include="$COVERED" --fail-under="${TONGBAN_COVERAGE_FLOOR:-$FLOOR}" >/dev/null \
    || { echo "!!! services and domain below the coverage floor of ${TONGBAN_COVERAGE_FLOOR:-$FLOOR}% !!!" >&2; exit 1; }
fi
