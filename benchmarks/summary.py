"""The figures of the last `make bench` beside those of the run before it: every
`per_second` row and every `ratio*` figure of var/bench/*.json, with the same files of
the previous run (kept by scripts/bench.sh in var/bench/previous/). Run by `make bench`
after the benchmarks; `python benchmarks/summary.py [names…]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "var" / "bench"


def figures(path: Path) -> dict[str, float]:
    """name -> value: the rows' per_second and the top-level ratios of one report."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    out: dict[str, float] = {}
    for row in data.get("results", []):
        if isinstance(row, dict) and isinstance(row.get("per_second"), int | float):
            label = row.get("name") or row.get("mode") or "?"
            out[f"{label} /s"] = float(row["per_second"])
    for key, value in data.items():
        if key.startswith("ratio") and isinstance(value, int | float):
            out[key] = float(value)
    return out


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in BENCH.glob("*.json"))
    print()
    print(f"{'benchmark':<14} {'figure':<52} {'previous':>10} {'now':>10}")
    print("-" * 89)
    for name in names:
        now = figures(BENCH / f"{name}.json")
        before = figures(BENCH / "previous" / f"{name}.json")
        for label, value in now.items():
            old = before.get(label)
            shown = "-" if old is None else f"{old:.2f}"
            print(f"{name:<14} {label[:52]:<52} {shown:>10} {value:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
