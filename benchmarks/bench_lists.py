"""Lists at scale (issue 14, "lists stay fast at scale"): the latency of every list API
and page over HTTP, against a `tongban serve` on 127.0.0.1, with 100,000 work orders and
1,000,000 cases, settlements and audit entries on PostgreSQL — beside the bare SQL of
the same page, in the same run.

1. Seeding (timed separately): a fresh database is migrated and loaded with the
   reference data (regions, catalogue, medical policies); a few accounts and
   institutions are made through the services; then the rows are written with COPY
   (work orders over the 41 cities, cases over every authority, settlements over 40
   hospitals of 上海 and 苏州, audit entries over the kinds the audit page names), and
   the tables ANALYZEd.
2. Lists: one client sends, for each list, a bounded number of GET requests after a
   warm-up: the first page, a page deep in the list (the cursor of page 20, or Open311
   `page=20`), and the filters staff use. Each reports p50/p95 over HTTP.
3. Reference: the same page's SELECT (the list module's own statement, order and
   limit), executed on a SQLAlchemy Core connection in this process — what the database
   and the driver cost without the framework, the access check and the serialisation.

Usage (`make bench` passes --pg-url of a throwaway server):
    python benchmarks/bench_lists.py --pg-url postgresql+psycopg://user@127.0.0.1:5432/postgres
    python benchmarks/bench_lists.py --pg-url … --quick    # 10,000 / 100,000 rows
Writes var/bench/lists.json. Everything stays on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from tongban.devserver import pg_database

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tickets import percentile, server  # noqa: E402  (one server, one percentile)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "lists.json"
REQUEST_TIMEOUT = 60.0
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: p95 the issue aims at, per list.
AIM_MS = 100.0


def _id_number(body: str = "34010419900307123") -> str:
    """A GB 11643 ID number (the check digit computed)."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


ID_NUMBER = _id_number()


# --- seeding ---------------------------------------------------------------------------


def _placeholders(conn: Any, table: str) -> dict[str, Any]:
    """A value for every NOT NULL column without a server default (what the ORM would
    have filled in), by type; the seeders override the meaningful ones."""
    rows = conn.exec_driver_sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = %(t)s AND is_nullable = 'NO' AND column_default IS NULL",
        {"t": table},
    ).all()
    by_type = {
        "integer": 0, "bigint": 0, "smallint": 0, "boolean": False, "json": "{}",
        "jsonb": "{}", "double precision": 0.0, "numeric": 0,
    }  # fmt: skip
    out: dict[str, Any] = {}
    for name, kind in rows:
        if kind in by_type:
            out[name] = by_type[kind]
        elif kind.startswith("timestamp"):
            out[name] = datetime.now(UTC)
        elif kind == "date":
            out[name] = date.today()
        elif kind == "uuid":
            out[name] = None  # always given
        else:
            out[name] = ""
    return out


def copy_rows(engine: Any, table: str, rows: Iterator[dict[str, Any]]) -> int:
    """COPY `rows` (dicts; placeholders fill the other NOT NULL columns) into `table`,
    its secondary indexes and constraints dropped for the load and rebuilt once after
    (`_bulk.unindexed`: a pass over the table each, not an index update per row)."""
    from _bulk import unindexed

    with engine.connect() as conn:
        fill = _placeholders(conn, table)
        raw = conn.connection.driver_connection
        first = next(rows)
        columns = list(dict.fromkeys([*fill, *first]))
        n = 0
        with unindexed(conn.execute, table), raw.cursor() as cur:
            quoted = ", ".join(f'"{c}"' for c in columns)
            with cur.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as cp:
                for row in _chain(first, rows):
                    cp.write_row([row.get(c, fill.get(c)) for c in columns])
                    n += 1
        conn.commit()
    # As a database in service would be: vacuumed (visibility map, no autovacuum racing
    # the measurement) and analysed.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'VACUUM (ANALYZE) "{table}"')
    return n


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def setup(url: str) -> dict[str, Any]:
    """Reference data, accounts (with API tokens) and institutions, through the services."""
    from sqlalchemy import select

    from tongban.catalog import service as catalog
    from tongban.catalog.models import Matter
    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory
    from tongban.identity import service as identity
    from tongban.medical import service as medical
    from tongban.medical.models import Visit
    from tongban.migrate import upgrade
    from tongban.regions import service as regions
    from tongban.regions.models import Authority, City

    upgrade(url)
    engine = make_engine(url)
    node = build_node(Settings(database_url=url), session_factory(engine))
    out: dict[str, Any] = {}
    with node.transaction() as s:
        regions.load_reference_data(s)
        catalog.load_catalogue(s)
        medical.load_reference(s)
        cities = {c.code: c.jurisdiction_code for c in s.scalars(select(City))}
        authorities = [
            (a.id, a.name, a.jurisdiction_code, a.city_code, a.type)
            for a in s.scalars(select(Authority))
        ]
        matters = [(m.code, m.name) for m in s.scalars(select(Matter))]
        queue = regions.authority_by_code(s, "320500-housing_fund")
        medical_agency = s.scalar(
            select(Authority).where(
                Authority.type == "medical_insurance", Authority.jurisdiction_code == "310000"
            )
        )
        assert medical_agency is not None

        def account(role: str, name: str, **kw: Any) -> Any:
            return identity.create_account(
                s, username=name, password=secrets.token_urlsafe(12) + "-9a", role=role,
                display_name=name, **kw,
            )  # fmt: skip

        people = {
            "dispatcher": account("dispatcher", "b_dispatcher", jurisdiction_code="320000",
                                  city_code="320500"),
            "admin": account("admin", "b_admin"),
            "resident": account("resident", "b_resident", jurisdiction_code="340000",
                                city_code="340100", id_number=ID_NUMBER,
                                assurance_level="window_verified"),
            "officer": account("officer", "b_officer", jurisdiction_code="320000",
                               city_code="320500", authority_id=queue.id, duty="reviewer"),
            "supervisor": account("supervisor", "b_supervisor", jurisdiction_code="320000"),
            "clerk": account("clerk", "b_clerk", jurisdiction_code="320000", city_code="320500"),
            "agency": account("officer", "b_agency", jurisdiction_code="310000",
                              authority_id=medical_agency.id, duty="reviewer"),
        }  # fmt: skip
        institutions = []
        for i in range(40):
            city = "310000" if i < 20 else "320500"
            inst = medical.create_institution(
                s, code=f"HB{city}{i:04d}", name=f"基准医院{i}", city_code=city, level=3
            )
            visit = Visit(
                institution_id=inst.id, id_number=ID_NUMBER, insured_name="基准",
                insured_jurisdiction="340000", insured_city="340100", scheme="employee",
                visit_no=f"BV{i}",
            )  # fmt: skip
            s.add(visit)
            s.flush()
            institutions.append((inst.id, inst.code, inst.jurisdiction_code, city, visit.id))
        people["hospital"] = account("hospital", "b_hospital", jurisdiction_code="310000",
                                     city_code="310000")  # fmt: skip
        medical.assign_staff(s, people["hospital"], s.get(type(inst), institutions[0][0]))
        s.flush()
        out["tokens"] = {k: identity.issue_token(s, a)[0] for k, a in people.items()}
        out["ids"] = {k: a.id for k, a in people.items()}
    engine.dispose()
    out.update(cities=cities, authorities=authorities, matters=matters,
               institutions=institutions, queue_authority=queue.id)  # fmt: skip
    return out


def seed(url: str, ctx: dict[str, Any], work_orders: int, rows: int) -> dict[str, float]:
    from sqlalchemy import text

    from tongban.audit.views_reading import KIND_LABELS
    from tongban.cases.domain import CaseState
    from tongban.db import make_engine
    from tongban.tickets.domain import TicketState

    engine = make_engine(url)
    rng = random.Random(14)
    now = datetime.now(UTC)
    cities = sorted(ctx["cities"])
    city_authority: dict[str, tuple[Any, str]] = {}
    for a_id, name, _, city, kind in ctx["authorities"]:
        if city and (city not in city_authority or kind == "government_service"):
            city_authority[city] = (a_id, name)
    timings: dict[str, float] = {}

    def timed(name: str, n_rows: Callable[[], int]) -> None:
        t0 = time.perf_counter()
        n = n_rows()
        timings[name] = time.perf_counter() - t0
        print(f"  seeded {n:>9,} {name:<14} in {timings[name]:6.1f} s", flush=True)

    resident = ctx["ids"]["resident"]
    t_states = [s.value for s in TicketState]

    def tickets() -> Iterator[dict[str, Any]]:
        for i in range(work_orders):
            city = cities[i % len(cities)]
            a_id, a_name = city_authority.get(city, (None, ""))
            created = now - timedelta(seconds=rng.uniform(0, 180 * 86400))
            yield {
                "id": uuid.uuid4(), "number": f"GD{city}B{i:09d}", "channel": "web",
                "category_code": rng.choice(["road_damage", "street_light", "food_safety",
                                             "water_pollution", "noise"]),
                "urgency": "complaint", "description": f"基准测试工单 {i}",
                "address": f"测试地址 {i} 号", "jurisdiction_code": ctx["cities"][city],
                "city_code": city, "district_code": None, "authority_id": a_id,
                "authority_name": a_name, "routing_note": "", "joint": False,
                "state": rng.choice(t_states), "reporter_id": resident if i % 500 == 0 else None,
                "created_at": created, "updated_at": created,
                "due_at": created + timedelta(days=13) if i % 10 else None,
                "deadline_flag": rng.choices(["ok", "approaching", "overdue"], [8, 1, 1])[0],
                "deadline_rule": "13 个工作日", "allotted_minutes": 13 * 480,
            }  # fmt: skip

    c_states = [s.value for s in CaseState if s.value in {
        "submitted", "accepted", "under_review", "approved", "denied", "result_issued",
        "delivered", "rated", "refused", "correction_requested"}]  # fmt: skip
    names = ["王芳", "李强", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄敏"]
    authorities = ctx["authorities"]
    queue = ctx["queue_authority"]

    def cases() -> Iterator[dict[str, Any]]:
        for i in range(rows):
            a_id, a_name, j, a_city, _ = (
                next(a for a in authorities if a[0] == queue)
                if i % 100 == 0
                else authorities[i % len(authorities)]
            )
            submitted = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
            state = rng.choice(c_states)
            window = i % 20 == 0
            yield {
                "id": uuid.uuid4(), "number": f"B{i:012d}", "matter_code": ctx["matters"][i % len(ctx["matters"])][0],
                "matter_name": ctx["matters"][i % len(ctx["matters"])][1],
                "applicant_id": resident if i % 5000 == 0 else None,
                "applicant_type": "resident", "applicant_name": rng.choice(names),
                "applicant_identifier": f"{rng.randrange(10**17, 10**18)}",
                "channel": "window" if window else "online", "mode": "proxy" if window else "online",
                "receiving_jurisdiction": "320000" if window else j,
                "receiving_city": "320500" if window else (a_city or "320500"),
                "competent_jurisdiction": j, "competent_city": a_city, "authority_id": a_id,
                "authority_name": a_name, "state": state, "handoff": "delivered",
                "form_data": "{}", "time_limit_days": 20, "submitted_at": submitted,
                "deadline": (submitted + timedelta(days=28)).date() if state != "submitted" else None,
                "deadline_flag": rng.choices(["ok", "approaching", "overdue"], [8, 1, 1])[0],
                "updated_at": submitted, "version": 1,
            }  # fmt: skip

    insts = ctx["institutions"]
    provinces = ["310000", "320000", "330000", "340000"]
    insured_city = {"310000": "310000", "320000": "320500", "330000": "330100", "340000": "340100"}

    def settlements() -> Iterator[dict[str, Any]]:
        for i in range(rows):
            inst_id, _, j, city, visit = insts[i % len(insts)]
            at = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
            day = at.astimezone(SHANGHAI).date()
            reversed_ = i % 33 == 0
            province = rng.choice(provinces)
            total = rng.randrange(1_000, 500_000)
            fund = total // 2
            yield {
                "id": uuid.uuid4(), "institution_id": inst_id, "txn_id": f"BT{i:012d}",
                "request_hash": "0" * 64, "visit_id": visit, "id_number": ID_NUMBER,
                "insured_name": "基准", "scheme": "employee", "level": 3,
                "insured_jurisdiction": province, "insured_city": insured_city[province],
                "treatment_jurisdiction": j, "treatment_city": city, "insured_ack": "confirmed",
                "year": day.year, "settled_day": day, "period": f"{day:%Y-%m}", "total": total,
                "class_a": total, "class_b": 0, "class_c": 0, "eligible": total,
                "deductible_part": 0, "fund": fund, "account": total - fund, "cash": 0,
                "status": "reversed" if reversed_ else "settled", "settled_at": at,
                "reversal_period": f"{day:%Y-%m}" if reversed_ else None,
                "reversed_at": at + timedelta(hours=1) if reversed_ else None, "version": 1,
            }  # fmt: skip

    with engine.connect() as conn:
        head = conn.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar() or 0
    kinds = sorted(KIND_LABELS)
    actors = ["system"] * 6 + [f"account:{i}" for i in ctx["ids"].values()]
    start = now - timedelta(days=365)

    def audit() -> Iterator[dict[str, Any]]:
        step = 365 * 86400 / max(rows, 1)
        for i in range(rows):
            yield {
                "seq": head + 1 + i, "at": start + timedelta(seconds=i * step),
                "kind": kinds[i % len(kinds)], "subject": f"case:{uuid.uuid4()}",
                "actor": rng.choice(actors),
                "body": json.dumps(
                    {"action": "accept", "competent_jurisdiction": rng.choice(provinces)},
                    separators=(",", ":"),
                ),
                "alg": "sha256", "prev_hash": "0" * 64, "hash": secrets.token_hex(32),
            }  # fmt: skip

    timed("work orders", lambda: copy_rows(engine, "ticket", tickets()))
    timed("cases", lambda: copy_rows(engine, "service_case", cases()))
    timed("settlements", lambda: copy_rows(engine, "med_settlement", settlements()))
    timed("audit entries", lambda: copy_rows(engine, "audit_entry", audit()))
    with engine.begin() as conn:  # the chain's head moves past the seeded entries
        conn.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
            {"s": head + rows, "h": secrets.token_hex(32)},
        )
    timed("audit counts", lambda: _refresh_counts(engine))
    engine.dispose()
    return timings


def _refresh_counts(engine: Any) -> int:
    """What the audit job does every minute: count the new entries into the snapshot
    the audit page adds the rest to (audit.service.refresh_counts)."""
    from sqlalchemy.orm import Session

    from tongban.audit import service as audit_service

    with Session(engine) as session:
        n = audit_service.refresh_counts(session)
        session.commit()
    return n


# --- measuring -------------------------------------------------------------------------


def deep_cursor(client: httpx.Client, path: str, pages: int) -> str:
    """The URL of page `pages` + 1 of an API list, followed by its Link headers."""
    url = path
    for _ in range(pages):
        link = client.get(url).headers.get("link")
        if not link:
            break
        url = link[1 : link.index(">")]
    return url


def timed_rounds(
    clients: dict[str, httpx.Client], plan: list[tuple[str, str, str]], n: int, rounds: int
) -> dict[str, dict[str, Any]]:
    """`n` timed GETs of each list, in `rounds` turns (each turn asks every list in order,
    the order reversed every other turn), so that the machine's load changing during the
    run falls on every list alike."""
    times: dict[str, list[float]] = {name: [] for name, _, _ in plan}
    sizes: dict[str, list[int]] = {name: [] for name, _, _ in plan}
    for _name, role, path in plan:  # warm-up
        for _ in range(3):
            clients[role].get(path).raise_for_status()
    per_round = max(1, n // rounds)
    for r in range(rounds):
        for name, role, path in plan if r % 2 == 0 else list(reversed(plan)):
            for _ in range(per_round):
                t0 = time.perf_counter()
                resp = clients[role].get(path)
                times[name].append((time.perf_counter() - t0) * 1000)
                resp.raise_for_status()
                is_json = resp.headers.get("content-type", "").startswith("application/json")
                sizes[name].append(len(resp.json()) if is_json else resp.text.count("<tr") - 1)
    return {
        name: {
            "requests": len(times[name]),
            "p50_ms": percentile(times[name], 0.50),
            "p95_ms": percentile(times[name], 0.95),
            "mean_ms": statistics.fmean(times[name]),
            "rows": round(statistics.fmean(sizes[name])),
        }
        for name, _, _ in plan
    }


def reference_sql(url: str, ctx: dict[str, Any], n: int) -> dict[str, dict[str, Any]]:
    """The first page's SELECT of each list module, on a Core connection: p50/p95 ms."""
    from tongban.cases import lists as case_lists
    from tongban.config import Settings
    from tongban.contexts import build_node
    from tongban.db import make_engine, session_factory
    from tongban.identity.models import Account
    from tongban.kernel import paging
    from tongban.medical import settlement_lists
    from tongban.tickets.service import lists as ticket_lists
    from tongban.tickets.service import open311

    engine = make_engine(url)
    node = build_node(Settings(database_url=url), session_factory(engine))
    out: dict[str, dict[str, Any]] = {}
    with node.session_factory() as s:
        who = {k: s.get(Account, v) for k, v in ctx["ids"].items()}

        first = paging.PageRequest()

        def ticket_stmt(actor: Account, **f: Any) -> Any:
            stmt = ticket_lists.statement(actor, ticket_lists.Filters(**f))
            return paging.page_query(stmt, ticket_lists.order_for(actor), first)

        def case_stmt(actor: Account, **f: Any) -> Any:
            stmt = case_lists.statement(actor, case_lists.Filters(**f))
            return paging.page_query(stmt, case_lists.order_for(actor), first)

        def settlement_stmt(actor: Account, **f: Any) -> Any:
            stmt = settlement_lists.statement(s, actor, settlement_lists.Filters(**f))
            return paging.page_query(stmt, settlement_lists.NEWEST, first)

        from sqlalchemy import select

        from tongban.tickets.models import WorkOrder

        o311 = (
            select(*open311._COLUMNS)
            .where(WorkOrder.city_code == "320500")
            .where(WorkOrder.created_at >= datetime.now(UTC) - open311.DEFAULT_WINDOW)
            .order_by(*open311._NEWEST)
            .limit(open311.PAGE_SIZE)
        )
        statements = {
            "work orders: dispatcher": ticket_stmt(who["dispatcher"]),
            "work orders: admin (all)": ticket_stmt(who["admin"]),
            "open311 requests.json": o311,
            "cases: officer queue": case_stmt(who["officer"]),
            "cases: supervisor": case_stmt(who["supervisor"]),
            "cases: my cases": case_stmt(who["resident"]),
            "settlements: hospital": settlement_stmt(who["hospital"]),
            "settlements: agency": settlement_stmt(who["agency"]),
        }
        audit = _audit_reference(s)
    with engine.connect() as conn:
        for name, stmt in [*statements.items(), ("audit entries: admin", audit)]:
            for _ in range(3):
                conn.execute(stmt).all()
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                conn.execute(stmt).all()
                times.append((time.perf_counter() - t0) * 1000)
            out[name] = {"p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95)}
    engine.dispose()
    return out


def _audit_reference(session: Any) -> Any:
    from sqlalchemy import select

    from tongban.audit.models import AuditEntry

    t = AuditEntry.__table__
    return select(t).order_by(t.c.seq.desc()).limit(51)


def measure(base: str, ctx: dict[str, Any], n: int, rounds: int) -> dict[str, dict[str, Any]]:
    tok = ctx["tokens"]

    def as_(role: str) -> httpx.Client:
        return httpx.Client(
            base_url=base,
            timeout=REQUEST_TIMEOUT,
            headers={"Authorization": f"Bearer {tok[role]}"},
        )

    today = datetime.now(SHANGHAI).date()
    month_ago = (today - timedelta(days=30)).isoformat()
    plan: list[tuple[str, str, str]] = [
        ("work orders: dispatcher", "dispatcher", "/api/v1/tickets"),
        ("work orders: dispatcher, page 21", "dispatcher", "deep:/api/v1/tickets"),
        ("work orders: dispatcher, overdue", "dispatcher", "/api/v1/tickets?deadline_flag=overdue"),
        ("work orders: admin (all)", "admin", "/api/v1/tickets"),
        ("work orders: admin, page 21", "admin", "deep:/api/v1/tickets"),
        ("work orders: admin, category+district", "admin",
         "/api/v1/tickets?category=road_damage&state=dispatched"),
        ("work orders: page /tickets (dispatcher)", "dispatcher", "/tickets"),
        ("open311 requests.json", "admin", "/open311/v2/requests.json?jurisdiction_id=320500"),
        ("open311 requests.json page 20", "admin",
         "/open311/v2/requests.json?jurisdiction_id=320500&page=20"),
        ("cases: officer queue", "officer", "/api/v1/cases"),
        ("cases: officer queue, page 21", "officer", "deep:/api/v1/cases"),
        ("cases: supervisor", "supervisor", "/api/v1/cases"),
        ("cases: supervisor, page 21", "supervisor", "deep:/api/v1/cases"),
        ("cases: supervisor, state+dates", "supervisor",
         f"/api/v1/cases?state=accepted&since={month_ago}&until={today}"),
        ("cases: supervisor, name search", "supervisor", f"/api/v1/cases?q={quote('王芳')}"),
        ("cases: window (clerk)", "clerk", "/api/v1/cases"),
        ("cases: my cases", "resident", "/api/v1/cases"),
        ("cases: page /workbench (officer)", "officer", "/workbench"),
        ("settlements: hospital", "hospital", "/api/v1/medical/settlements"),
        ("settlements: hospital, page 21", "hospital", "deep:/api/v1/medical/settlements"),
        ("settlements: agency", "agency", "/api/v1/medical/settlements"),
        ("settlements: agency, reversed", "agency", "/api/v1/medical/settlements?state=reversed"),
        ("settlements: page (hospital)", "hospital", "/medical/settlements"),
        ("audit entries: page /audit (admin)", "admin", "/audit"),
        ("audit entries: page /audit (supervisor)", "supervisor", "/audit"),
        ("audit entries: page, kind filter", "admin", "/audit?kind=licence.event"),
    ]  # fmt: skip
    clients = {role: as_(role) for role in {role for _, role, _ in plan}}
    try:
        resolved = [
            (name, role, deep_cursor(clients[role], path[5:], 20) if path.startswith("deep:")
             else path)
            for name, role, path in plan
        ]  # fmt: skip
        results = timed_rounds(clients, resolved, n, rounds)
    finally:
        for c in clients.values():
            c.close()
    for name, r in results.items():
        print(f"  {name:<44} p50 {r['p50_ms']:7.1f}  p95 {r['p95_ms']:7.1f} ms  rows {r['rows']}")
    return results


def print_table(
    lists: dict[str, dict[str, Any]], reference: dict[str, dict[str, Any]], load: Any
) -> None:
    """One table: per list p50/p95 over HTTP, whether p95 meets the aim, and the first
    page's SELECT alone where the list has one."""
    print(f"\nlists against the aim (p95 < {AIM_MS:.0f} ms), load average {load[0]:.1f}:")
    head = (
        f"  {'list':<44} {'p50 ms':>8} {'p95 ms':>8}  {'aim < 100 ms':<12} {'SQL p50/p95 ms':>15}"
    )
    print(head)
    print("  " + "-" * (len(head) - 2))
    for name, r in lists.items():
        met = "met" if r["p95_ms"] < AIM_MS else "not met"
        ref = reference.get(name)
        sql = f"{ref['p50_ms']:.2f} / {ref['p95_ms']:.2f}" if ref else ""
        print(f"  {name:<44} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f}  {met:<12} {sql:>15}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg-url", required=True, help="PostgreSQL server URL (a database is created)")
    p.add_argument("--quick", action="store_true", help="10,000 work orders, 100,000 rows")
    p.add_argument("--work-orders", type=int)
    p.add_argument("--rows", type=int, help="cases, settlements and audit entries each")
    p.add_argument("--requests", type=int, default=60, help="measured requests per list")
    p.add_argument("--rounds", type=int, default=4, help="turns the requests are split into")
    args = p.parse_args()
    work_orders = args.work_orders or (10_000 if args.quick else 100_000)
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    with pg_database(args.pg_url, "bench_lists") as url, tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ctx = setup(url)
        print(f"seeding {work_orders:,} work orders and {rows:,} cases, settlements, audit "
              "entries (COPY)", flush=True)  # fmt: skip
        timings = seed(url, ctx, work_orders, rows)
        seeded = time.perf_counter() - t0
        print(f"seeded in {seeded:.1f} s (incl. migration and reference data)\n", flush=True)
        with server(url, Path(tmp)) as base:
            print("over HTTP (tongban serve, one client, sequential, in turns):")
            lists = measure(base, ctx, args.requests, args.rounds)
        print("\nreference: the same first page's SELECT on a Core connection:")
        reference = reference_sql(url, ctx, args.requests)
        for name, r in reference.items():
            print(f"  {name:<44} p50 {r['p50_ms']:7.2f}  p95 {r['p95_ms']:7.2f} ms")
    load = os.getloadavg()
    print_table(lists, reference, load)
    worst = max((r["p95_ms"] for r in lists.values() if "p95_ms" in r), default=None)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_1_5_15": [round(x, 2) for x in load]},
        "work_orders": work_orders,
        "rows": rows,
        "seeding_seconds": {**timings, "total": seeded},
        "lists": lists,
        "reference_sql": reference,
        "aim_p95_ms": AIM_MS,
        "worst_p95_ms": worst,
        "ratio_worst_p95_to_aim": worst / AIM_MS if worst else None,
        "over_aim": sorted(k for k, r in lists.items() if r.get("p95_ms", 0) > AIM_MS),
    }  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str), "utf-8")
    print(f"\nworst p95 {worst:.1f} ms (aim {AIM_MS:.0f} ms); over the aim: "
          f"{', '.join(result['over_aim']) or 'none'}; load {load[0]:.1f}")  # fmt: skip
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
