"""The card at a gate (issue 15): code verifications per second on one core beside the
bare signature rate, and the revocation set for 235 million cards — its size, a day of
deltas, and how long a gate takes to sync it.

1. Verifications. A pool of holders (Ed25519 issuer as the nodes sign by default, and
   SM2/SM3 for the other suite; ECDSA P-256 device keys, what the browsers' WebCrypto
   makes), each code distinct. "bare" is the two signature checks a code needs and
   nothing else (the issuer's over the credential, the device's over the code; keys
   parsed once); "gate" is `Gate.check`, everything `tongban gate verify/serve` does per
   code — QR text decoding, format checks, key lookup, both signatures, times, the
   revocation set of the 235-million-card federation (hash lookup), the replay store
   and the outbox of uses in the gate's own SQLite, and the venue's benefit rule. The ratio gate/bare
   is the figure (aim >= 0.5). The process is pinned to one core.

2. The revocation set. A credential lives 24 hours, so a gate must know only the
   credentials still valid whose card was lost, replaced or cancelled, or whose holder
   moved to another device, in the last 24 hours: not every lost card there ever was.
   Rates assumed (per year, of cards): 2 % reported lost or replaced (补换 for loss,
   damage or a change; the programme replaces a few million of its ~240 million cards
   a year), 1 % cancelled (deaths ~0.8 %, moves away), and device changes: half the
   holders use the phone code, a new phone every 30 months — each supersedes the old
   device's credential. Per day: 235e6 * (0.03 / 365) cards + 235e6 * 0.5 / 913 device
   changes. The set is built with that many random 8-byte references, split by
   jurisdiction by population (上海 25 %, 江苏 36 %, 浙江 28 %, 安徽 11 %, the shares of
   the delta's 235 million), signed, encoded in the shipped format (8 bytes each), and
   then a day of deltas as the shipped code makes them (card/revdelta.py: entries added
   and positions expired out, Rice coded, with the issuer's signature of the new list):
   each jurisdiction's list evolves hour by hour for a day, a gate syncing hourly (and
   every 4 hours, and daily) gets a delta onto the list it holds, decodes it, applies it and checks
   the signature; the bytes are summed (always at full scale, since the coding's bytes
   per entry depend on how many). With full lists only, a gate syncing hourly would
   download 24 of them a day, which the table also says.

3. Sync time: the four lists served over loopback HTTP, fetched, signature-checked,
   decoded and turned into the gate's lookup sets; plus the transfer time at 10 Mbit/s
   (a venue's 4G) computed from the size.

    python benchmarks/bench_card.py [--quick] [--seconds 3] [--pg-url IGNORED]

Writes var/bench/card.json.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "card.json"

CARDS = 235_000_000
LOST_OR_REPLACED_PER_YEAR = 0.02
CANCELLED_PER_YEAR = 0.01
PHONE_USERS = 0.5
PHONE_LIFETIME_DAYS = 913
SHARES = {"310000": 0.25, "320000": 0.36, "330000": 0.28, "340000": 0.11}
MBIT = 10


def pin_one_core() -> int | None:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):
        return None


def interleaved(a: Any, a_items: list[Any], b: Any, b_items: list[Any]) -> tuple[float, float]:
    """Calls per second of `a` over `a_items` and of `b` over `b_items`, in turns of 50
    calls each, so that a neighbour's load on the shared machine falls on both alike."""
    spent = [0.0, 0.0]
    for start in range(0, len(a_items), 50):
        for k, (fn, items) in enumerate(((a, a_items), (b, b_items))):
            t0 = time.perf_counter()
            for item in items[start : start + 50]:
                fn(item)
            spent[k] += time.perf_counter() - t0
    return len(a_items) / spent[0], len(b_items) / spent[1]


def verification_rows(codes_n: int, revoked: dict[str, frozenset[bytes]]) -> list[dict[str, Any]]:
    """Bare signature checks and gate verifications per second, per issuer suite."""
    from tongban.card import codec
    from tongban.card.benefits import rules_at
    from tongban.card.codec import Credential, IssuerAlg
    from tongban.card.device import Device
    from tongban.card.devicekeys import DeviceVerifier
    from tongban.card.domain import AgeBand, CardStatus
    from tongban.card.gate import Gate, GateConfig, GateDb
    from tongban.card.verifier import IssuerKey, Policy, Verifier, index_keys, kid8
    from tongban.crypto.signing import Alg, generate

    rows: list[dict[str, Any]] = []
    now = int(time.time())
    per_holder = 20
    for alg in (Alg.EDDSA, Alg.SM2):
        key = generate(alg)
        public = key.public()
        texts: list[str] = []
        bare_items: list[tuple[bytes, bytes, bytes, bytes, DeviceVerifier]] = []
        for h in range(max(1, codes_n // per_holder)):
            device = Device.generate("ES256")
            unsigned = Credential(
                issuer_alg=IssuerAlg.SM2 if alg is Alg.SM2 else IssuerAlg.ED25519,
                device_alg=device.alg,
                jurisdiction="320000",
                city="320100",
                kid8=kid8(key.kid),
                ref=secrets.token_bytes(8),
                age_band=AgeBand.AGE_70_PLUS if h % 3 == 0 else AgeBand.AGE_18_59,
                concessions=0,
                status=CardStatus.NORMAL,
                transport=True,
                generation=3,
                iat=now - 3600,
                exp=now + 20 * 3600,
                device_key=device.public_raw(),
            )
            cred = replace(unsigned, signature=key.sign(unsigned.signing_input()))
            device.credential = cred.to_bytes()
            # A fresh verifier per holder for the bare row: key parsing is not counted.
            dv = DeviceVerifier(device.alg, device.public_raw())
            for t in range(now - per_holder, now):
                code = device.code(t)
                texts.append(codec.to_qr_text(code))
                signed = codec.code_signing_input(device.credential, t)
                bare_items.append((cred.signing_input(), cred.signature, signed, code[-64:], dv))

        def bare(
            item: tuple[bytes, bytes, bytes, bytes, DeviceVerifier], public: Any = public
        ) -> None:
            if not (public.verify(item[0], item[1]) and item[4].verify(item[2], item[3])):
                raise AssertionError("a genuine signature did not verify")

        state = Path(tempfile.mkdtemp(prefix="tongban-bench-gate-"))
        db = GateDb(state / "gate.db")
        rules = rules_at("330100-museum")
        verifier = Verifier(
            index_keys([IssuerKey("320000", key.kid, public, 0, None)]),
            revoked,
            synced_at=now,
            policy=Policy(),
            replay=db,
            rules=rules,
        )
        config = GateConfig(
            "bench-gate", "330100-museum", "http://gate.invalid", generate(Alg.EDDSA)
        )
        gate = Gate(config, verifier, db, rules, now)
        admitted = 0

        def check(text: str, gate: Gate = gate) -> None:
            nonlocal admitted
            admitted += gate.check(text, now).admitted

        bare_rate, gate_rate = interleaved(bare, bare_items, check, texts)
        db.close()
        if admitted != len(texts):
            raise SystemExit(f"only {admitted} of {len(texts)} genuine codes admitted")
        suite = "Ed25519" if alg is Alg.EDDSA else "SM2/SM3"
        rows.append(
            {
                "name": f"bare signatures, {suite} issuer + P-256 device",
                "per_second": round(bare_rate, 1),
                "n": len(bare_items),
            }
        )
        rows.append(
            {
                "name": f"gate verification, {suite} issuer + P-256 device",
                "per_second": round(gate_rate, 1),
                "n": len(texts),
                "ratio_to_bare": round(gate_rate / bare_rate, 3),
            }
        )
    return rows


# --- the revocation set ------------------------------------------------------------------------


def revoked_per_day() -> dict[str, float]:
    cards = CARDS * (LOST_OR_REPLACED_PER_YEAR + CANCELLED_PER_YEAR) / 365
    devices = CARDS * PHONE_USERS / PHONE_LIFETIME_DAYS
    return {"cards": cards, "device_changes": devices, "total": cards + devices}


def day_of_deltas(
    scale: float, every_hours: int, keys_out: list[Any]
) -> tuple[int, int, float, float]:
    """A day of a gate syncing every `every_hours` hours, as the code does it: each
    jurisdiction's list evolves hour by hour (the day's revocations arriving evenly, each
    staying 24 hours, when its credential expires), the node makes the delta onto the
    list the gate holds (revdelta.make_delta, what revocations.list_or_delta sends) and
    the gate decodes it, applies it and checks the signature of the list it makes.
    Returns the deltas' bytes in the day, how many there were, the seconds the gate
    spent on them, and the seconds the node spent making them."""
    from tongban.card import revdelta
    from tongban.card.codec import IssuerAlg, RevocationList
    from tongban.card.verifier import kid8
    from tongban.crypto.signing import Alg, generate

    per_hour = revoked_per_day()["total"] * scale / 24
    now = int(time.time())
    total = count = 0
    gate_seconds = node_seconds = 0.0
    for code, share in SHARES.items():
        key = generate(Alg.EDDSA)
        public = key.public()
        keys_out.append(public)
        n = round(per_hour * share)
        # Hour h's additions expire at hour h + 24; the list of hour 0 holds hours -23..0.
        added_at = {h: {secrets.token_bytes(8) for _ in range(n)} for h in range(-23, 25)}

        def signed(
            hour: int, seq: int, code: str = code, key: Any = key, added_at: Any = added_at
        ) -> RevocationList:
            refs = set().union(*(added_at[h] for h in range(hour - 23, hour + 1)))
            unsigned = RevocationList(
                IssuerAlg.ED25519,
                code,
                kid8(key.kid),
                now + hour * 3600,
                now + hour * 3600 + 86400,
                seq,
                tuple(sorted(refs)),
            )
            return replace(unsigned, signature=key.sign(unsigned.signing_input()))

        held = signed(0, 1)
        for hour in range(every_hours, 25, every_hours):
            t0 = time.perf_counter()
            new = signed(hour, hour + 1)
            data = revdelta.make_delta(held, new).to_bytes()
            t1 = time.perf_counter()
            rebuilt = revdelta.decode_delta(data).apply(held)
            if not public.verify(rebuilt.signing_input(), rebuilt.signature):
                raise SystemExit("a delta did not rebuild the signed list")
            frozenset(rebuilt.refs)
            node_seconds += t1 - t0
            gate_seconds += time.perf_counter() - t1
            total += len(data)
            count += 1
            held = rebuilt
    return total, count, gate_seconds, node_seconds


def build_lists(scale: float) -> tuple[dict[str, bytes], dict[str, frozenset[bytes]], Any]:
    """Each jurisdiction's signed list for one day of revocations (x `scale`)."""
    from tongban.card import codec
    from tongban.card.codec import IssuerAlg
    from tongban.card.verifier import IssuerKey, kid8
    from tongban.crypto.signing import Alg, generate

    total = revoked_per_day()["total"] * scale
    now = int(time.time())
    lists: dict[str, bytes] = {}
    sets: dict[str, frozenset[bytes]] = {}
    keys = []
    for code, share in SHARES.items():
        key = generate(Alg.EDDSA)
        keys.append(IssuerKey(code, key.kid, key.public(), 0, None))
        refs = sorted({secrets.token_bytes(8) for _ in range(round(total * share))})
        unsigned = codec.RevocationList(
            IssuerAlg.ED25519, code, kid8(key.kid), now, now + 86400, 1, tuple(refs)
        )
        lst = replace(unsigned, signature=key.sign(unsigned.signing_input()))
        lists[code] = lst.to_bytes()
        sets[code] = frozenset(refs)
    return lists, sets, keys


class _Lists(http.server.BaseHTTPRequestHandler):
    lists: dict[str, bytes] = {}

    def do_GET(self) -> None:
        data = self.lists.get(self.path.rsplit("/", 1)[-1])
        self.send_response(200 if data else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, *args: Any) -> None:
        pass


def sync_time(lists: dict[str, bytes], keys: list[Any]) -> float:
    """Seconds to fetch the lists over loopback HTTP, check their signatures and build
    the gate's lookup sets (as gate.sync and gate.load do)."""
    import httpx

    from tongban.card import codec
    from tongban.card.verifier import index_keys

    _Lists.lists = lists
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Lists)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        index = index_keys(keys)
        start = time.perf_counter()
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}") as client:
            for code in lists:
                data = client.get(f"/api/v1/card/revocations/{code}").content
                lst = codec.decode_revocations(data)
                key = index[(code, lst.kid8)]
                if not key.public.verify(lst.signing_input(), lst.signature):
                    raise SystemExit(f"list of {code} does not verify")
                frozenset(lst.refs)
        return time.perf_counter() - start
    finally:
        server.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer codes, a tenth of the set")
    parser.add_argument("--codes", type=int, default=None)
    parser.add_argument("--pg-url", default=None, help="ignored: the gate needs no database server")
    args = parser.parse_args()
    codes_n = args.codes or (1000 if args.quick else 4000)
    scale = 0.1 if args.quick else 1.0
    cpu = pin_one_core()

    per_day = revoked_per_day()
    lists, sets, keys = build_lists(scale)
    full = sum(len(d) for d in lists.values())
    refs = sum(len(s) for s in sets.values())
    all_refs = [r for s in sets.values() for r in s]
    deltas = {}
    for every in (1, 4, 24):
        # Always at full scale: the Rice coding's bytes per entry depend on how many.
        size, count, gate_s, node_s = day_of_deltas(1.0, every, [])
        deltas[every] = {
            "bytes_per_day_at_full_scale": size,
            "deltas": count,
            "gate_seconds_per_delta": round(gate_s / count, 4),
            "node_seconds_per_delta": round(node_s / count, 4),
        }
    seconds = sync_time(lists, keys)
    del all_refs

    rows = verification_rows(codes_n, sets)
    gate_ed = rows[1]
    report: dict[str, Any] = {
        "benchmark": "card",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "pinned_cpu": cpu},
        "quick": args.quick,
        "results": rows,
        "ratio_gate_to_bare": gate_ed["ratio_to_bare"],
        "ratio_gate_to_bare_sm2": rows[3]["ratio_to_bare"],
        "revocations": {
            "cards": CARDS,
            "assumed": {
                "lost_or_replaced_per_year": LOST_OR_REPLACED_PER_YEAR,
                "cancelled_per_year": CANCELLED_PER_YEAR,
                "phone_users": PHONE_USERS,
                "phone_lifetime_days": PHONE_LIFETIME_DAYS,
            },
            "per_day": {k: round(v) for k, v in per_day.items()},
            "scale": scale,
            "references": refs,
            "full_bytes": full,
            "full_bytes_at_full_scale": round(full / scale),
            "deltas_hourly": deltas[1],
            "deltas_every_4_hours": deltas[4],
            "deltas_daily": deltas[24],
            "hourly_full_lists_bytes_per_day": round(24 * full / scale),
            "sync_seconds": round(seconds, 3),
            "sync_seconds_at_full_scale_estimate": round(seconds / scale, 3),
            "transfer_seconds_at_10_mbit": round(full / scale * 8 / (MBIT * 1e6), 2),
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, ensure_ascii=False, indent=2))

    print(f"card at a gate, one core (cpu {cpu}), {codes_n} distinct codes per suite")
    print(f"{'':<56} {'per second':>12} {'x bare':>8}")
    for row in rows:
        ratio = row.get("ratio_to_bare")
        print(f"{row['name']:<56} {row['per_second']:>12,.0f} {ratio if ratio else '':>8}")
    r = report["revocations"]
    mb = 1e6
    print()
    print(
        f"revocation set, {CARDS / 1e6:.0f} million cards: {per_day['cards']:,.0f} cards "
        f"lost/replaced/cancelled + {per_day['device_changes']:,.0f} device changes a day"
        f" (scale {scale})"
    )
    print(
        f"  full set (shipped format, 8 B/ref, 4 lists):   {r['full_bytes_at_full_scale'] / mb:8.2f} MB   (aim <= 20 MB)"
    )
    for every, label in ((1, "hourly"), (4, "every 4 h"), (24, "daily")):
        d = deltas[every]
        print(
            f"  a day of deltas, syncing {label:<10} (measured): "
            f"{d['bytes_per_day_at_full_scale'] / mb:8.2f} MB   (aim <= 1 MB; {d['deltas']} deltas,"
            f" gate {d['gate_seconds_per_delta'] * 1000:.0f} ms each to decode, apply, verify)"
        )
    print(
        f"  full lists fetched hourly, a day:               {r['hourly_full_lists_bytes_per_day'] / mb:8.2f} MB"
    )
    print(
        f"  sync (loopback fetch + verify + load):          {r['sync_seconds']:8.3f} s   (~{r['sync_seconds_at_full_scale_estimate']:.2f} s at full scale)"
    )
    print(
        f"  transfer at {MBIT} Mbit/s:                           {r['transfer_seconds_at_10_mbit']:8.2f} s"
    )
    print(
        f"ratio gate/bare: {report['ratio_gate_to_bare']} (Ed25519), {report['ratio_gate_to_bare_sm2']} (SM2)  (aim >= 0.5)"
    )
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
