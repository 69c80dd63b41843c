"""The chain's typed columns (migration 0058: action, to_state, occurred_at, subject_id)
are written with every entry, whichever way it is chained, and are exactly what
`domain.typed_fields` derives from the entry's hashed subject and body; the entries
chained before the migration are filled by it. The chain's hashes do not cover them;
verification checks them against what the hashes cover."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tongban.audit import hook, service
from tongban.audit.domain import canonical_json, typed_fields
from tongban.audit.models import AuditEntry
from tongban.db import make_engine
from tongban.migrate import upgrade

TYPED = ("action", "to_state", "occurred_at", "subject_id")
AT = datetime(2026, 3, 1, 17, 30, 0, 123456, tzinfo=UTC)
BODIES = [
    {"action": "approve", "to_state": "approved", "at": AT},
    {"action": "x" * 41, "to_state": 7, "at": "2026-13-45T00:00:00Z"},
    {"at": "2026-03-02T01:30:00+08:00"},
    {},
]


def _typed(row: AuditEntry) -> dict[str, object]:
    return {c: getattr(row, c) for c in TYPED}


def _entries_after(session: Session, seq: int) -> list[AuditEntry]:
    session.expire_all()
    return list(session.scalars(select(AuditEntry).where(AuditEntry.seq > seq)))


def test_appended_and_staged_entries_carry_their_typed_columns(session: Session) -> None:
    start = int(session.scalar(select(func.coalesce(func.max(AuditEntry.seq), 0))) or 0)
    alg = hook.hash_alg(session)
    subjects = [f"case:{uuid.uuid4()}", "case:" + "-" * 36, f"ticket:{uuid.uuid4()}", "system"]
    for subject, body in zip(subjects, BODIES, strict=True):
        hook.append(session.connection(), "case.event", subject, "system", body, alg=alg)
    for subject, body in zip(subjects, BODIES, strict=True):  # staged, then chained
        hook.stage(session, "case.event", subject, "system", body, alg=alg)
    hook.sequence(session)
    rows = _entries_after(session, start)
    assert len(rows) == 2 * len(BODIES)
    for row in rows:
        assert _typed(row) == typed_fields(row.subject, row.body)
    first = rows[0]
    assert (first.action, first.to_state, first.occurred_at) == ("approve", "approved", AT)
    assert first.subject_id == uuid.UUID(subjects[0].split(":")[1])
    assert rows[2].occurred_at == datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
    assert _typed(rows[1]) == dict.fromkeys(TYPED)  # no canonical subject, no usable field
    assert service.verify(session).ok


@pytest.mark.parametrize(
    "change",
    [{"action": "deny"}, {"subject_id": None}, {"occurred_at": AT.replace(year=2025)}],
    ids=["action", "subject_id", "occurred_at"],
)
def test_a_changed_typed_column_is_found_as_an_altered_entry(
    session: Session, change: dict[str, object]
) -> None:
    """The typed columns are not hashed (the chain's format is unchanged), but they are
    what the dashboard counts: a column changed in the table makes verification fail at
    that entry, while its hash still matches its content."""
    alg = hook.hash_alg(session)
    entry = hook.append(
        session.connection(), "case.event", f"case:{uuid.uuid4()}", "system", BODIES[0], alg=alg
    )
    assert service.verify(session).ok
    session.execute(
        AuditEntry.__table__.update().where(AuditEntry.seq == entry.seq).values(**change)
    )
    report = service.verify(session)
    assert report.finding is not None
    assert (report.finding.problem, report.finding.seq) == ("altered", entry.seq)
    assert "typed columns" in report.finding.detail


def _migrated_to_0057() -> list[tuple[str, str]]:
    """Targets: SQLite always, PostgreSQL when the test server is set."""
    return [("sqlite", "")] + (
        [("postgresql", os.environ["TONGBAN_TEST_PG_URL"])]
        if os.environ.get("TONGBAN_TEST_PG_URL")
        else []
    )


@pytest.mark.parametrize("dialect,pg_url", _migrated_to_0057(), ids=lambda v: str(v)[:10])
def test_the_migration_fills_the_entries_chained_before_it(tmp_path, dialect, pg_url) -> None:
    if dialect == "sqlite":
        url, name = f"sqlite:///{tmp_path / 'typed.db'}", ""
    else:
        name = f"tongban_typed_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(
            make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url, "0057")
        engine = make_engine(url)
        subjects = [f"case:{uuid.uuid4()}", "case:" + "0" * 36, f"ticket:{uuid.uuid4()}", "x"]
        bodies = [canonical_json(b) for b in BODIES] + ["not json"]
        subjects.append("case:" + str(uuid.uuid4()).upper())
        rows = [
            {
                "seq": i + 1,
                "at": "2026-03-01 00:00:00" if dialect == "sqlite" else AT,
                "kind": "case.event",
                "subject": s,
                "actor": "system",
                "body": b,
                "alg": "sha-256",
                "prev_hash": "0" * 64,
                "hash": f"{i:064x}",
            }
            for i, (s, b) in enumerate(zip(subjects, bodies, strict=True))
        ]
        cols = ", ".join(rows[0])
        with engine.begin() as c:
            c.execute(
                text(
                    f"INSERT INTO audit_entry ({cols}) VALUES ({', '.join(':' + k for k in rows[0])})"
                ),
                rows,
            )
        engine.dispose()
        upgrade(url)
        engine = make_engine(url)
        with Session(engine) as s:
            got = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
            assert len(got) == len(rows)
            for row in got:
                assert _typed(row) == typed_fields(row.subject, row.body)
            assert got[0].action == "approve" and got[0].occurred_at == AT
            assert got[-1].subject_id is not None and got[3].subject_id is None
        engine.dispose()
    finally:
        if name:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
