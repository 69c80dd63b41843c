"""The summary `make bench` prints at the end, from var/bench/*.json:

1. this run, before vs after: every benchmark's `before_after` lines (case submission
   and exchange delivery measured on the tree before issue 11's kernel work and on the
   working tree, concurrent audited writers on the old and new append paths), with the
   ratio after/before;
2. this run beside the previous one: every `per_second` row and every `ratio*` figure,
   with the same files of the run before (kept by scripts/bench.sh in var/bench/previous/).

`python benchmarks/summary.py [names…]`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "var" / "bench"
#: The benchmarks whose reports have before/after lines (issue 11).
COMPARED = ("cases", "exchange", "audit_writers")


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def figures(data: dict[str, Any]) -> dict[str, float]:
    """name -> value: the rows' per_second and the top-level ratios of one report."""
    out: dict[str, float] = {}
    for row in data.get("results", []):
        if isinstance(row, dict) and isinstance(row.get("per_second"), int | float):
            label = row.get("name") or row.get("mode") or "?"
            out[f"{label} /s"] = float(row["per_second"])
    for key, value in data.items():
        if key.startswith("ratio") and isinstance(value, int | float):
            out[key] = float(value)
    return out


def number(value: Any, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


def before_after(names: list[str]) -> None:
    print(f"{'this run: before vs after':<64} {'before':>9} {'after':>9} {'after/before':>13}")
    print("-" * 98)
    commits: set[str] = set()
    for name in names:
        data = load(BENCH / f"{name}.json")
        lines = data.get("before_after")
        if not isinstance(lines, list):
            if name in COMPARED:
                print(f"{name}: no before/after figures in var/bench/{name}.json")
            continue
        for line in lines:
            if not isinstance(line, dict):
                continue
            figure = f"{line.get('figure', '?')} ({line.get('unit', '')})"
            print(
                f"{figure[:64]:<64} {number(line.get('before')):>9} {number(line.get('after')):>9}"
                f" {number(line.get('ratio_after_to_before'), 3):>13}"
            )
            if line.get("note"):
                print(f"    {line['note']}")
            if line.get("before_commit"):
                commits.add(str(line["before_commit"])[:12])
            elif line.get("before") is None:
                print(f"    before: unavailable in this run ({data.get('trees', {})})")
    if commits:
        print(f"before = commit {', '.join(sorted(commits))}; after = the tree measured now")


def beside_previous(names: list[str]) -> None:
    print(f"{'benchmark':<14} {'figure':<58} {'previous':>10} {'now':>10}")
    print("-" * 95)
    for name in names:
        now = figures(load(BENCH / f"{name}.json"))
        before = figures(load(BENCH / "previous" / f"{name}.json"))
        for label, value in now.items():
            old = before.get(label)
            shown = "-" if old is None else f"{old:.2f}"
            print(f"{name:<14} {label[:58]:<58} {shown:>10} {value:>10.2f}")


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in BENCH.glob("*.json"))
    print()
    before_after(names)
    print()
    beside_previous(names)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
