#!/usr/bin/env bash
# `make test`: lint, type-check and run the whole suite, SQLite and PostgreSQL tiers,
# with the browser tier when Chromium is present. Starts its own PostgreSQL server
# when none is given in TONGBAN_TEST_PG_URL and the server binaries are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin
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
echo "== mypy"; $PY/mypy src
echo "== pytest"
$PY/pytest -p no:cacheprovider -n "${TONGBAN_TEST_WORKERS:-2}" "$@"
