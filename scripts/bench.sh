#!/usr/bin/env bash
# `make bench`: runs every benchmarks/bench_*.py in turn (or only those named in
# TONGBAN_BENCH, e.g. TONGBAN_BENCH="cases exchange audit_writers"), each printing its
# table with the ratio to its reference, then a summary: this run's before vs after, and
# this run beside the previous one. Case submission and exchange delivery measure the tree
# before issue 11's kernel work (benchmarks/_before.py: commit 301fd29, or
# TONGBAN_BENCH_BEFORE; unpacked once into var/bench/before-<sha>) and the working tree in
# the same run, taking turns; concurrent audited writers compare the old and new append
# paths in one run. Every script takes --pg-url (the PostgreSQL server in
# TONGBAN_BENCH_PG_URL, or a throwaway one started here on 127.0.0.1 and stopped at the
# end). Extra arguments go to every benchmark (e.g. --quick: smaller counts).
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
# The figures of the run before this one are kept beside (var/bench/previous/) for the
# second part of the summary.
mkdir -p var/bench/previous
for name in $names; do
  # Moved, not copied: a benchmark that fails leaves no figures of an older run behind
  # for the summary to show as this run's.
  if [ -f "var/bench/$name.json" ]; then mv "var/bench/$name.json" "var/bench/previous/$name.json"; fi
done
# The before tree, unpacked once here (each benchmark reuses it), or why there is none:
# then the benchmarks measure the working tree only, and the run goes on.
.venv/bin/python benchmarks/_before.py
# A benchmark that fails (failed requests, undelivered messages, a broken chain) does not
# stop the others: the summary still shows what was measured, and the run fails at the end.
failed=""
for name in $names; do
  echo
  echo "=== benchmarks/bench_$name.py"
  .venv/bin/python "benchmarks/bench_$name.py" --pg-url "$TONGBAN_BENCH_PG_URL" "$@" || failed="$failed $name"
done
echo
echo "=== summary: this run, before vs after; then this run beside the previous one"
# shellcheck disable=SC2086
.venv/bin/python benchmarks/summary.py $names
if [ -n "$failed" ]; then
  echo "failed:$failed" >&2
  exit 1
fi
