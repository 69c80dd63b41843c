#!/usr/bin/env bash
# `make bench`: runs every benchmarks/bench_*.py in turn (or only those named in
# TONGBAN_BENCH, e.g. TONGBAN_BENCH="cases exchange audit_writers"), each printing its
# table with the ratio to its reference, then a summary beside the previous run. Every script takes --pg-url (the PostgreSQL server in
# TONGBAN_BENCH_PG_URL, or a throwaway one started here on 127.0.0.1 and stopped at the
# end). Extra arguments go to every benchmark.
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
names=${TONGBAN_BENCH:-$(ls benchmarks/bench_*.py | sed 's|benchmarks/bench_||; s|\.py$||' | tr '\n' ' ')}
# The figures of the run before this one are kept beside (var/bench/previous/) and the
# summary at the end prints both: case submission, exchange delivery, concurrent audited
# writers (whose own table already has the old and new append paths of one run) …
mkdir -p var/bench/previous
for name in $names; do
  if [ -f "var/bench/$name.json" ]; then cp "var/bench/$name.json" "var/bench/previous/$name.json"; fi
done
for name in $names; do
  echo
  echo "=== benchmarks/bench_$name.py"
  .venv/bin/python "benchmarks/bench_$name.py" --pg-url "$TONGBAN_BENCH_PG_URL" "$@"
done
echo
echo "=== summary (this run beside the previous one)"
# shellcheck disable=SC2086
.venv/bin/python benchmarks/summary.py $names
