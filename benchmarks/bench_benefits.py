"""免申即享: a rule change evaluated over a simulated population, in the platform's own
evaluator (tongban.benefits.domain) and, beside it in the same run, as a plain DuckDB
query over the same data; the ratio Python/DuckDB is the figure, and both must count the
same people gaining, losing, keeping and staying without the benefit.

The population (default 10 million people, --quick 200,000) is generated inside DuckDB
from a hash of the row number (deterministic, no file): the data the rules read, already
derived (age, sex, household, insurance, births, certificates), with some of it missing
as it would be. The change is 高龄津贴 version 1 (80 years, household in 上海/江苏/浙江/
安徽) to a version 2 (75 years, 上海/江苏 only): every person is evaluated under both
versions, as an officer's preview does.

Rows: the rule's decision without a trace (`domain.predicate`, what a preview counts
with), evaluating rows fetched from DuckDB in batches (rate counted on evaluation time
and end to end, with the fetch); the traced evaluation (`domain.evaluate` + `trace()`,
what an offer stores) on a sample; and the DuckDB query (`domain.where_clause`).

    python benchmarks/bench_benefits.py [--people N] [--quick] [--pg-url URL (ignored)]

Writes var/bench/benefits.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from tongban.benefits import domain
from tongban.benefits.domain import Datum

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "benefits.json"
TODAY = date(2026, 11, 29)
BATCH = 100_000

COLUMNS = [
    "age",
    "sex",
    "household_jurisdiction",
    "insured_status",
    "months_paid",
    "days_since_birth",
    "children",
    "youngest_child_age",
    "one_child_certificate",
    "disability_certified",
    "disability_level",
]

# Deterministic pseudo-random columns from hash(i, salt); some data missing (NULL).
POPULATION = """
CREATE TABLE p AS
SELECT
  i,
  CASE WHEN hash(i, 1) % 100 < 2 THEN NULL ELSE (hash(i, 2) % 101)::INTEGER END AS age,
  CASE WHEN hash(i, 3) % 2 = 0 THEN '女' ELSE '男' END AS sex,
  CASE WHEN hash(i, 4) % 100 < 3 THEN NULL
       ELSE ['310000', '320000', '330000', '340000', '110000'][1 + (hash(i, 5) % 5)::INTEGER]
  END AS household_jurisdiction,
  CASE WHEN hash(i, 6) % 100 < 40 THEN NULL
       ELSE ['正常参保', '暂停参保', '终止参保'][1 + (hash(i, 7) % 3)::INTEGER] END
    AS insured_status,
  CASE WHEN hash(i, 6) % 100 < 40 THEN NULL ELSE (hash(i, 8) % 240)::INTEGER END AS months_paid,
  CASE WHEN hash(i, 9) % 100 < 95 THEN NULL ELSE (hash(i, 10) % 800)::INTEGER END
    AS days_since_birth,
  (hash(i, 11) % 4)::INTEGER AS children,
  CASE WHEN hash(i, 11) % 4 = 0 THEN NULL ELSE (hash(i, 12) % 40)::INTEGER END
    AS youngest_child_age,
  hash(i, 13) % 100 < 15 AS one_child_certificate,
  hash(i, 14) % 100 < 6 AS disability_certified,
  CASE WHEN hash(i, 14) % 100 < 6 THEN 1 + (hash(i, 15) % 4)::INTEGER ELSE NULL END
    AS disability_level
FROM range(?) t(i)
"""


def rules() -> tuple[domain.Rule, domain.Rule]:
    v1 = next(r for r in domain.initial_rules() if r.id == "longevity_allowance")
    v2 = domain.with_values(v1, {0: "75", 1: "310000,320000"}, 2)
    return v1, v2


def python_counts(
    con: Any, v1: domain.Rule, v2: domain.Rule
) -> tuple[dict[str, int], float, float]:
    """Counts of each change, the seconds spent evaluating, and the seconds end to end."""
    before = domain.predicate(v1, COLUMNS)
    after = domain.predicate(v2, COLUMNS)
    counts = {c.value: 0 for c in domain.Change}
    gain = lose = keep = 0
    n = 0
    evaluating = 0.0
    start = time.perf_counter()
    cur = con.execute(f"SELECT {', '.join(COLUMNS)} FROM p")
    while True:
        rows = cur.fetchmany(BATCH)
        if not rows:
            break
        t = time.perf_counter()
        for row in rows:
            b = before(row)
            a = after(row)
            if a:
                if b:
                    keep += 1
                else:
                    gain += 1
            elif b:
                lose += 1
        evaluating += time.perf_counter() - t
        n += len(rows)
    total = time.perf_counter() - start
    counts.update(gain=gain, lose=lose, keep=keep, none=n - gain - lose - keep)
    return counts, evaluating, total


def duckdb_counts(con: Any, v1: domain.Rule, v2: domain.Rule) -> tuple[dict[str, int], float]:
    b, a = (
        f"COALESCE(({domain.where_clause(v1)}), FALSE)",
        f"COALESCE(({domain.where_clause(v2)}), FALSE)",
    )
    sql = f"""
        SELECT count(*) FILTER (WHERE {a} AND NOT {b}),
               count(*) FILTER (WHERE {b} AND NOT {a}),
               count(*) FILTER (WHERE {a} AND {b}),
               count(*) FILTER (WHERE NOT {a} AND NOT {b})
        FROM p"""
    start = time.perf_counter()
    gain, lose, keep, none = con.execute(sql).fetchone()
    return {"gain": gain, "lose": lose, "keep": keep, "none": none}, time.perf_counter() - start


def traced_rate(con: Any, v2: domain.Rule, sample: int) -> float:
    """Evaluations per second with the trace an offer stores."""
    rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM p LIMIT {sample}").fetchall()
    start = time.perf_counter()
    for row in rows:
        facts = {
            k: Datum(v, "模拟数据") for k, v in zip(COLUMNS, row, strict=True) if v is not None
        }
        domain.evaluate(v2, facts, TODAY).trace("规则新版本启用")
    return len(rows) / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true", help="200,000 people")
    ap.add_argument("--pg-url", default=None, help="ignored (make bench passes it to all)")
    args = ap.parse_args()
    n = 200_000 if args.quick else args.people
    v1, v2 = rules()

    con = duckdb.connect()
    t = time.perf_counter()
    con.execute(POPULATION, [n])
    generated = time.perf_counter() - t
    print(f"population: {n:,} people generated in DuckDB in {generated:.1f} s")
    print(f"rule change: {v1.label} -> 第{v2.version}版 ({domain.where_clause(v2)})")

    py, evaluating, end_to_end = python_counts(con, v1, v2)
    db, db_seconds = duckdb_counts(con, v1, v2)
    traced = traced_rate(con, v2, min(n, 50_000))
    same = py == db
    evaluations = 2 * n  # both versions for everyone
    results = [
        {
            "name": "python predicate (evaluation only)",
            "per_second": round(evaluations / evaluating),
            "seconds": round(evaluating, 2),
        },
        {
            "name": "python predicate (with fetch from DuckDB)",
            "per_second": round(evaluations / end_to_end),
            "seconds": round(end_to_end, 2),
        },
        {"name": "python traced evaluation", "per_second": round(traced)},
        {
            "name": "duckdb query",
            "per_second": round(evaluations / db_seconds),
            "seconds": round(db_seconds, 3),
        },
    ]
    print(f"{'':44} {'evaluations/s':>15} {'seconds':>9}")
    for r in results:
        print(f"{r['name']:44} {r['per_second']:>15,} {r.get('seconds', ''):>9}")
    ten_million = 2 * 10_000_000
    print(
        f"a rule change over 10 million people: {ten_million / (evaluations / end_to_end) / 60:.1f}"
        f" min (predicate, with fetch); {ten_million / traced / 60:.1f} min with traces;"
        f" DuckDB {ten_million / (evaluations / db_seconds):.1f} s"
    )
    print(f"counts  python {py}\n        duckdb {db}  {'same' if same else 'DIFFERENT'}")
    ratio = (evaluations / end_to_end) / (evaluations / db_seconds)
    print(f"ratio python/duckdb (end to end): {ratio:.4f}")
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "cpus": os.cpu_count(),
        "people": n,
        "rule_change": [v1.as_json(), v2.as_json()],
        "counts": py,
        "counts_duckdb": db,
        "results": results,
        "ratio_python_to_duckdb": round(ratio, 5),
        "minutes_for_10m_people": round(ten_million / (evaluations / end_to_end) / 60, 2),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
