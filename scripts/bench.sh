#!/usr/bin/env bash
# `make bench`: case submissions per second through the HTTP API on PostgreSQL, beside a
# bare FastAPI endpoint doing one INSERT (see benchmarks/bench_cases.py). Uses the server
# in TONGBAN_BENCH_PG_URL, or starts a throwaway one on 127.0.0.1 and stops it at the end.
# Extra arguments go to the benchmark (e.g. --requests 100 --concurrency 2).
set -euo pipefail
cd "$(dirname "$0")/.."
pgdir=""
cleanup() {
  if [ -n "$pgdir" ]; then
    scripts/pg-test-server.sh stop "$pgdir" || true
    rm -rf "$pgdir"
  fi
}
trap cleanup EXIT
if [ -z "${TONGBAN_BENCH_PG_URL:-}" ]; then
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "no PostgreSQL server binaries: install postgresql or set TONGBAN_BENCH_PG_URL" >&2
    exit 3
  fi
  port=${TONGBAN_BENCH_PG_PORT:-$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
  pgdir=$(mktemp -d /tmp/tongban-bench-pg.XXXXXX)
  TONGBAN_BENCH_PG_URL=$(scripts/pg-test-server.sh start "$pgdir" "$port")
  export TONGBAN_BENCH_PG_URL
  echo "throwaway PostgreSQL at $TONGBAN_BENCH_PG_URL (fsync off: measures CPU and protocol, not disk)"
fi
.venv/bin/python benchmarks/bench_cases.py --pg-url "$TONGBAN_BENCH_PG_URL" "$@"
