"""Audit as a property of the write path.

Importing this module (tongban.db does, so every process that maps a table has it)
installs one mapper-level ``after_insert`` listener for all mapped classes. When a row
of a class that declares ``__audit_kind__`` is INSERTed by a flush, the listener appends
an entry to the chain on the flush's own connection: inside the writer's transaction,
so a rollback leaves neither the row nor its entry, and after SQLAlchemy has set the
primary key and the Python-side defaults.

How a class opts in (see docs/audit.md)::

    class CaseEvent(Base):
        __audit_kind__ = "case.event"
        __audit_subject__ = ("case", "case_id")      # -> subject "case:<case_id>"
        __audit_actor__ = ("account", "actor_id")    # -> "account:<id>", or "system"
        __audit_fields__ = ("case_id", "seq", "action", "from_state", "to_state")
        __audit_digest__ = ("comment",)              # body gets "comment_digest"

or, for full control, a method ``__audit__(self) -> (subject, actor, body_dict)``.

Not seen by the listener (so not audited): Core ``insert()`` statements and ORM bulk
inserts (``session.execute(insert(Model), [...])``, ``bulk_save_objects``), and UPDATEs
and DELETEs — event tables are append-only; write them as ORM objects.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, insert, inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper

from tongban.audit.domain import GENESIS, Entry, field_digest, make_entry

HEAD_ID = 1

#: (subject, actor, body) of an entry.
AuditRecord = tuple[str, str, dict[str, Any]]


def hash_alg() -> str:
    """The hash new entries use (TONGBAN_AUDIT_HASH: sha-256 or sm3)."""
    from tongban.config import get_settings

    return get_settings().audit_hash


@lru_cache(maxsize=1)
def _statements() -> tuple[Any, Any, Any, Any]:
    """The four statements of an append, built once (building Core statements costs
    more than running them)."""
    from tongban.audit.models import AuditEntry, AuditHead

    head_t = cast(Table, AuditHead.__table__)
    entry_t = cast(Table, AuditEntry.__table__)
    lock = select(head_t.c.seq, head_t.c.hash).where(head_t.c.id == HEAD_ID).with_for_update()
    create = insert(head_t).values(id=HEAD_ID, seq=0, hash=GENESIS)
    add = insert(entry_t)
    move = (
        update(head_t)
        .where(head_t.c.id == HEAD_ID)
        .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
    )
    return lock, create, add, move


def append(
    connection: Connection,
    kind: str,
    subject: str,
    actor: str,
    body: dict[str, Any] | str,
    *,
    alg: str | None = None,
    at: datetime | None = None,
) -> Entry:
    """Append one entry in the transaction of `connection`: lock the head row (FOR
    UPDATE on PostgreSQL; SQLite writers are serialised by BEGIN IMMEDIATE), insert the
    entry after it, move the head. The lock is held until that transaction ends, so
    concurrent appenders queue instead of forking the chain."""
    from tongban.db import utcnow

    lock, create, add, move = _statements()
    row = connection.execute(lock).first()
    if row is None:  # a database made without the migrations (which insert the row)
        connection.execute(create)
        row = connection.execute(lock).first()
        assert row is not None
    entry = make_entry(
        int(row.seq),
        row.hash,
        at or utcnow(),  # taken under the lock: `at` follows seq
        kind,
        subject,
        actor,
        body,
        alg or hash_alg(),
    )
    connection.execute(
        add,
        {
            "seq": entry.seq,
            "at": entry.at,
            "kind": entry.kind,
            "subject": entry.subject,
            "actor": entry.actor,
            "body": entry.body,
            "alg": entry.alg,
            "prev_hash": entry.prev_hash,
            "hash": entry.hash,
        },
    )
    connection.execute(move, {"new_seq": entry.seq, "new_hash": entry.hash})
    return entry


def _ref(obj: Any, spec: str | tuple[str, str]) -> str | None:
    prefix, attr = (spec, spec) if isinstance(spec, str) else spec
    if isinstance(spec, str) and prefix.endswith("_id"):
        prefix = prefix[: -len("_id")]
    value = getattr(obj, attr)
    return None if value is None else f"{prefix}:{value}"


def audit_record(obj: Any, alg: str) -> AuditRecord:
    """(subject, actor, body) for a new row of an audited class."""
    custom = getattr(obj, "__audit__", None)
    if callable(custom):
        subject, actor, custom_body = custom()
        return str(subject), str(actor), dict(custom_body)
    cls = type(obj)
    mapper = inspect(cls)
    pk_keys = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
    pk = {key: getattr(obj, key) for key in pk_keys}
    subject_spec = getattr(cls, "__audit_subject__", None)
    if subject_spec is None:
        subject = f"{mapper.local_table.name}:{','.join(str(v) for v in pk.values())}"
    else:
        subject = _ref(obj, subject_spec) or "none"
    actor_spec = getattr(cls, "__audit_actor__", None)
    actor = (_ref(obj, actor_spec) if actor_spec else None) or "system"
    body: dict[str, Any] = dict(pk)
    for name in getattr(cls, "__audit_fields__", ()):
        body[name] = getattr(obj, name)
    for name in getattr(cls, "__audit_digest__", ()):
        body[f"{name}_digest"] = field_digest(alg, getattr(obj, name))
    return subject, actor, body


def _after_insert(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    kind = getattr(mapper.class_, "__audit_kind__", None)
    if not kind:
        return
    alg = hash_alg()
    subject, actor, body = audit_record(target, alg)
    append(connection, kind, subject, actor, body, alg=alg)


if not event.contains(Mapper, "after_insert", _after_insert):
    event.listen(Mapper, "after_insert", _after_insert)
