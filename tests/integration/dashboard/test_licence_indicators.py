"""Licence verifications (免提交: `licence_use`, read by time after the settling lag)
folded by the refresh, against an independent DuckDB computation over the same rows
and the cases they were used for; a node counts only the cases it is competent for."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, timedelta
from typing import Any

import duckdb
from sqlalchemy import insert
from sqlalchemy.orm import Session

from integration.dashboard.kit import PLAN, build_cases
from tongban.dashboard import service
from tongban.db import utcnow
from tongban.licences.models import LicenceUse

from builders import make_licence, make_resident


def _cells(session: Session) -> dict[tuple[Any, ...], int]:
    return {
        (k.day, k.from_city, k.to_city, k.jurisdiction, k.category, k.authority, k.matter): v.n
        for k, v in service.local_cells(session).items()
        if k.indicator == "licences.verification"
    }


def test_licence_verifications_equal_a_duckdb_computation(session: Session) -> None:
    cases = build_cases(session, PLAN[:3])
    holder = make_resident(session, city="340100")
    licence = make_licence(session, holder)
    rng = random.Random(18)
    now = utcnow()
    uses = [
        {
            "id": uuid.uuid4(),
            "case_id": rng.choice(cases).id,
            "material_code": "id_card",
            "licence_id": licence.id,
            "identifier": "x",
            "type_code": rng.choice(["resident_id_card", "household_register"]),
            "stage": rng.choice(["submit", "approve"]),
            "result": rng.choice(["valid", "valid", "expired"]),
            "detail": "",
            "verified_at": now - timedelta(hours=rng.randrange(1, 96)),
        }
        for _ in range(30)
    ]
    session.execute(insert(LicenceUse), uses)
    session.flush()
    service.refresh(session, service.owns_for("*"), settle=timedelta(0))

    con = duckdb.connect()
    con.execute("CREATE TABLE u (cid VARCHAR, t VARCHAR, result VARCHAR, ts TIMESTAMP)")
    con.execute("CREATE TABLE c (id VARCHAR, rc VARCHAR, cc VARCHAR, cj VARCHAR, auth VARCHAR)")
    con.executemany(
        "INSERT INTO u VALUES (?, ?, ?, ?)",
        [
            (
                str(u["case_id"]),
                u["type_code"],
                u["result"],
                u["verified_at"].astimezone(UTC).replace(tzinfo=None),
            )
            for u in uses
        ],
    )
    con.executemany(
        "INSERT INTO c VALUES (?, ?, ?, ?, ?)",
        [
            (
                str(c.id),
                c.receiving_city,
                c.competent_city,
                c.competent_jurisdiction,
                c.authority_name,
            )
            for c in cases
        ],
    )
    rows = con.execute(
        """
        SELECT CAST(ts + INTERVAL 8 HOUR AS DATE), rc, cc, cj, result,
               auth, t, count(*)
        FROM u JOIN c ON c.id = u.cid GROUP BY ALL
        """
    ).fetchall()
    expected = {tuple(r[:7]): int(r[7]) for r in rows}
    assert _cells(session) == expected and sum(expected.values()) == 30
    # The cases are 江苏's (苏州): 上海's node counts none of their verifications.
    service.recompute(session, service.owns_for("310000"), settle=timedelta(0))
    assert _cells(session) == {}
