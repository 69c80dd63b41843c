"""Evidence decisions (from the audit chain) and card uses (read by time after the
settling lag) folded by the refresh, against a plain DuckDB count of the same rows; a
card use counts on the node of the gate's city only, and only once."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, timedelta

import duckdb
from sqlalchemy import insert
from sqlalchemy.orm import Session

from tongban.card.models import CardUse
from tongban.dashboard import service
from tongban.db import utcnow
from tongban.evidence.models import DataAccess


def _cells(session: Session, indicator: str) -> dict[tuple[object, ...], int]:
    return {
        (k.day, k.to_city, k.jurisdiction, k.category, k.authority, k.matter): v.n
        for k, v in service.local_cells(session).items()
        if k.indicator == indicator
    }


def test_evidence_decisions_and_card_uses_equal_a_duckdb_count(session: Session) -> None:
    rng = random.Random(18)
    now = utcnow()
    accesses = []
    for i in range(40):
        accesses.append(
            DataAccess(
                request_id=uuid.uuid4(),
                subject_identifier="0" * 18,
                subject_name="某某",
                requester_authority_code=rng.choice(["320500-housing_fund", "310000-health"]),
                requester_authority_name="某局",
                requester_jurisdiction="320000",
                officer_name="某某",
                case_number=f"{i:020d}",
                matter_name="某事项",
                kind=rng.choice(["hukou", "social_insurance"]),
                purpose="case",
                provider_jurisdiction=rng.choice(["310000", "340000"]),
                outcome=rng.choice(["answered", "refused"]),
                requested_at=now,
                at=now - timedelta(hours=rng.randrange(0, 72)),
                source=rng.choice(["provider", "provider", "notice"]),
            )
        )
    session.add_all(accesses)
    uses = [
        {
            "id": uuid.uuid4(),
            "gate_id": "g1",
            "venue_code": "v1",
            "venue_name": "场馆",
            "venue_city": rng.choice(["330100", "320500", "310000"]),
            "card_jurisdiction": rng.choice(["310000", "320000"]),
            "used_at": now - timedelta(hours=rng.randrange(1, 72)),
            "admitted": rng.random() < 0.8,
            "reason": None,
            "received_at": now - timedelta(minutes=rng.randrange(0, 20)),
        }
        for _ in range(60)
    ]
    for u in uses:
        if not u["admitted"]:
            u["reason"] = rng.choice(["expired", "revoked"])
    session.execute(insert(CardUse), uses)
    session.flush()

    # 江苏 and 浙江's node: evidence it provides (none: 上海/安徽 provide) and card uses at
    # its gates (杭州, 苏州) that are more than 10 minutes old.
    service.refresh(session, service.owns_for("320000,330000"), settle=timedelta(minutes=10))
    assert _cells(session, "evidence.access") == {}
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE u (city VARCHAR, admitted BOOLEAN, reason VARCHAR, used TIMESTAMP,"
        " received TIMESTAMP, cj VARCHAR)"
    )
    con.executemany(
        "INSERT INTO u VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                u["venue_city"],
                u["admitted"],
                u["reason"],
                u["used_at"].astimezone(UTC).replace(tzinfo=None),
                u["received_at"].astimezone(UTC).replace(tzinfo=None),
                u["card_jurisdiction"],
            )
            for u in uses
        ],
    )
    cutoff = (now - timedelta(minutes=10)).astimezone(UTC).replace(tzinfo=None)
    rows = con.execute(
        """
        SELECT CAST(used + INTERVAL 8 HOUR AS DATE), city,
               CASE WHEN city = '310000' THEN '310000' ELSE substr(city, 1, 2) || '0000' END,
               CASE WHEN admitted THEN 'admitted' ELSE reason END, '', cj, count(*)
        FROM u WHERE city IN ('330100', '320500') AND received <= ? GROUP BY ALL
        """,
        [cutoff],
    ).fetchall()
    expected = {tuple(r[:6]): r[6] for r in rows}
    assert _cells(session, "card.use") == expected and expected

    # A later refresh folds the rest, once; the whole federation's node (serving every
    # jurisdiction) counts every provider decision once (notices are copies).
    service.refresh(session, service.owns_for("320000,330000"), settle=timedelta(0))
    later = sum(_cells(session, "card.use").values())
    assert later == sum(1 for u in uses if u["venue_city"] != "310000")
    service.refresh(session, service.owns_for("320000,330000"), settle=timedelta(0))
    assert sum(_cells(session, "card.use").values()) == later

    service.recompute(session, service.owns_for("*"), settle=timedelta(0))
    con.execute(
        "CREATE TABLE a (ts TIMESTAMP, provider VARCHAR, outcome VARCHAR, auth VARCHAR,"
        " kind VARCHAR, source VARCHAR)"
    )
    con.executemany(
        "INSERT INTO a VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                a.at.astimezone(UTC).replace(tzinfo=None),
                a.provider_jurisdiction,
                a.outcome,
                a.requester_authority_code,
                a.kind,
                a.source,
            )
            for a in accesses
        ],
    )
    rows = con.execute(
        """
        SELECT CAST(ts + INTERVAL 8 HOUR AS DATE), '', provider, outcome, auth, kind, count(*)
        FROM a WHERE source = 'provider' GROUP BY ALL
        """
    ).fetchall()
    assert _cells(session, "evidence.access") == {tuple(r[:6]): r[6] for r in rows}
