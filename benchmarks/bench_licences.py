"""Licence verifications per second on ONE core, beside the bare signature check.

What is measured, in one process and one thread:

- `verify_licence`: the full check of a realistic presentation — a driving licence
  (驾驶证) with 8 selectively disclosable claims, presented with 4 disclosed — including
  parsing, the trust-list look-up (4 jurisdictions × 2 keys each), the signature, the
  disclosures, the time checks and the status check against a decoded status list of
  100,000 entries;
- the reference: `PublicKey.verify` of the same algorithm over a message of the same
  length as the licence's JWS signing input, on the same machine, the least any
  verification of that licence can cost.

The ratio (licence verifications/s ÷ bare verifications/s) is the figure: 1.0 would
mean parsing and checking cost nothing beside the signature. Time is the process's
CPU time (`time.process_time`; the process has one thread, so this is time on one
core): on a shared machine, wall-clock time would also count the moments the process
waits for a core. Each rate is the best of 5 runs.

Usage: python benchmarks/bench_licences.py [--seconds S] [--pg-url URL (ignored)]
Writes var/bench/licences.json. No database, no network.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tongban.crypto.signing import Alg, PrivateKey, generate  # noqa: E402
from tongban.licences.sdjwt import issue_sd_jwt, present  # noqa: E402
from tongban.licences.statuslist import LocalStatuses, StatusList  # noqa: E402
from tongban.licences.trustlist import (  # noqa: E402
    TrustedIssuer,
    key_entry,
    sign_trust_list,
    verify_trust_list,
)
from tongban.licences.verify import verify_licence  # noqa: E402

OUT = ROOT / "var" / "bench" / "licences.json"
RUNS = 5
NOW = 1_750_000_000
DAY = 86_400
STATUS_ENTRIES = 100_000
JURISDICTIONS = [
    ("310000", "上海市"),
    ("320000", "江苏省"),
    ("330000", "浙江省"),
    ("340000", "安徽省"),
]
DISCLOSABLE = (
    "name",
    "sex",
    "nationality",
    "birth_date",
    "address",
    "id_number",
    "licence_class",
    "first_issue_date",
)
SHOWN = ("name", "birth_date", "licence_class", "id_number")


def _iss(code: str) -> str:
    return f"https://{code}.tongban.example/licences"


def build(alg: Alg) -> dict[str, Any]:
    """A federation of 4 jurisdictions × 2 keys, a 100,000-entry status list, and a
    driving licence of 江苏 presented with 4 of its 8 disclosable claims."""
    root = generate(Alg.EDDSA)
    issuers, current = [], {}
    for code, name in JURISDICTIONS:
        old, new = generate(alg), generate(alg)
        current[code] = new
        issuers.append(
            TrustedIssuer(
                _iss(code),
                code,
                name,
                [
                    key_entry(old.public(), nbf=NOW - 800 * DAY, exp=NOW - 400 * DAY),
                    key_entry(new.public(), nbf=NOW - 400 * DAY),
                ],
            )
        )
    token = sign_trust_list(issuers, root, iat=NOW - DAY, exp=NOW + 7 * DAY)
    trust = verify_trust_list(token, [root.public()], now=NOW)
    iss = _iss("320000")
    uri = iss + "/status/1"
    statuses = StatusList(2, STATUS_ENTRIES)
    for idx in range(0, STATUS_ENTRIES, 97):
        statuses.set(idx, 1)
    source = LocalStatuses({uri: StatusList.decode(statuses.encode(), 2)})
    claims = {
        "iss": iss,
        "iat": NOW - 30 * DAY,
        "nbf": NOW - 30 * DAY,
        "exp": NOW + 6 * 365 * DAY,
        "vct": "urn:tongban:licence:driving",
        "licence_id": "1.2.156.3005.2.DL.11320000014000529X.0000012345.01.K",
        "status": {"status_list": {"idx": 12_346, "uri": uri}},
        "name": "王芳",
        "sex": "女",
        "nationality": "中国",
        "birth_date": "1990-05-17",
        "address": "江苏省苏州市吴江区松陵镇中山北路1号",
        "id_number": "320584199005170023",
        "licence_class": "C1",
        "first_issue_date": "2012-08-01",
    }
    key: PrivateKey = current["320000"]
    presentation = present(issue_sd_jwt(claims, DISCLOSABLE, key, decoys=2), SHOWN)
    verified = verify_licence(presentation, trust, source, now=NOW)
    assert verified.status == 0 and set(SHOWN) <= set(verified.claims)
    signing_input_len = len(presentation.split("~")[0].rsplit(".", 1)[0])
    message = secrets.token_bytes(signing_input_len)
    return {
        "presentation": presentation,
        "trust": trust,
        "source": source,
        "key": key,
        "message": message,
        "signature": key.sign(message),
    }


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Best of RUNS runs of n calls each, n chosen so one run lasts about `seconds`."""
    clock = time.process_time
    n, t0 = 0, clock()
    while clock() - t0 < 0.2:
        fn()
        n += 1
    per_run = max(20, int(n / (clock() - t0) * seconds))
    best = 0.0
    for _ in range(RUNS):
        start = clock()
        for _ in range(per_run):
            fn()
        best = max(best, per_run / (clock() - start))
    return best


def measure(alg: Alg, seconds: float) -> dict[str, Any]:
    ctx = build(alg)
    presentation, trust, source = ctx["presentation"], ctx["trust"], ctx["source"]
    public, message, signature = ctx["key"].public(), ctx["message"], ctx["signature"]
    assert public.verify(message, signature)
    licence = rate(lambda: verify_licence(presentation, trust, source, now=NOW), seconds)
    bare = rate(lambda: public.verify(message, signature), seconds)
    return {
        "alg": alg.value,
        "licence_verifications_per_s": round(licence, 1),
        "bare_signature_verifications_per_s": round(bare, 1),
        "ratio": round(licence / bare, 3),
        "presentation_bytes": len(presentation),
        "signed_bytes": len(message),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", help="ignored: this benchmark uses no database")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one run")
    args = parser.parse_args(argv)
    rows = [measure(alg, args.seconds) for alg in (Alg.EDDSA, Alg.SM2)]
    header = f"{'suite':<8} {'verify_licence/s':>17} {'bare verify/s':>14} {'ratio':>6}"
    print("licence verification on one core (CPU time, best of 5 runs)")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['alg']:<8} {r['licence_verifications_per_s']:>17,.0f} "
            f"{r['bare_signature_verifications_per_s']:>14,.0f} {r['ratio']:>6.2f}"
        )
    print(
        f"presentation {rows[0]['presentation_bytes']} bytes (EdDSA), "
        f"{len(DISCLOSABLE)} disclosable claims, {len(SHOWN)} disclosed, "
        f"trust list {len(JURISDICTIONS)}×2 keys, status list {STATUS_ENTRIES:,} entries"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "benchmark": "licences",
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "runs": RUNS,
                "seconds_per_run": args.seconds,
                "rows": rows,
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
