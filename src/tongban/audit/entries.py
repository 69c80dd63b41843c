"""Reading the stored chain in order, in bounded memory. Apart from the service so that
the witness code, which the service calls when it makes a checkpoint, can read the
entries it proves without importing the service back. `tongban.audit.service`
re-exports `iter_entries`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tongban.audit import domain, hook
from tongban.audit.models import AuditEntry

#: Entries fetched a statement (keyset pagination).
BATCH = 2000


def as_entry(row: Any) -> domain.Entry:
    return domain.Entry(
        seq=int(row.seq),
        at=row.at,
        kind=row.kind,
        subject=row.subject,
        actor=row.actor,
        body=row.body,
        alg=row.alg,
        prev_hash=row.prev_hash,
        hash=row.hash,
        typed={c: getattr(row, c) for c in domain.TYPED_COLUMNS}
        if hasattr(row, "subject_id")
        else None,
    )


def iter_entries(
    session: Session, after: int = 0, upto: int | None = None, batch: int = BATCH
) -> Iterator[domain.Entry]:
    """Entries with after < seq <= upto in seq order, fetched `batch` at a time (keyset
    pagination), so a chain of any length streams in bounded memory."""
    hook.settle(session)
    t = AuditEntry.__table__
    last = after
    while True:
        q = select(t).where(t.c.seq > last).order_by(t.c.seq).limit(batch)
        if upto is not None:
            q = q.where(t.c.seq <= upto)
        rows = session.execute(q).all()
        for row in rows:
            yield as_entry(row)
        if len(rows) < batch:
            return
        last = int(rows[-1].seq)
